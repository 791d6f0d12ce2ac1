"""The VLA as a roboforge policy: training loss, acting, autoregressive vs parallel (OFT) decoding,
saving and loading, train.py's policy=vla. Tiny random models only."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from policies import Policy
from policies.common.config import ConfigError
from policies.vla import VLAConfig, VLAPolicy

pytestmark = pytest.mark.usefixtures("one_torch_thread")

INSTRUCTIONS = ["stack the red block on the blue block", "push the cube into the zone"]


def make_policy(seed: int = 0, **kw) -> VLAPolicy:
    torch.manual_seed(seed)
    policy = VLAPolicy(VLAConfig(action_dim=7, **kw))
    policy.fit_statistics(np.random.default_rng(seed).uniform(-1, 1, (300, 7)), num_trajectories=10)
    return policy


def make_batch(rng, b=4, k=8):
    return {"obs": {"front_rgb": torch.from_numpy(rng.integers(0, 255, (b, 1, 56, 56, 3), dtype=np.uint8))},
            "action": torch.from_numpy(rng.uniform(-1, 1, (b, k, 7)).astype(np.float32)),
            "instruction": [INSTRUCTIONS[i % 2] for i in range(b)]}


MODES = [dict(), dict(decoding="parallel", chunk_size=4), dict(decoding="parallel", chunk_size=4, action_head="l1"),
         dict(lora_rank=4)]


@pytest.mark.parametrize("kw", MODES, ids=["autoregressive", "parallel-tokens", "parallel-l1", "lora"])
def test_policy_trains_acts_and_round_trips(kw, tmp_path):
    rng = np.random.default_rng(0)
    policy = make_policy(**kw)
    loss = policy.compute_loss(make_batch(rng))
    assert torch.isfinite(loss)
    loss.backward()
    assert any(p.grad is not None for p in policy.parameters())
    policy.eval()
    obs = {"front_rgb": rng.integers(0, 255, (2, 56, 56, 3), dtype=np.uint8)}
    policy.reset(instruction=INSTRUCTIONS)
    chunk = policy.predict_action_chunk(obs)
    k = kw.get("chunk_size", 1)
    assert chunk.shape == (2, k, 7) and chunk.dtype == np.float32
    assert policy.select_action(obs).shape == (2, 7)
    policy.save_pretrained(tmp_path)
    stats = json.loads((tmp_path / "dataset_statistics.json").read_text())
    assert set(stats["roboforge"]["action"]) == {"mean", "std", "max", "min", "q01", "q99", "mask"}
    again = Policy.from_pretrained(tmp_path)
    again.reset(instruction=INSTRUCTIONS)
    np.testing.assert_array_equal(again.predict_action_chunk(obs), chunk)


def test_batched_greedy_decoding_equals_openvlas_one_prompt_decoding():
    policy = make_policy(chunk_size=2).eval()
    rng = np.random.default_rng(1)
    images = rng.integers(0, 255, (2, 56, 56, 3), dtype=np.uint8)
    from policies.vla.processing import pixel_values

    with torch.no_grad():
        px = pixel_values(images, 56)
        prompts = [policy.text_tokenizer.encode_prompt(s) for s in INSTRUCTIONS]   # different lengths
        batched = policy._greedy(prompts, px, 14)
        for i, prompt in enumerate(prompts):
            alone = policy.network.generate_greedy(torch.tensor([prompt]), px[i:i + 1], 14)
            assert torch.equal(batched[i], alone[0])


def test_parallel_slots_attend_both_ways_and_the_prompt_never_sees_them():
    policy = make_policy(decoding="parallel", chunk_size=2).eval()
    net = policy.network
    px = torch.zeros(2, 6, 56, 56)
    prompts = [[1, 40, 41], [1, 40, 41, 42, 43]]
    _, mask, pos = net.multimodal_batch(prompts, px, n_slots=4, bidirectional_slots=True)
    L = mask.shape[-1]
    assert mask[:, 0, L - 4:, L - 4:].all()                          # slots see every slot
    assert not mask[:, 0, :L - 4, L - 4:].any()                      # no prompt position sees a slot
    assert not mask[0, 0, L - 1, :2].any()                           # left padding is never attended
    assert pos[0, -1] == pos[1, -1] - 2                              # positions count from each row's BOS
    # the first slot's output changes with the slots after it (bidirectional), which causal decoding forbids
    with torch.no_grad():
        few = policy._lm(*net.multimodal_batch(prompts[:1], px[:1], n_slots=2, bidirectional_slots=True)).logits
        many = policy._lm(*net.multimodal_batch(prompts[:1], px[:1], n_slots=6, bidirectional_slots=True)).logits
    assert not torch.allclose(few[0, -2], many[0, -6])


def test_tiny_vla_fits_a_fixed_batch():
    rng = np.random.default_rng(2)
    policy = make_policy(decoding="parallel", chunk_size=1, action_head="l1")
    batch = make_batch(rng, b=2, k=1)
    opt = torch.optim.AdamW(policy.parameters(), lr=1e-2)
    first = None
    for _ in range(25):
        loss = policy.compute_loss(batch)
        opt.zero_grad()
        loss.backward()
        opt.step()
        first = first if first is not None else loss.item()
    assert loss.item() < 0.5 * first


def test_acting_needs_the_instruction_and_the_camera():
    policy = make_policy().eval()
    obs = {"front_rgb": np.zeros((56, 56, 3), np.uint8)}
    with pytest.raises(ValueError, match=r"call policy.reset\(instruction=info\['instruction'\]\)"):
        policy.select_action(obs)
    policy.reset(instruction="push the cube")
    with pytest.raises(ValueError, match=r"reads the \['front_rgb'\] images; \['front_rgb'\] missing"):
        policy.select_action({"state": np.zeros(10)})
    assert policy.select_action(obs).shape == (7,)                   # any image size is resized


def test_two_cameras_put_both_images_in_the_sequence_and_old_configs_load(tmp_path):
    """OpenVLA-OFT's wrist camera: each image through the same backbone, the patches one after the
    other; the action depends on the wrist image too; a checkpoint naming one ``camera`` loads."""
    rng = np.random.default_rng(0)
    policy = make_policy(cameras=["front", "wrist"], decoding="parallel", chunk_size=2, action_head="l1")
    batch = make_batch(rng)
    batch["obs"]["wrist_rgb"] = torch.from_numpy(rng.integers(0, 255, (4, 1, 56, 56, 3), dtype=np.uint8))
    assert torch.isfinite(policy.compute_loss(batch))
    px = policy._pixels([batch["obs"]["front_rgb"][:, 0], batch["obs"]["wrist_rgb"][:, 0]])
    assert px.shape == (4, 12, 56, 56)
    features = policy.network.vision_backbone(px)
    assert features.shape[1] == 2 * policy.arch.num_patches
    torch.testing.assert_close(features[:, :policy.arch.num_patches], policy.network.vision_backbone(px[:, :6]))
    policy.eval()
    obs = {"front_rgb": rng.integers(0, 255, (2, 56, 56, 3), dtype=np.uint8),
           "wrist_rgb": rng.integers(0, 255, (2, 56, 56, 3), dtype=np.uint8)}
    policy.reset(instruction=INSTRUCTIONS)
    chunk = policy.predict_action_chunk(obs)
    other = policy.predict_action_chunk({**obs, "wrist_rgb": 255 - obs["wrist_rgb"]})
    assert chunk.shape == (2, 2, 7) and not np.allclose(chunk, other)
    with pytest.raises(ValueError, match=r"\['wrist_rgb'\] missing"):
        policy.predict_action_chunk({"front_rgb": obs["front_rgb"]})
    policy.save_pretrained(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["cameras"] == ["front", "wrist"]
    config.pop("cameras")
    (tmp_path / "config.json").write_text(json.dumps({**config, "camera": "wrist"}))
    assert Policy.from_pretrained(tmp_path).config.cameras == ("wrist",)
    with pytest.raises(ConfigError, match="cameras=.* is invalid; allowed: a list of distinct cameras"):
        VLAConfig(cameras=["front", "side"])


def test_config_errors_name_the_key():
    with pytest.raises(ConfigError, match="decoding='beam' is invalid; allowed: autoregressive, parallel"):
        VLAConfig(decoding="beam")
    with pytest.raises(ConfigError, match="action_head='l1' is invalid; allowed: tokens with decoding=autoregressive"):
        VLAConfig(action_head="l1")
    with pytest.raises(ConfigError, match="weights=None is invalid; allowed: an OpenVLA checkpoint directory"):
        VLAConfig(size="openvla-7b")
    from train.config import compose

    with pytest.raises(ConfigError, match="obs_mode='state' is invalid; allowed: rgb for policy=vla"):
        compose("policy=vla", "env=reach_target")
    assert compose("policy=vla", "obs_mode=rgb", "policy.decoding=parallel").policy.decoding == "parallel"


@pytest.mark.slow
@pytest.mark.timeout(1800)   # demos with images on a shared 2-core machine: ~3 min quiet, far more when loaded
def test_train_py_runs_the_tiny_vla(tmp_path):
    from tests.test_train_cli import run_cli

    res = run_cli("policy=vla", "env=[reach_target,push_to_zone]", "obs_mode=rgb", f"data.store_root={tmp_path}/demos",
                  f"hydra.run.dir={tmp_path}/run", "data.num_demos=2", "train.steps=4", "train.batch_size=8",
                  "train.checkpoint_every=4", "eval.episodes=1", "eval.num_videos=0", "eval.max_episode_steps=8",
                  "progress=false", "train.num_threads=1", "policy.decoding=parallel", "policy.chunk_size=4",
                  timeout=1700)
    assert res.returncode == 0, res.stderr[-3000:]
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["policy"] == "vla" and set(metrics["per_task"]) == {"reach_target", "push_to_zone"}
    assert (tmp_path / "run" / "checkpoints" / "last" / "dataset_statistics.json").exists()


def test_proprio_token_is_read_trained_and_saved(tmp_path):
    rng = np.random.default_rng(0)
    torch.manual_seed(0)
    policy = VLAPolicy(VLAConfig(action_dim=7, decoding="parallel", chunk_size=2, action_head="l1", use_proprio=True,
                                 proprio_dim=22))
    with pytest.raises(ValueError, match=r"pass proprio= \(N, 22\)"):
        policy.fit_statistics(rng.uniform(-1, 1, (300, 7)), num_trajectories=10)
    policy.fit_statistics(rng.uniform(-1, 1, (300, 7)), num_trajectories=10, proprio=rng.normal(size=(300, 22)))
    batch = make_batch(rng, k=2)
    batch["obs"]["proprio"] = torch.randn(4, 1, 22)
    loss = policy.compute_loss(batch)
    loss.backward()
    assert policy.proprio_projector.fc1.weight.grad.abs().sum() > 0
    policy.eval()
    policy.reset(instruction=INSTRUCTIONS[0])
    image = rng.integers(0, 255, (56, 56, 3), dtype=np.uint8)
    state = rng.normal(size=45)
    a = policy.predict_action_chunk({"front_rgb": image, "state": state})          # proprio = state[:22]
    assert not np.allclose(a, policy.predict_action_chunk({"front_rgb": image, "state": state + 1}))
    np.testing.assert_array_equal(a, policy.predict_action_chunk({"front_rgb": image, "proprio": state[:22]}))
    with pytest.raises(ValueError, match="needs 'proprio' or 'state'"):
        policy.predict_action_chunk({"front_rgb": image})
    policy.save_pretrained(tmp_path)
    again = Policy.from_pretrained(tmp_path)
    again.reset(instruction=INSTRUCTIONS[0])
    np.testing.assert_array_equal(again.predict_action_chunk({"front_rgb": image, "state": state}), a)
    with pytest.raises(ValueError, match="use_proprio=true needs proprio_dim >= 1"):
        VLAPolicy(VLAConfig(action_dim=7, use_proprio=True))


def test_images_of_another_size_are_resized_and_other_channels_refused():
    policy = make_policy().eval()
    policy.reset(instruction=INSTRUCTIONS[0])
    rng = np.random.default_rng(0)
    assert policy.predict_action_chunk({"front_rgb": rng.integers(0, 255, (40, 30, 3), dtype=np.uint8)}).shape == (1, 7)
    for shape in [(56, 56, 4), (56, 56), (56, 56, 1)]:
        with pytest.raises(ValueError, match=r"front_rgb has shape .*expected \(H, W, 3\) RGB.*resized to 56x56"):
            policy.predict_action_chunk({"front_rgb": np.zeros(shape, np.uint8)})


def test_an_unnorm_key_the_policy_lacks_lists_the_ones_it_has():
    policy = make_policy().eval()
    policy.config.unnorm_key = "bridge_orig"
    policy.reset(instruction=INSTRUCTIONS[0])
    with pytest.raises(ValueError, match="unnorm_key='bridge_orig' is invalid; allowed: roboforge"):
        policy.predict_action_chunk({"front_rgb": np.zeros((56, 56, 3), np.uint8)})


@pytest.mark.parametrize("arg, new", [("vla=tiny", "policy.size=tiny"), ("vla.decoding=parallel", "policy.decoding=parallel"),
                                      ("vla.lora.rank=32", "policy.lora_rank=32"),
                                      ("vla.weights=/w", "policy.weights=/w")])
def test_the_issues_vla_spelling_points_to_the_policy_keys(arg, new):
    from train.run_checks import preflight

    problem = preflight(["policy=vla", arg, "env=builtin", "obs_mode=rgb"], lambda config: None)
    assert problem.startswith(f"{arg} is invalid") and f"use {new} " in problem


def test_4bit_on_cpu_is_refused_before_any_work():
    from train.run_checks import preflight

    problem = preflight(["policy=vla", "env=reach_target", "obs_mode=rgb", "policy.lora_rank=4",
                         "policy.load_in_4bit=true"], lambda config: None)
    assert "policy.load_in_4bit" in problem and "need CUDA" in problem


def _square_scene(rng, b):
    """One white square at a random place in the front image; its slot says where (pos in dm / 10)."""
    from envs.core import observation as ob

    images = np.zeros((b, 1, 56, 56, 3), np.uint8)
    slots = np.zeros((b, 1, ob.SLOTS_DIM), np.float32)
    for i in range(b):
        u, v = rng.integers(6, 50, 2)
        images[i, 0, v - 5:v + 5, u - 5:u + 5] = 255
        objects = ob.split_slots(slots[i])[1]
        objects[0, 0, ob.SLOT_FIELD_SLICES["present"]] = 1.0
        objects[0, 0, ob.SLOT_FIELD_SLICES["pos"]] = [u / 100, v / 100, 0.02]   # 0.6-5 dm
    return {"obs": {"front_rgb": torch.from_numpy(images)}, "targets": {"slots": torch.from_numpy(slots)},
            "action": torch.zeros(b, 1, 7), "instruction": [INSTRUCTIONS[0]] * b}


def test_aux_position_loss_reaches_the_vision_tower_and_is_saved(tmp_path):
    """policy.aux_position_loss: a head on the action slots' mean hidden state regresses the task's
    objects' places (training targets from the slots); its loss trains the vision backbone."""
    policy = make_policy(decoding="parallel", chunk_size=1, action_head="l1", aux_position_loss=1.0)
    batch = _square_scene(np.random.default_rng(3), 4)
    plain = make_policy(decoding="parallel", chunk_size=1, action_head="l1")
    assert policy.compute_loss(batch).item() > plain.compute_loss(batch).item()   # the position term is added
    policy.compute_loss(batch).backward()
    vision = [p for n, p in policy.named_parameters() if "vision_backbone" in n]
    assert vision and any(p.grad is not None and p.grad.abs().sum() > 0 for p in vision)
    policy.save_pretrained(tmp_path)
    assert torch.equal(Policy.from_pretrained(tmp_path).position_head.weight, policy.position_head.weight)
    with pytest.raises(ValueError, match=r"needs batch\['targets'\]\['slots'\]"):
        policy.compute_loss({k: v for k, v in batch.items() if k != "targets"})
    with pytest.raises(ConfigError, match="aux_position_loss=1.0 is invalid; allowed: a number >= 0; > 0 only "
                                          "with decoding=parallel"):
        VLAConfig(action_dim=7, aux_position_loss=1.0)


