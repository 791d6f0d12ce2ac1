"""OpenVLA's released checkpoint layout <-> :class:`~policies.vla.prismatic.PrismaticVLA`.

A checkpoint is a directory as ``openvla/openvla-7b`` ships it::

    config.json                        OpenVLAConfig fields (vision_backbone_id, text_config,
                                       n_action_bins, pad_to_multiple_of, norm_stats, ...)
    model.safetensors.index.json       {"metadata": {...}, "weight_map": {tensor name: shard file}}
    model-00001-of-00003.safetensors   the shards (or one model.safetensors)
    dataset_statistics.json            norm_stats again (OpenVLA's finetune.py writes it)
    tokenizer files                    (Llama-2's; read by policies.vla.processing.HFTokenizer)

Tensor names are OpenVLA's: the two backbones are timm ``VisionTransformer``s
(``vision_backbone.featurizer.blocks.3.attn.qkv.weight``, LayerScale ``ls1.scale_factor``, the
SigLIP attention pool ``attn_pool.{latent,q,kv,proj,norm,mlp}``); the projector and
``language_model.*`` (a ``LlamaForCausalLM``) already have this module's names. The mapping:

- timm's fused ``qkv`` = transformers' q, k and v stacked (rows [q; k; v]); SigLIP's pool
  ``q`` + ``kv`` = ``nn.MultiheadAttention``'s ``in_proj``;
- DINOv2 in timm (``no_embed_class``) adds no position to the CLS token, transformers' DINOv2 adds
  ``position_embeddings[:, 0]``: loading sets that row to 0, saving folds it into ``cls_token``.

Loading fails on any missing or unexpected tensor, naming them.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping

import torch

from policies.vla.configuration import ARCHITECTURES, LlamaSize, VLAArchitecture, ViTSize

INDEX_FILE = "model.safetensors.index.json"
SINGLE_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
# Prismatic's names for what OpenVLA-7B is built from (configuration_prismatic.py)
OPENVLA_7B_VISION = "dinosiglip-vit-so-224px"
TIMM_IDS = ["vit_large_patch14_reg4_dinov2.lvd142m", "vit_so400m_patch14_siglip_224"]


@dataclass(frozen=True)
class Rule:
    """Ours (module) tensors <-> theirs (OpenVLA checkpoint) tensors, with the two conversions."""

    ours: tuple[str, ...]
    theirs: tuple[str, ...]
    to_theirs: Callable[[list[torch.Tensor]], list[torch.Tensor]]
    to_ours: Callable[[list[torch.Tensor]], list[torch.Tensor]]


def _same(xs):
    return list(xs)


def _rename(ours: str, theirs: str) -> Rule:
    return Rule((ours,), (theirs,), _same, _same)


def _stack(ours: tuple[str, ...], theirs: str) -> Rule:
    """Several of ours concatenated along dim 0 into one of theirs (q, k, v -> qkv)."""
    return Rule(ours, (theirs,), lambda xs: [torch.cat(xs, 0)], lambda xs: list(xs[0].chunk(len(ours), 0)))


def _linear_pair(ours: str, theirs: str) -> list[Rule]:
    return [_rename(f"{ours}.weight", f"{theirs}.weight"), _rename(f"{ours}.bias", f"{theirs}.bias")]


def _dino_rules(arch: VLAArchitecture, o: str, t: str) -> list[Rule]:
    e = f"{o}.embeddings"
    rules = [
        # timm: CLS without a position; transformers: CLS + position_embeddings[:, 0]
        Rule((f"{e}.cls_token", f"{e}.position_embeddings"), (f"{t}.cls_token", f"{t}.pos_embed"),
             lambda xs: [xs[0] + xs[1][:, :1], xs[1][:, 1:]],
             lambda xs: [xs[0], torch.cat([torch.zeros_like(xs[1][:, :1]), xs[1]], dim=1)]),
        _rename(f"{e}.register_tokens", f"{t}.reg_token"),
        *_linear_pair(f"{e}.patch_embeddings.projection", f"{t}.patch_embed.proj"),
        *_linear_pair(f"{o}.layernorm", f"{t}.norm"),
    ]
    for i in range(arch.dino.layers):
        a, b = f"{o}.encoder.layer.{i}", f"{t}.blocks.{i}"
        for kind in ("weight", "bias"):
            rules.append(_stack(tuple(f"{a}.attention.{p}_proj.{kind}" for p in "qkv"), f"{b}.attn.qkv.{kind}"))
        rules += [*_linear_pair(f"{a}.attention.o_proj", f"{b}.attn.proj"),
                  _rename(f"{a}.layer_scale1.lambda1", f"{b}.ls1.scale_factor"),
                  _rename(f"{a}.layer_scale2.lambda1", f"{b}.ls2.scale_factor")]
        for name in ("norm1", "norm2", "mlp.fc1", "mlp.fc2"):
            rules += _linear_pair(f"{a}.{name}", f"{b}.{name}")
    return rules


def _siglip_rules(arch: VLAArchitecture, o: str, t: str) -> list[Rule]:
    h, p = f"{o}.head", f"{t}.attn_pool"
    rules = [
        Rule((f"{o}.embeddings.position_embedding.weight",), (f"{t}.pos_embed",),
             lambda xs: [xs[0][None]], lambda xs: [xs[0][0]]),
        *_linear_pair(f"{o}.embeddings.patch_embedding", f"{t}.patch_embed.proj"),
        *_linear_pair(f"{o}.post_layernorm", f"{t}.norm"),
        _rename(f"{h}.probe", f"{p}.latent"),
        *[Rule((f"{h}.attention.in_proj_{k}",), (f"{p}.q.{k}", f"{p}.kv.{k}"),
               lambda xs: [xs[0][: xs[0].shape[0] // 3], xs[0][xs[0].shape[0] // 3:]],
               lambda xs: [torch.cat(xs, 0)]) for k in ("weight", "bias")],
        *_linear_pair(f"{h}.attention.out_proj", f"{p}.proj"),
        *_linear_pair(f"{h}.layernorm", f"{p}.norm"),
        *_linear_pair(f"{h}.mlp.fc1", f"{p}.mlp.fc1"),
        *_linear_pair(f"{h}.mlp.fc2", f"{p}.mlp.fc2"),
    ]
    for i in range(arch.siglip.layers):
        a, b = f"{o}.encoder.layers.{i}", f"{t}.blocks.{i}"
        for kind in ("weight", "bias"):
            rules.append(_stack(tuple(f"{a}.self_attn.{q}_proj.{kind}" for q in "qkv"), f"{b}.attn.qkv.{kind}"))
        rules += [*_linear_pair(f"{a}.self_attn.out_proj", f"{b}.attn.proj"),
                  *_linear_pair(f"{a}.layer_norm1", f"{b}.norm1"), *_linear_pair(f"{a}.layer_norm2", f"{b}.norm2"),
                  *_linear_pair(f"{a}.mlp.fc1", f"{b}.mlp.fc1"), *_linear_pair(f"{a}.mlp.fc2", f"{b}.mlp.fc2")]
    return rules


def mapping_rules(arch: VLAArchitecture, module_keys) -> list[Rule]:
    """Every rule for the model; the projector and language model keep their names."""
    rules = (_dino_rules(arch, "vision_backbone.featurizer", "vision_backbone.featurizer")
             + _siglip_rules(arch, "vision_backbone.fused_featurizer", "vision_backbone.fused_featurizer"))
    covered = {k for r in rules for k in r.ours}
    rules += [_rename(k, k) for k in module_keys
              if k.startswith(("projector.", "language_model.")) and k not in covered]
    return rules


def to_openvla_state_dict(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The model's weights under OpenVLA's names and shapes (works on the meta device too)."""
    ours = model.state_dict()
    out = {}
    for rule in mapping_rules(model.arch, ours):
        for name, tensor in zip(rule.theirs, rule.to_theirs([ours[k] for k in rule.ours])):
            out[name] = tensor
    return out


