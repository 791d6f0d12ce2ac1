"""OpenVLA-compatible VLA (policies/vla): action tokenizer, prompt and image, architecture sizes,
checkpoint loading from OpenVLA's layout and names, LoRA. Tiny random models only."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from policies.vla.action_tokenizer import (ActionTokenizer, check_unnorm_key, compute_statistics, load_statistics,
                                           normalize_actions, save_statistics, unnormalize_actions)
from policies.vla.configuration import architecture
from policies.vla.processing import ByteTokenizer, pixel_values, prompt_text

LLAMA2_VOCAB = 32000


# -- action tokenizer --------------------------------------------------------------------------
def test_action_tokens_are_the_last_256_ids_of_llama2():
    tok = ActionTokenizer(LLAMA2_VOCAB)
    ids = tok.encode(np.array([-1.0, -0.5, 0.0, 0.5, 1.0]))
    assert ids[0] == 31999 and ids[-1] == 31744            # -1 -> bin 1, +1 -> bin 256
    assert tok.action_token_begin_idx == 31744
    assert tok.is_action_token(ids).all() and not tok.is_action_token(np.array([31743, 32000])).any()


def test_action_round_trip_within_one_bin_and_clipping():
    tok = ActionTokenizer(LLAMA2_VOCAB)
    x = np.random.default_rng(0).uniform(-1, 1, size=(1000, 7))
    back = tok.decode(tok.encode(x))
    assert np.abs(back - x).max() <= 2 / 255 + 1e-12        # one bin width (bins are 2/255 apart)
    # beyond [-1, 1]: clipped to the end bins
    assert (tok.encode(np.array([5.0, -5.0])) == tok.encode(np.array([1.0, -1.0]))).all()
    # decoding clamps: the top action id (bin 256) and ids outside the range fall in the end centres
    centres = tok.bin_centers
    assert tok.decode(np.array([31744]))[0] == centres[-1] and tok.decode(np.array([31999]))[0] == centres[0]
    assert tok.decode(np.array([100]))[0] == centres[-1] and tok.decode(np.array([32005]))[0] == centres[0]
    assert len(centres) == 255


def test_bounds_q99_normalization_mask_and_constant_dims():
    rng = np.random.default_rng(1)
    actions = rng.normal(size=(500, 4)) * np.array([0.1, 2.0, 1.0, 0.0]) + np.array([0.0, 1.0, 0.0, 0.7])
    actions[:, 2] = rng.integers(0, 2, size=500)           # a gripper in {0, 1}: left as it is
    stats = compute_statistics(actions, num_trajectories=5, mask=[True, True, False, True])
    norm = normalize_actions(actions, stats["action"])
    assert np.all(norm[:, :2] >= -1) and np.all(norm[:, :2] <= 1)
    assert np.array_equal(norm[:, 2], actions[:, 2])        # mask False: raw
    assert np.all(norm[:, 3] == 0)                          # min == max -> 0
    q01, q99 = np.array(stats["action"]["q01"]), np.array(stats["action"]["q99"])
    expected = np.clip(2 * (actions[:, 0] - q01[0]) / (q99[0] - q01[0] + 1e-8) - 1, -1, 1)
    np.testing.assert_allclose(norm[:, 0], expected)
    inside = (actions[:, 1] > q01[1]) & (actions[:, 1] < q99[1])
    np.testing.assert_allclose(unnormalize_actions(norm, stats["action"])[inside, 1], actions[inside, 1], atol=1e-6)


def test_statistics_file_layout_and_unnorm_key(tmp_path):
    stats = {"pick_cube": compute_statistics(np.random.default_rng(2).normal(size=(50, 7)), num_trajectories=3)}
    save_statistics(stats, tmp_path)
    back = load_statistics(tmp_path)
    entry = back["pick_cube"]
    assert set(entry) == {"action", "proprio", "num_transitions", "num_trajectories"}
    assert set(entry["action"]) == {"mean", "std", "max", "min", "q01", "q99", "mask"}
    assert entry["action"]["mask"] == [True] * 6 + [False] and entry["num_transitions"] == 50
    assert check_unnorm_key(back, None) == "pick_cube"
    with pytest.raises(ValueError, match="unnorm_key='bridge' is invalid; allowed: pick_cube"):
        check_unnorm_key(back, "bridge")
    with pytest.raises(ValueError, match="pass unnorm_key= one of: a, b"):
        check_unnorm_key({"a": entry, "b": entry}, None)


# -- prompt and image ----------------------------------------------------------------------------
def test_prompt_is_openvlas():
    assert prompt_text("Stack the red block on the blue block") == \
        "In: What action should the robot take to stack the red block on the blue block?\nOut:"
    ids = ByteTokenizer().encode_prompt("Push")
    assert ids[0] == ByteTokenizer.bos_token_id and bytes(i - 3 for i in ids[1:]).decode() == prompt_text("push") + " "


def test_pixel_values_stack_two_normalizations_and_check_shape():
    img = np.full((30, 40, 3), 255, np.uint8)
    px = pixel_values(img, 28)
    assert px.shape == (1, 6, 28, 28)
    np.testing.assert_allclose(px[0, :3, 0, 0].numpy(), (1 - np.array([0.485, 0.456, 0.406])) / np.array([0.229, 0.224, 0.225]), rtol=1e-5)
    np.testing.assert_allclose(px[0, 3:, 0, 0].numpy(), [1.0, 1.0, 1.0])
    with pytest.raises(ValueError, match=r"expected \(H, W, 3\) RGB"):
        pixel_values(np.zeros((28, 28, 4), np.uint8), 28)


# -- architecture --------------------------------------------------------------------------------
def test_openvla_7b_on_meta_has_the_released_parameter_counts():
    from policies.vla.checkpoint import openvla_parameter_counts
    from policies.vla.prismatic import PrismaticVLA

    with torch.device("meta"):
        model = PrismaticVLA(architecture("openvla-7b"))
    assert openvla_parameter_counts(model) == {"vision_backbone": 730_911_680, "projector": 71_385_600,
                                               "language_model": 6_738_939_904, "total": 7_541_237_184}
    assert model.projector.fc1.weight.shape == (8704, 2176) and model.projector.fc3.weight.shape == (4096, 4096)
    assert model.language_model.lm_head.weight.shape == (32064, 4096)


def test_inspect_command(capsys):
    from policies.vla.__main__ import main

    assert main(["inspect", "--vla", "openvla-7b"]) == 0
    assert "7,541,237,184" in capsys.readouterr().out
    assert main(["inspect", "--vla", "huge"]) == 2
    assert "vla='huge' is invalid; allowed: openvla-7b, tiny" in capsys.readouterr().err


# -- checkpoint in OpenVLA's layout ------------------------------------------------------------------
TINY = architecture("tiny")


def _timm_vit_keys(prefix: str, dim: int, depth: int, mlp: int, patches: int, dino: bool) -> dict[str, tuple]:
    """Tensor names and shapes of timm's VisionTransformer as OpenVLA's checkpoint holds them
    (timm/models/vision_transformer.py: cls_token, reg_token, pos_embed without the prefix tokens
    when no_embed_class, patch_embed.proj, blocks.N.{norm1, attn.qkv, attn.proj, ls1, norm2, mlp.fc1,
    mlp.fc2, ls2}, norm, and for SigLIP's global_pool='map' the attn_pool; LayerScale's gamma renamed
    scale_factor by OpenVLA)."""
    keys = {f"{prefix}.pos_embed": (1, patches, dim), f"{prefix}.patch_embed.proj.weight": (dim, 3, 14, 14),
            f"{prefix}.patch_embed.proj.bias": (dim,), f"{prefix}.norm.weight": (dim,), f"{prefix}.norm.bias": (dim,)}
    if dino:
        keys.update({f"{prefix}.cls_token": (1, 1, dim), f"{prefix}.reg_token": (1, 4, dim)})
    else:
        p = f"{prefix}.attn_pool"
        keys.update({f"{p}.latent": (1, 1, dim), f"{p}.q.weight": (dim, dim), f"{p}.q.bias": (dim,),
                     f"{p}.kv.weight": (2 * dim, dim), f"{p}.kv.bias": (2 * dim,), f"{p}.proj.weight": (dim, dim),
                     f"{p}.proj.bias": (dim,), f"{p}.norm.weight": (dim,), f"{p}.norm.bias": (dim,),
                     f"{p}.mlp.fc1.weight": (mlp, dim), f"{p}.mlp.fc1.bias": (mlp,),
                     f"{p}.mlp.fc2.weight": (dim, mlp), f"{p}.mlp.fc2.bias": (dim,)})
    for i in range(depth):
        b = f"{prefix}.blocks.{i}"
        keys.update({f"{b}.norm1.weight": (dim,), f"{b}.norm1.bias": (dim,), f"{b}.attn.qkv.weight": (3 * dim, dim),
                     f"{b}.attn.qkv.bias": (3 * dim,), f"{b}.attn.proj.weight": (dim, dim), f"{b}.attn.proj.bias": (dim,),
                     f"{b}.norm2.weight": (dim,), f"{b}.norm2.bias": (dim,), f"{b}.mlp.fc1.weight": (mlp, dim),
                     f"{b}.mlp.fc1.bias": (mlp,), f"{b}.mlp.fc2.weight": (dim, mlp), f"{b}.mlp.fc2.bias": (dim,)})
        if dino:
            keys.update({f"{b}.ls1.scale_factor": (dim,), f"{b}.ls2.scale_factor": (dim,)})
    return keys


def _openvla_tensors(seed: int = 0) -> dict[str, torch.Tensor]:
    from transformers import LlamaForCausalLM

    from policies.vla.configuration import llama_config

    g = torch.Generator().manual_seed(seed)
    a, n = TINY, TINY.num_patches
    shapes = {**_timm_vit_keys("vision_backbone.featurizer", a.dino.hidden, a.dino.layers, a.dino.mlp, n, True),
              **_timm_vit_keys("vision_backbone.fused_featurizer", a.siglip.hidden, a.siglip.layers, a.siglip.mlp, n, False)}
    v, d = a.vision_dim, a.llm.hidden
    shapes.update({"projector.fc1.weight": (4 * v, v), "projector.fc1.bias": (4 * v,), "projector.fc2.weight": (d, 4 * v),
                   "projector.fc2.bias": (d,), "projector.fc3.weight": (d, d), "projector.fc3.bias": (d,)})
    shapes.update({f"language_model.{k}": tuple(t.shape) for k, t in LlamaForCausalLM(llama_config(a)).state_dict().items()})
    return {k: torch.randn(s, generator=g) * 0.2 for k, s in shapes.items()}


def _write_checkpoint(directory, tensors, norm_stats, shards: int = 3):
    from safetensors.torch import save_file

    from policies.vla.checkpoint import openvla_config

    names = sorted(tensors)
    weight_map = {}
    for i in range(shards):
        part = names[i::shards]
        shard = f"model-{i + 1:05d}-of-{shards:05d}.safetensors"
        save_file({k: tensors[k].contiguous() for k in part}, str(directory / shard))
        weight_map.update({k: shard for k in part})
    (directory / "model.safetensors.index.json").write_text(json.dumps({"metadata": {}, "weight_map": weight_map}))
    cfg = openvla_config(TINY, norm_stats)
    cfg["roboforge_tokenizer"] = "bytes"
    (directory / "config.json").write_text(json.dumps(cfg))


def _set_by_hand(model, t):
    """The same weights put into each module directly (the independent path the loader is checked against)."""
    with torch.no_grad():
        dino, sig = model.vision_backbone.featurizer, model.vision_backbone.fused_featurizer
        p = "vision_backbone.featurizer"
        dino.embeddings.cls_token.copy_(t[f"{p}.cls_token"])
        dino.embeddings.register_tokens.copy_(t[f"{p}.reg_token"])
        dino.embeddings.position_embeddings.zero_()
        dino.embeddings.position_embeddings[:, 1:] = t[f"{p}.pos_embed"]
        dino.embeddings.patch_embeddings.projection.weight.copy_(t[f"{p}.patch_embed.proj.weight"])
        dino.embeddings.patch_embeddings.projection.bias.copy_(t[f"{p}.patch_embed.proj.bias"])
        dino.layernorm.weight.copy_(t[f"{p}.norm.weight"]), dino.layernorm.bias.copy_(t[f"{p}.norm.bias"])
        for i, layer in enumerate(dino.encoder.layer):
            b = f"{p}.blocks.{i}"
            q, k, v = t[f"{b}.attn.qkv.weight"].chunk(3)
            qb, kb, vb = t[f"{b}.attn.qkv.bias"].chunk(3)
            for lin, w, bias in ((layer.attention.q_proj, q, qb), (layer.attention.k_proj, k, kb),
                                 (layer.attention.v_proj, v, vb), (layer.attention.o_proj, t[f"{b}.attn.proj.weight"],
                                                                   t[f"{b}.attn.proj.bias"]),
                                 (layer.norm1, t[f"{b}.norm1.weight"], t[f"{b}.norm1.bias"]),
                                 (layer.norm2, t[f"{b}.norm2.weight"], t[f"{b}.norm2.bias"]),
                                 (layer.mlp.fc1, t[f"{b}.mlp.fc1.weight"], t[f"{b}.mlp.fc1.bias"]),
                                 (layer.mlp.fc2, t[f"{b}.mlp.fc2.weight"], t[f"{b}.mlp.fc2.bias"])):
                lin.weight.copy_(w), lin.bias.copy_(bias)
            layer.layer_scale1.lambda1.copy_(t[f"{b}.ls1.scale_factor"])
            layer.layer_scale2.lambda1.copy_(t[f"{b}.ls2.scale_factor"])
        p = "vision_backbone.fused_featurizer"
        sig.embeddings.position_embedding.weight.copy_(t[f"{p}.pos_embed"][0])
        sig.embeddings.patch_embedding.weight.copy_(t[f"{p}.patch_embed.proj.weight"])
        sig.embeddings.patch_embedding.bias.copy_(t[f"{p}.patch_embed.proj.bias"])
        sig.post_layernorm.weight.copy_(t[f"{p}.norm.weight"]), sig.post_layernorm.bias.copy_(t[f"{p}.norm.bias"])
        for i, layer in enumerate(sig.encoder.layers):
            b = f"{p}.blocks.{i}"
            q, k, v = t[f"{b}.attn.qkv.weight"].chunk(3)
            qb, kb, vb = t[f"{b}.attn.qkv.bias"].chunk(3)
            for lin, w, bias in ((layer.self_attn.q_proj, q, qb), (layer.self_attn.k_proj, k, kb),
                                 (layer.self_attn.v_proj, v, vb),
                                 (layer.self_attn.out_proj, t[f"{b}.attn.proj.weight"], t[f"{b}.attn.proj.bias"]),
                                 (layer.layer_norm1, t[f"{b}.norm1.weight"], t[f"{b}.norm1.bias"]),
                                 (layer.layer_norm2, t[f"{b}.norm2.weight"], t[f"{b}.norm2.bias"]),
                                 (layer.mlp.fc1, t[f"{b}.mlp.fc1.weight"], t[f"{b}.mlp.fc1.bias"]),
                                 (layer.mlp.fc2, t[f"{b}.mlp.fc2.weight"], t[f"{b}.mlp.fc2.bias"])):
                lin.weight.copy_(w), lin.bias.copy_(bias)
        rest = {k: v for k, v in t.items() if k.startswith(("projector.", "language_model."))}
        missing, unexpected = model.load_state_dict(rest, strict=False)
        assert not unexpected and all(k.startswith("vision_backbone.") for k in missing)


def _timm_reference_features(t, prefix, x, heads, n_prefix, layers):
    """timm VisionTransformer.get_intermediate_layers(n={depth - 2}) written out with torch ops."""
    x = F.conv2d(x, t[f"{prefix}.patch_embed.proj.weight"], t[f"{prefix}.patch_embed.proj.bias"], stride=14)
    x = x.flatten(2).transpose(1, 2) + t[f"{prefix}.pos_embed"]           # no_embed_class: patches only
    if n_prefix:
        B = x.shape[0]
        x = torch.cat([t[f"{prefix}.cls_token"].expand(B, -1, -1), t[f"{prefix}.reg_token"].expand(B, -1, -1), x], 1)
    for i in range(layers - 1):
        b = f"{prefix}.blocks.{i}"
        B, N, D = x.shape
        h = F.layer_norm(x, (D,), t[f"{b}.norm1.weight"], t[f"{b}.norm1.bias"], eps=1e-6)
        q, k, v = F.linear(h, t[f"{b}.attn.qkv.weight"], t[f"{b}.attn.qkv.bias"]).reshape(
            B, N, 3, heads, D // heads).permute(2, 0, 3, 1, 4)
        a = F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(B, N, D)
        a = F.linear(a, t[f"{b}.attn.proj.weight"], t[f"{b}.attn.proj.bias"])
        x = x + a * t.get(f"{b}.ls1.scale_factor", 1.0)
        h = F.layer_norm(x, (D,), t[f"{b}.norm2.weight"], t[f"{b}.norm2.bias"], eps=1e-6)
        h = F.linear(F.gelu(F.linear(h, t[f"{b}.mlp.fc1.weight"], t[f"{b}.mlp.fc1.bias"])),
                     t[f"{b}.mlp.fc2.weight"], t[f"{b}.mlp.fc2.bias"])
        x = x + h * t.get(f"{b}.ls2.scale_factor", 1.0)
    return x[:, n_prefix:]


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory):
    d = tmp_path_factory.mktemp("openvla_tiny")
    tensors = _openvla_tensors()
    stats = {"pick_cube": compute_statistics(np.random.default_rng(3).uniform(-0.5, 2.0, size=(40, 7)))}
    _write_checkpoint(d, tensors, stats)
    return d, tensors


def test_checkpoint_loads_every_key_and_matches_module_by_module(tiny_checkpoint):
    from policies.vla.checkpoint import load_openvla_checkpoint
    from policies.vla.prismatic import PrismaticVLA

    d, tensors = tiny_checkpoint
    loaded, norm_stats, _ = load_openvla_checkpoint(d)
    assert list(norm_stats) == ["pick_cube"]
    by_hand = PrismaticVLA(TINY).eval()
    _set_by_hand(by_hand, tensors)
    ids = torch.tensor([ByteTokenizer().encode_prompt("pick up the cube")])
    px = torch.randn(2, 6, TINY.image_size, TINY.image_size, generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        assert torch.equal(loaded(ids.expand(2, -1), px)[0], by_hand(ids.expand(2, -1), px)[0])
        # and the vision features are timm's: second-to-last block, prefix tokens dropped
        feats = loaded.vision_backbone(px)
        ref_dino = _timm_reference_features(tensors, "vision_backbone.featurizer", px[:, :3], TINY.dino.heads, 5,
                                            TINY.dino.layers)
        ref_sig = _timm_reference_features(tensors, "vision_backbone.fused_featurizer", px[:, 3:], TINY.siglip.heads,
                                           0, TINY.siglip.layers)
    torch.testing.assert_close(feats, torch.cat([ref_dino, ref_sig], 2), rtol=1e-5, atol=1e-5)


def test_checkpoint_save_round_trip_is_exact(tiny_checkpoint, tmp_path):
    from policies.vla.checkpoint import load_openvla_checkpoint, save_openvla_checkpoint, to_openvla_state_dict

    d, tensors = tiny_checkpoint
    model, stats, _ = load_openvla_checkpoint(d)
    with torch.no_grad():  # a trained CLS position row must survive the fold into timm's cls_token
        model.vision_backbone.featurizer.embeddings.position_embeddings[:, 0] += 0.3
    save_openvla_checkpoint(model, tmp_path / "out", stats, max_shard_bytes=100_000)
    again, _, _ = load_openvla_checkpoint(tmp_path / "out")
    assert set(to_openvla_state_dict(again)) == set(tensors)
    ids = torch.tensor([[1, 40, 41, 42]])
    px = torch.randn(1, 6, TINY.image_size, TINY.image_size)
    with torch.no_grad():
        torch.testing.assert_close(again(ids, px)[0], model(ids, px)[0], rtol=1e-6, atol=1e-6)


def test_checkpoint_errors_name_what_is_wrong(tiny_checkpoint, tmp_path):
    from policies.vla.checkpoint import load_openvla_checkpoint

    d, tensors = tiny_checkpoint
    bad = dict(tensors)
    del bad["vision_backbone.featurizer.blocks.1.ls2.scale_factor"]
    bad["vision_backbone.featurizer.head.weight"] = torch.zeros(3)
    (tmp_path / "keys").mkdir()
    _write_checkpoint(tmp_path / "keys", bad, {})
    with pytest.raises(ValueError, match=r"missing: \['vision_backbone.featurizer.blocks.1.ls2.scale_factor'\]; "
                                         r"unexpected: \['vision_backbone.featurizer.head.weight'\]"):
        load_openvla_checkpoint(tmp_path / "keys")
    (tmp_path / "shard").mkdir()
    _write_checkpoint(tmp_path / "shard", tensors, {})
    (tmp_path / "shard" / "model-00002-of-00003.safetensors").unlink()
    with pytest.raises(FileNotFoundError, match="missing: model-00002-of-00003.safetensors"):
        load_openvla_checkpoint(tmp_path / "shard")


def test_predict_action_greedy_decodes_seven_tokens(tiny_checkpoint):
    from policies.vla.openvla import OpenVLA

    d, _ = tiny_checkpoint
    vla = OpenVLA.from_pretrained(d)
    image = np.random.default_rng(5).integers(0, 255, size=(64, 80, 3), dtype=np.uint8)
    action = vla.predict_action(image, "Pick up the cube", unnorm_key="pick_cube")
    assert action.shape == (7,)
    ids = vla.prompt_ids("Pick up the cube")
    px = pixel_values(image, TINY.image_size)
    seq = ids
    with torch.no_grad():  # greedy without a cache, one token at a time, gives the same tokens
        for _ in range(7):
            seq = torch.cat([seq, vla.model(seq, px)[0][:, -1].argmax(-1, keepdim=True)], 1)
    tokens = seq[0, -7:].numpy()
    expected = unnormalize_actions(vla.action_tokenizer.decode(tokens), vla.norm_stats["pick_cube"]["action"])
    np.testing.assert_allclose(action, expected)
    with pytest.raises(ValueError, match="unnorm_key='bridge_orig' is invalid; allowed: pick_cube"):
        vla.predict_action(image, "pick up the cube", unnorm_key="bridge_orig")


# -- LoRA --------------------------------------------------------------------------------------------
def test_lora_as_openvla_finetune_trains_only_adapters():
    from policies.vla.lora import apply_lora, lora_target_modules
    from policies.vla.prismatic import PrismaticVLA

    torch.manual_seed(0)
    model = PrismaticVLA(TINY)
    targets = lora_target_modules(model)
    assert "language_model.lm_head" not in targets and "projector.fc1" in targets
    assert "language_model.model.layers.0.self_attn.q_proj" in targets
    assert not any(".head." in t for t in targets)
    ids, px = torch.tensor([[1, 40, 41, 42, 43]]), torch.randn(1, 6, TINY.image_size, TINY.image_size)
    with torch.no_grad():
        before = model(ids, px)[0]
    peft_model = apply_lora(model, rank=4)
    assert peft_model.peft_config["default"].lora_alpha == 4
    trainable = {n for n, p in peft_model.named_parameters() if p.requires_grad}
    assert trainable and all("lora_" in n for n in trainable)
    logits, loss = peft_model(ids, px, labels=ids)
    torch.testing.assert_close(logits, before)             # B starts at zero: the model is unchanged
    loss.backward()
    opt = torch.optim.SGD([p for p in peft_model.parameters() if p.requires_grad], lr=1.0)
    opt.step()
    merged = peft_model.merge_and_unload()
    assert not any("lora_" in n for n, _ in merged.named_parameters())
    with torch.no_grad():
        assert not torch.allclose(merged(ids, px)[0], before)


def test_4bit_without_cuda_says_so(monkeypatch):
    from policies.vla.lora import apply_lora
    from policies.vla.prismatic import PrismaticVLA

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(RuntimeError, match="needs CUDA"):
        apply_lora(PrismaticVLA(TINY), rank=2, load_in_4bit=True)


def test_hf_tokenizer_prompt_ends_in_llama2s_empty_piece(tmp_path):
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    from policies.vla.processing import HFTokenizer

    words = ["<unk>", "<s>", "</s>", "In:", "What", "action", "should", "the", "robot", "take", "to", "push?", "Out:"]
    tok = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", 1)])
    PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", unk_token="<unk>") \
        .save_pretrained(str(tmp_path))
    ids = HFTokenizer(tmp_path, LLAMA2_VOCAB).encode_prompt("Push")
    assert ids == [1, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 29871]


def test_policy_fine_tunes_an_openvla_checkpoint_with_lora(tiny_checkpoint):
    from policies.vla import VLAConfig, VLAPolicy

    d, _ = tiny_checkpoint
    policy = VLAPolicy(VLAConfig(weights=str(d), lora_rank=2, action_dim=7))
    policy.fit_statistics(np.random.default_rng(6).uniform(-1, 1, (50, 7)), num_trajectories=2)
    batch = {"obs": {"front_rgb": torch.zeros(2, 1, 56, 56, 3, dtype=torch.uint8)},
             "action": torch.zeros(2, 1, 7), "instruction": ["push", "pull"]}
    policy.compute_loss(batch).backward()
    trainable = [n for n, p in policy.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n for n in trainable)


def test_checkpoint_loads_in_bfloat16_with_float32_rope(tiny_checkpoint):
    from policies.vla.checkpoint import load_openvla_checkpoint

    d, _ = tiny_checkpoint
    model, _, _ = load_openvla_checkpoint(d, dtype=torch.bfloat16)
    assert model.projector.fc1.weight.dtype == torch.bfloat16
    assert model.language_model.model.rotary_emb.inv_freq.dtype == torch.float32
    assert not any(t.is_meta for t in [*model.parameters(), *model.buffers()])