@pytest.mark.slow
def test_aux_position_loss_teaches_the_tiny_vla_where_the_object_is():
    """On the toy, the head learns the square's place from the pixels through the whole model.
    At lr 1e-3 it stays at the spread for 300 steps; at 3e-4 it drops after ~400 (a plateau first)."""
    from envs.core import observation as ob

    rng = np.random.default_rng(3)
    policy = make_policy(decoding="parallel", chunk_size=1, action_head="l1", aux_position_loss=1.0)
    test = _square_scene(rng, 64)
    pos = ob.split_slots(test["targets"]["slots"][:, -1])[1][:, 0, ob.SLOT_FIELD_SLICES["pos"]] * 10
    spread = (pos - pos.mean(0)).pow(2).sum(-1).mean().item()
    opt = torch.optim.AdamW(policy.parameters(), lr=3e-4)
    for _ in range(600):
        loss = policy.compute_loss(_square_scene(rng, 32))
        opt.zero_grad(), loss.backward(), opt.step()
    guessed = {}
    policy.position_head.register_forward_hook(lambda m, i, o: guessed.update(o=o.detach()))
    with torch.no_grad():
        policy.eval().compute_loss(test)
    assert (guessed["o"][:, :3] - pos).pow(2).sum(-1).mean().item() < 0.3 * spread