def openvla_parameter_counts(model: torch.nn.Module) -> dict[str, int]:
    """Parameters per part as OpenVLA's checkpoint holds them (the released 7B: 7,541,237,184)."""
    parts = {"vision_backbone": 0, "projector": 0, "language_model": 0}
    for name, t in to_openvla_state_dict(model).items():
        parts[name.split(".", 1)[0]] += t.numel()
    parts["total"] = sum(parts.values())
    return parts


# -- the config.json ---------------------------------------------------------------------------
def openvla_config(arch: VLAArchitecture, norm_stats: Mapping | None, dtype: str = "float32") -> dict:
    """``config.json`` with OpenVLAConfig's fields; sizes other than OpenVLA-7B's vision backbone are
    written to ``roboforge_vision`` (timm ids cannot name them)."""
    m = arch.llm
    cfg = {
        "architectures": ["OpenVLAForActionPrediction"], "model_type": "openvla",
        "vision_backbone_id": OPENVLA_7B_VISION, "llm_backbone_id": "llama2-7b-pure",
        "arch_specifier": "no-align+fused-gelu-mlp", "use_fused_vision_backbone": True,
        "image_resize_strategy": "resize-naive", "image_sizes": [arch.image_size, arch.image_size],
        "timm_model_ids": TIMM_IDS, "timm_override_act_layers": [None, None],
        "hf_llm_id": "meta-llama/Llama-2-7b-hf", "llm_max_length": 2048,
        "n_action_bins": arch.n_action_bins, "pad_to_multiple_of": m.pad_to_multiple_of, "pad_token_id": m.vocab_size,
        "output_projector_states": False, "norm_stats": dict(norm_stats or {}), "torch_dtype": dtype,
        "text_config": {"model_type": "llama", "vocab_size": m.embedding_rows, "hidden_size": m.hidden,
                        "num_hidden_layers": m.layers, "num_attention_heads": m.heads,
                        "num_key_value_heads": m.heads, "intermediate_size": m.mlp,
                        "max_position_embeddings": m.max_positions, "rms_norm_eps": m.rms_norm_eps,
                        "pad_token_id": m.vocab_size, "torch_dtype": dtype},
    }
    base = ARCHITECTURES["openvla-7b"]
    if (arch.image_size, arch.dino, arch.siglip, arch.dino_registers) != (base.image_size, base.dino, base.siglip,
                                                                          base.dino_registers):
        cfg["roboforge_vision"] = {"image_size": arch.image_size, "dino": vars(arch.dino), "siglip": vars(arch.siglip),
                                   "dino_registers": arch.dino_registers}
    return cfg


def architecture_from_config(cfg: Mapping, where: str = CONFIG_FILE) -> VLAArchitecture:
    """Sizes from an OpenVLA ``config.json`` (its text_config falls back on LlamaConfig's defaults,
    Llama-2 7B, as transformers reads it)."""
    if cfg.get("vision_backbone_id") != OPENVLA_7B_VISION or not cfg.get("use_fused_vision_backbone", True):
        raise ValueError(f"{where}: vision_backbone_id={cfg.get('vision_backbone_id')!r} is not supported; "
                         f"allowed: {OPENVLA_7B_VISION}")
    if cfg.get("arch_specifier", "no-align+fused-gelu-mlp") != "no-align+fused-gelu-mlp":
        raise ValueError(f"{where}: arch_specifier={cfg['arch_specifier']!r} is not supported; "
                         f"allowed: no-align+fused-gelu-mlp")
    text = cfg.get("text_config") or {}
    if text.get("model_type", "llama") != "llama":
        raise ValueError(f"{where}: text_config.model_type={text['model_type']!r} is not supported; allowed: llama")
    multiple = int(cfg.get("pad_to_multiple_of", 64))
    rows = int(text.get("vocab_size", 32000))
    llm = LlamaSize(hidden=text.get("hidden_size", 4096), layers=text.get("num_hidden_layers", 32),
                    heads=text.get("num_attention_heads", 32), mlp=text.get("intermediate_size", 11008),
                    vocab_size=rows - multiple,  # OpenVLAForActionPrediction: vocab = rows - pad_to_multiple_of
                    pad_to_multiple_of=multiple, max_positions=text.get("max_position_embeddings", 2048),
                    rms_norm_eps=text.get("rms_norm_eps", 1e-6))
    heads_kv = text.get("num_key_value_heads", llm.heads)
    if heads_kv != llm.heads:
        raise ValueError(f"{where}: text_config.num_key_value_heads={heads_kv} is not supported; allowed: "
                         f"num_attention_heads ({llm.heads})")
    if llm.embedding_rows != rows:
        raise ValueError(f"{where}: text_config.vocab_size={rows} does not fit pad_to_multiple_of={multiple}")
    base = ARCHITECTURES["openvla-7b"]
    vision = cfg.get("roboforge_vision")
    if vision:
        return VLAArchitecture(name="custom", image_size=vision["image_size"], dino=ViTSize(**vision["dino"]),
                               siglip=ViTSize(**vision["siglip"]), llm=llm,
                               dino_registers=vision.get("dino_registers", 4),
                               n_action_bins=cfg.get("n_action_bins", 256))
    name = "openvla-7b" if llm == base.llm else "custom"
    return VLAArchitecture(name=name, image_size=base.image_size, dino=base.dino, siglip=base.siglip, llm=llm,
                           n_action_bins=cfg.get("n_action_bins", 256))


# -- reading and writing ---------------------------------------------------------------------
def _shards(directory: Path) -> dict[str, list[str]]:
    """Shard file -> tensor names, from the index (or the single file); missing shards are named."""
    from safetensors import safe_open

    index = directory / INDEX_FILE
    if index.exists():
        weight_map = json.loads(index.read_text()).get("weight_map")
        if not isinstance(weight_map, dict) or not weight_map:
            raise ValueError(f"{index} has no weight_map")
        by_shard: dict[str, list[str]] = {}
        for name, shard in weight_map.items():
            by_shard.setdefault(shard, []).append(name)
        missing = sorted(s for s in by_shard if not (directory / s).exists())
        if missing:
            raise FileNotFoundError(f"{directory}: shards named in {INDEX_FILE} are missing: {', '.join(missing)}")
        return by_shard
    if (directory / SINGLE_FILE).exists():
        with safe_open(str(directory / SINGLE_FILE), framework="pt") as f:
            return {SINGLE_FILE: list(f.keys())}
    raise FileNotFoundError(f"{directory} has neither {INDEX_FILE} nor {SINGLE_FILE}; an OpenVLA checkpoint "
                            f"directory holds sharded safetensors and their index")


def _materialize(model: torch.nn.Module, device: torch.device, dtype: torch.dtype) -> None:
    """Meta-built model -> uninitialized ``dtype`` storage on ``device``, with the computed
    (non-persistent) buffers rebuilt: RoPE frequencies (kept float32, as transformers computes them)
    and SigLIP's position ids (no checkpoint carries them)."""
    model.to_empty(device=device)
    model.to(dtype)
    lm = model.language_model.model
    lm.rotary_emb = type(lm.rotary_emb)(config=lm.config).to(device)
    emb = model.vision_backbone.fused_featurizer.embeddings
    emb.position_ids.copy_(torch.arange(emb.num_positions, device=device).expand((1, -1)))


def load_openvla_checkpoint(directory: str | os.PathLike, device: str | torch.device = "cpu",
                            dtype: torch.dtype = torch.float32):
    """Read a checkpoint directory -> (PrismaticVLA in eval mode, norm_stats, config dict).

    The model is built on the meta device and filled tensor by tensor from the shards, so memory holds
    one copy of the weights. Raises on a missing shard, a missing or unexpected tensor, or a shape
    that does not fit."""
    from safetensors import safe_open

    from policies.vla.prismatic import PrismaticVLA

    directory = Path(directory)
    if not (directory / CONFIG_FILE).exists():
        raise FileNotFoundError(f"{directory} has no {CONFIG_FILE}; expected an OpenVLA checkpoint directory")
    cfg = json.loads((directory / CONFIG_FILE).read_text())
    arch = architecture_from_config(cfg, str(directory / CONFIG_FILE))
    with torch.device("meta"):
        model = PrismaticVLA(arch)
    ours = model.state_dict()
    rules = mapping_rules(arch, ours)
    uncovered = set(ours) - {k for r in rules for k in r.ours} - _COMPUTED_BUFFERS
    if uncovered:  # a transformers version with other module names: fail before reading anything
        raise RuntimeError(f"no OpenVLA name for module tensors {sorted(uncovered)[:8]}")

    shards = _shards(directory)
    location = {name: shard for shard, names in shards.items() for name in names}
    needed = {k for r in rules for k in r.theirs}
    missing, unexpected = sorted(needed - set(location)), sorted(set(location) - needed)
    if missing or unexpected:
        raise ValueError(f"{directory} does not match {arch.name} ({len(missing)} missing, {len(unexpected)} "
                         f"unexpected tensors); missing: {missing[:8]}; unexpected: {unexpected[:8]}")

    device = torch.device(device)
    _materialize(model, device, dtype)
    params = dict(model.state_dict(keep_vars=True))
    handles = {s: safe_open(str(directory / s), framework="pt", device="cpu") for s in shards}
    with torch.no_grad():
        for rule in rules:
            theirs = [handles[location[k]].get_tensor(k) for k in rule.theirs]
            for name, value in zip(rule.ours, rule.to_ours(theirs)):
                target = params[name]
                if tuple(target.shape) != tuple(value.shape):
                    raise ValueError(f"{directory}: {rule.theirs} gives {name} the shape {tuple(value.shape)}; "
                                     f"the model has {tuple(target.shape)}")
                target.copy_(value)
    handles.clear()
    return model.eval(), cfg.get("norm_stats") or {}, cfg


# buffers the model computes itself (never in a checkpoint)
_COMPUTED_BUFFERS = {"vision_backbone.fused_featurizer.embeddings.position_ids",
                     "language_model.model.rotary_emb.inv_freq", "language_model.model.rotary_emb.original_inv_freq"}


def save_openvla_checkpoint(model: torch.nn.Module, directory: str | os.PathLike, norm_stats: Mapping | None = None,
                            max_shard_bytes: int = 2 * 1024 ** 3) -> Path:
    """Write ``model`` in OpenVLA's layout: config.json, sharded safetensors + index,
    dataset_statistics.json. Returns the directory."""
    from safetensors.torch import save_file

    from policies.vla.action_tokenizer import save_statistics

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in to_openvla_state_dict(model).items()}
    groups: list[dict[str, torch.Tensor]] = [{}]
    size = 0
    for name, tensor in state.items():
        nbytes = tensor.numel() * tensor.element_size()
        if groups[-1] and size + nbytes > max_shard_bytes:
            groups.append({})
            size = 0
        groups[-1][name] = tensor
        size += nbytes
    weight_map = {}
    for i, group in enumerate(groups, 1):
        shard = f"model-{i:05d}-of-{len(groups):05d}.safetensors"
        save_file(group, str(directory / shard), metadata={"format": "pt"})
        weight_map.update({name: shard for name in group})
    total = sum(t.numel() * t.element_size() for t in state.values())
    (directory / INDEX_FILE).write_text(json.dumps({"metadata": {"total_size": total}, "weight_map": weight_map},
                                                   indent=2) + "\n")
    dtype = str(next(iter(state.values())).dtype).replace("torch.", "")
    (directory / CONFIG_FILE).write_text(json.dumps(openvla_config(model.arch, norm_stats, dtype), indent=2) + "\n")
    save_statistics(dict(norm_stats or {}), directory)
    return directory
