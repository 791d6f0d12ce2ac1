"""Export of multitask, language- and camera-conditioned diffusion policies: the manifest (task
set, slot layout, cameras and crop, language encoder), the runtime's inputs (the env's dict, an
instruction string or its embedding), and verify on the tasks' own observations.

Fast tests use TorchScript graphs and leave the text encoder out (an ONNX export takes about a
minute here); the ONNX + text-encoder path, torch-free, is the ``slow`` tests at the end."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch
import yaml

import envs
from envs.core.observation import AGENT_DIM, MAX_OBJECTS, SLOT_DIM, SLOTS_DIM
from policies.diffusion import DiffusionConfig, DiffusionPolicy
from policies.export import ExportError, export_policy
from policies.export.runtime import ExportedPolicy, InstructionTruncatedWarning, ObservationError

pytestmark = pytest.mark.usefixtures("one_torch_thread")

ROOT = Path(__file__).resolve().parents[1]
TASKS = ["stack_blocks", "place_in_zone"]
TINY = dict(n_obs_steps=2, horizon=8, n_action_steps=4, down_dims=(8, 16), kernel_size=3, n_groups=4,
            diffusion_step_embed_dim=8, num_inference_steps=2, action_dim=7)
IMAGE_SIZE = 32


def write_run(run: Path, policy: DiffusionPolicy, env, obs_mode: str) -> Path:
    """A run directory as train.py writes it: config.yaml + checkpoints/last."""
    rng = np.random.default_rng(0)
    policy.fit_normalizer(rng.normal(size=(50, policy.config.obs_dim)), rng.uniform(-1, 1, (50, 7)))
    policy.save_pretrained(run / "checkpoints" / "last")
    (run / "config.yaml").write_text(yaml.safe_dump({"env": env, "sim": {"name": "mujoco"}, "obs_mode": obs_mode,
                                                     "control_mode": "ee_delta_pose", "library": None}))
    return run / "checkpoints" / "last"


@pytest.fixture(scope="module")
def language_ckpt(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    policy = DiffusionPolicy(DiffusionConfig(**TINY, obs_dim=SLOTS_DIM, obs_key="slots",
                                             instruction_encoder="all-MiniLM-L6-v2"))
    return write_run(tmp_path_factory.mktemp("lang"), policy, TASKS, "slots")


@pytest.fixture(scope="module")
def fusion_ckpt(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    policy = DiffusionPolicy(DiffusionConfig(**TINY, obs_dim=SLOTS_DIM, obs_key="slots",
                                             instruction_encoder="all-MiniLM-L6-v2", obs_encoder="transformer",
                                             fusion_dim=16, fusion_heads=2, fusion_readouts=2, instruction_tokens=16,
                                             fusion_pointer=True))
    return write_run(tmp_path_factory.mktemp("fusion"), policy, TASKS, "slots")


@pytest.fixture(scope="module")
def visual_ckpt(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    policy = DiffusionPolicy(DiffusionConfig(**TINY, obs_dim=AGENT_DIM, obs_key="proprio", cameras=("front", "wrist"),
                                             image_size=IMAGE_SIZE))
    return write_run(tmp_path_factory.mktemp("rgb"), policy, "reach_target", "rgb")


@pytest.fixture(scope="module")
def language_ts(language_ckpt, tmp_path_factory) -> Path:
    return export_policy(language_ckpt, "torchscript", tmp_path_factory.mktemp("exp") / "lang", text_encoder=False)


@pytest.fixture(scope="module")
def visual_ts(visual_ckpt, tmp_path_factory) -> Path:
    return export_policy(visual_ckpt, "torchscript", tmp_path_factory.mktemp("exp") / "rgb")


def unit_rows(n: int, seed: int = 0) -> np.ndarray:
    x = np.random.default_rng(seed).normal(size=(n, 384)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


# -- language + slots, several tasks --------------------------------------------------------------
def test_multitask_manifest_names_the_tasks_slot_layout_and_language(language_ts):
    m = json.loads((language_ts / "manifest.json").read_text())
    assert m["task"]["tasks"] == TASKS and set(m["task"]["instruction_templates"]) == set(TASKS)
    assert m["obs_mode"] == "slots"
    [slots] = m["observation"]["keys"]
    assert slots["name"] == "slots" and slots["input"] == "obs_history" and slots["shape"] == [SLOTS_DIM]
    layout = m["observation"]["slot_layout"]
    assert (layout["agent_dim"], layout["max_objects"], layout["slot_dim"]) == (AGENT_DIM, MAX_OBJECTS, SLOT_DIM)
    assert [f["name"] for f in layout["slot_fields"]][:2] == ["present", "pos"]
    assert slots["fields"][-1]["name"] == f"slot_{MAX_OBJECTS - 1}.goal_delta" and slots["fields"][-1]["units"] == "m"
    assert [i["name"] for i in m["model"]["inputs"]] == ["obs_history", "instruction_embedding", "noise"]
    lang = m["language"]
    assert lang["encoder"] == "all-MiniLM-L6-v2" and lang["dim"] == 384 and lang["text_encoder"] is None
    assert lang["runtime_accepts"] == ["instruction_embedding (384 float32, unit norm, by all-MiniLM-L6-v2)"]
    assert m["cameras"] == [] and m["image_processing"] is None


def test_runtime_takes_the_instruction_embedding_and_says_so(language_ts, language_ckpt):
    policy = DiffusionPolicy.from_pretrained(language_ckpt)
    p = ExportedPolicy(language_ts)
    assert p.reads_instruction and p.instruction_input is None
    env = gym.make(envs.env_id("place_in_zone"), obs_mode="slots")
    obs, _ = env.reset(seed=1)
    env.close()
    emb = unit_rows(2)
    p.reset(instruction_embedding=emb[0], seed=3)
    assert p.instruction_input == "embedding" and "instruction via embedding" in repr(p)
    chunk = p.predict_action_chunk(obs)
    noise = np.random.default_rng(3).standard_normal((1, 8, 7), dtype=np.float32)
    ref = policy(torch.from_numpy(np.stack([obs, obs])[None]), torch.from_numpy(noise),
                 instruction_embedding=torch.from_numpy(emb[:1]))[0].numpy()
    np.testing.assert_allclose(chunk, ref, atol=1e-5)
    p.reset(instruction_embedding=emb[1], seed=3)   # another instruction, another chunk
    assert not np.allclose(p.predict_action_chunk(obs), chunk, atol=1e-4)
    p.reset(instruction_embedding=emb)               # one per row of a lockstep batch
    assert p.select_action(np.stack([obs, obs])).shape == (2, 7)


def test_instruction_errors_say_what_to_pass(language_ts):
    p = ExportedPolicy(language_ts)
    obs = np.zeros(SLOTS_DIM, np.float32)
    p.reset()
    with pytest.raises(ValueError, match=r"reads an instruction: call reset\(instruction=...\)"):
        p.select_action(obs)
    with pytest.raises(ValueError, match=r"exported without its text encoder.*reset\(instruction_embedding=...\)"):
        p.reset(instruction="stack the red block on the blue block")
    with pytest.raises(ValueError, match=r"instruction_embedding has shape \(12,\); expected \(384,\)"):
        p.reset(instruction_embedding=np.zeros(12))
    with pytest.raises(ValueError, match="not both"):
        p.reset(instruction="x", instruction_embedding=unit_rows(1)[0])
    p.reset(instruction_embedding=unit_rows(3))
    with pytest.raises(ValueError, match="3 instructions for a batch of 2"):
        p.select_action(np.zeros((2, SLOTS_DIM), np.float32))


def test_a_token_fusion_policy_exports_with_word_pieces_as_its_instruction(fusion_ckpt, tmp_path):
    """obs_encoder=transformer reads the instruction's word pieces: the graph takes (batch, 16, 384),
    rebuilds the padding mask from the zero rows, and acts as the torch policy does."""
    policy = DiffusionPolicy.from_pretrained(fusion_ckpt)
    out = export_policy(fusion_ckpt, "torchscript", tmp_path / "fusion", text_encoder=False)
    m = json.loads((out / "manifest.json").read_text())
    assert m["model"]["inputs"][1] == {**m["model"]["inputs"][1], "name": "instruction_embedding",
                                       "shape": ["batch", 16, 384]}
    assert m["language"]["tokens"] == 16 and m["export_check"]["max_abs_diff"] <= 1e-4
    words, mask = policy.embed_instructions(["stack the red block on the blue block"])
    obs = np.random.default_rng(2).normal(size=SLOTS_DIM).astype(np.float32)
    p = ExportedPolicy(out)
    p.reset(instruction_embedding=words[0].numpy(), seed=3)
    chunk = p.predict_action_chunk(obs)
    noise = np.random.default_rng(3).standard_normal((1, 8, 7), dtype=np.float32)
    ref = policy(torch.from_numpy(np.stack([obs, obs])[None]), torch.from_numpy(noise),
                 instruction_embedding=(words, mask))[0].numpy()
    np.testing.assert_allclose(chunk, ref, atol=1e-5)
    with pytest.raises(ValueError, match=r"instruction_embedding has shape \(384,\); expected \(16, 384\)"):
        p.reset(instruction_embedding=unit_rows(1)[0])


# -- cameras + proprio ------------------------------------------------------------------------------
def test_visuomotor_manifest_names_cameras_image_size_crop_and_proprio(visual_ts):
    m = json.loads((visual_ts / "manifest.json").read_text())
    keys = {k["name"]: k for k in m["observation"]["keys"]}
    assert list(keys) == ["proprio", "front_rgb", "wrist_rgb"]
    assert keys["proprio"]["from"]["key"] == "state" and keys["proprio"]["from"]["slice"] == [0, AGENT_DIM]
    assert [f["name"] for f in keys["proprio"]["fields"]] == ["qpos", "qvel", "gripper_width", "tcp_pos", "tcp_quat"]
    assert keys["front_rgb"]["shape"] == [IMAGE_SIZE, IMAGE_SIZE, 3] and keys["front_rgb"]["dtype"] == "uint8"
    cams = {c["name"]: c for c in m["cameras"]}
    assert set(cams) == {"front", "wrist"} and cams["front"]["width"] == IMAGE_SIZE
    assert cams["wrist"]["keys"] == ["wrist_rgb"] and cams["front"]["crop"]["size"] == round(0.9 * IMAGE_SIZE)
    assert m["image_processing"]["image_size"] == IMAGE_SIZE and m["image_processing"]["inside_graph"]
    assert m["language"] is None
    inputs = {i["name"]: i for i in m["model"]["inputs"]}
    assert inputs["front_rgb"]["shape"] == ["batch", 2, IMAGE_SIZE, IMAGE_SIZE, 3] and inputs["front_rgb"]["dtype"] == "uint8"


def test_visuomotor_runtime_reads_the_env_dict_like_torch(visual_ts, visual_ckpt):
    policy = DiffusionPolicy.from_pretrained(visual_ckpt)
    p = ExportedPolicy(visual_ts)
    env = gym.make(envs.env_id("reach_target"), obs_mode="rgb", image_size=IMAGE_SIZE)
    obs, _ = env.reset(seed=2)
    env.close()
    p.reset(seed=5)
    chunk = p.predict_action_chunk(obs)
    noise = np.random.default_rng(5).standard_normal((1, 8, 7), dtype=np.float32)
    hist = {"proprio": torch.from_numpy(np.stack([obs["state"][:AGENT_DIM]] * 2)[None])}
    hist.update({k: torch.from_numpy(np.stack([obs[k]] * 2)[None]) for k in ("front_rgb", "wrist_rgb")})
    ref = policy(hist, torch.from_numpy(noise))[0].numpy()
    np.testing.assert_allclose(chunk, ref, atol=1e-5)
    # the privileged part of state (objects, goals) is not read; the images are
    p.reset(seed=5)
    hidden = {**obs, "state": np.concatenate([obs["state"][:AGENT_DIM], obs["state"][AGENT_DIM:] + 1])}
    np.testing.assert_array_equal(p.predict_action_chunk(hidden), chunk)
    p.reset(seed=5)
    assert not np.allclose(p.predict_action_chunk({**obs, "front_rgb": 255 - obs["front_rgb"]}), chunk, atol=1e-6)


def exported_matches_torch(out: Path, ckpt: Path, task: str, obs_mode: str, keys: tuple[str, ...]):
    """The runtime's chunk on one reset observation of ``task`` (its history: that observation
    twice) equals the torch checkpoint's with the same noise; -> (runtime, obs, chunk)."""
    policy = DiffusionPolicy.from_pretrained(ckpt)
    env = gym.make(envs.env_id(task), obs_mode=obs_mode, image_size=IMAGE_SIZE)
    obs, _ = env.reset(seed=2)
    env.close()
    p = ExportedPolicy(out)
    p.reset(seed=5)
    noise = np.random.default_rng(5).standard_normal((1, 8, 7), dtype=np.float32)
    hist = {k: torch.from_numpy(np.stack([obs[k]] * 2)[None]) for k in keys}
    hist["proprio"] = torch.from_numpy(np.stack([obs["state"][:AGENT_DIM]] * 2)[None])
    chunk = p.predict_action_chunk(obs)
    np.testing.assert_allclose(chunk, policy(hist, torch.from_numpy(noise))[0].numpy(), atol=1e-5)
    return p, obs, chunk


@pytest.mark.parametrize("from_tcp", [False, True], ids=["head_guesses_rel_pos", "rel_pos_from_proprio"])
def test_a_policy_that_reads_its_position_guess_exports_like_torch(tmp_path, from_tcp):
    """position_condition: the position head's guess is part of the graph's condition (the head's
    targets are training-only; the exported policy needs only the cameras and the proprio)."""
    torch.manual_seed(0)
    policy = DiffusionPolicy(DiffusionConfig(**TINY, obs_dim=AGENT_DIM, obs_key="proprio", cameras=("front", "wrist"),
                                             image_size=IMAGE_SIZE, aux_position_loss=1.0, position_condition=True,
                                             position_from_tcp=from_tcp))
    ckpt = write_run(tmp_path / "run", policy, "reach_target", "rgb")
    out = export_policy(ckpt, "torchscript", tmp_path / "exp")
    p, obs, chunk = exported_matches_torch(out, ckpt, "reach_target", "rgb", ("front_rgb", "wrist_rgb"))
    # the guess comes from the pixels: the privileged part of state (objects, goals) is not read
    p.reset(seed=5)
    hidden = {**obs, "state": np.concatenate([obs["state"][:AGENT_DIM], obs["state"][AGENT_DIM:] + 1])}
    np.testing.assert_array_equal(p.predict_action_chunk(hidden), chunk)


def test_a_pointcloud_policy_exports_like_torch(tmp_path):
    """obs_mode=pointcloud: the env's cloud is a graph input (the points read picked inside the
    graph), the manifest names its columns, and the runtime on the env's dict matches torch."""
    torch.manual_seed(0)
    policy = DiffusionPolicy(DiffusionConfig(**TINY, obs_dim=AGENT_DIM, obs_key="proprio", pointcloud_dim=6,
                                             pointcloud_points=64, pointcloud_feature_dim=16))
    ckpt = write_run(tmp_path / "run", policy, "stack_blocks", "pointcloud")
    out = export_policy(ckpt, "torchscript", tmp_path / "exp")
    m = json.loads((out / "manifest.json").read_text())
    assert [i["name"] for i in m["model"]["inputs"]] == ["obs_history", "pointcloud", "noise"]
    cloud = {k["name"]: k for k in m["observation"]["keys"]}["pointcloud"]
    assert [f["name"] for f in cloud["fields"]] == ["xyz", "rgb"] and "64 evenly spaced" in cloud["processing"]
    p, obs, chunk = exported_matches_torch(out, ckpt, "stack_blocks", "pointcloud", ("pointcloud",))
    p.reset(seed=5)
    moved = obs["pointcloud"].copy()
    moved[:, 2] += 0.1
    assert not np.allclose(p.predict_action_chunk({**obs, "pointcloud": moved}), chunk, atol=1e-6)


def test_visuomotor_bad_observations_are_named(visual_ts, visual_ckpt, tmp_path):
    p = ExportedPolicy(visual_ts)
    rng = np.random.default_rng(0)
    obs = {"state": rng.normal(size=40).astype(np.float32),
           "front_rgb": rng.integers(0, 255, (IMAGE_SIZE, IMAGE_SIZE, 3), dtype=np.uint8),
           "wrist_rgb": rng.integers(0, 255, (IMAGE_SIZE, IMAGE_SIZE, 3), dtype=np.uint8)}
    with pytest.raises(ObservationError, match="pass the env's dict observation"):
        p.select_action(obs["state"])
    with pytest.raises(ObservationError, match=r"lacks \['wrist_rgb'\]"):
        p.select_action({k: v for k, v in obs.items() if k != "wrist_rgb"})
    with pytest.raises(ObservationError, match="front_rgb has dtype float64; expected uint8"):
        p.select_action({**obs, "front_rgb": obs["front_rgb"] / 255.0})
    with pytest.raises(ObservationError, match=r"wrist_rgb has shape \(64, 64, 3\); expected \(32, 32, 3\)"):
        p.select_action({**obs, "wrist_rgb": np.zeros((64, 64, 3), np.uint8)})
    assert p.select_action(obs).shape == (7,)
    # the export checks the policy against the environment it names
    with pytest.raises(ExportError, match=r"reads front_rgb \[32, 32, 3\] but task 'reach_target' with obs_mode=state"):
        export_policy(visual_ckpt, "torchscript", tmp_path / "x", obs_mode="state")


# -- the ONNX + text-encoder path, torch-free (slow: each ONNX export takes about a minute here) ------
@pytest.mark.slow
def test_text_encoder_export_matches_training_and_warns_on_truncation(tmp_path):
    from envs.core import text_embedding
    from policies.export.runtime import TextEncoder
    from policies.export.text_encoder import export_text_encoder

    spec = export_text_encoder("all-MiniLM-L6-v2", tmp_path)
    enc = TextEncoder(tmp_path, spec)
    texts = ["stack the red block on the blue block", "push the green cube into the zone", "x"]
    ref = text_embedding.sentence_model().encode(texts, normalize_embeddings=True)
    np.testing.assert_allclose(enc(texts), ref, atol=1e-5)
    long = " ".join(["put the red block on the blue block"] * 60)
    with pytest.warns(InstructionTruncatedWarning, match="256 word pieces"):
        got = enc([long])
    np.testing.assert_allclose(got, text_embedding.sentence_model().encode([long], normalize_embeddings=True),
                               atol=1e-5)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        enc([long])   # once per string
    # a token-fusion policy's view: each instruction's first 16 word pieces, as training embeds them
    from policies.common.encoders import MiniLMInstructionEncoder

    pieces = TextEncoder(tmp_path, spec, tokens=16)
    np.testing.assert_allclose(pieces(texts), MiniLMInstructionEncoder().encode_tokens(texts, 16)[0], atol=1e-5)
    with pytest.warns(InstructionTruncatedWarning, match="cut to the policy's 16"):
        pieces([texts[0] + " and then push the green cube into the zone"])


@pytest.mark.slow
def test_onnx_language_export_runs_torch_free_from_a_string_and_verifies(language_ckpt, tmp_path):
    from train.verify_export import verify_export

    out = export_policy(language_ckpt, "onnx", tmp_path / "onnx")
    assert {"model.onnx", "text_encoder.onnx", "tokenizer.json", "manifest.json"} <= {p.name for p in out.iterdir()}
    m = json.loads((out / "manifest.json").read_text())
    assert m["language"]["text_encoder"]["file"] == "text_encoder.onnx"
    assert m["export_check"]["max_abs_diff"] <= 1e-4 and m["export_check"]["text_encoder_max_abs_diff"] <= 1e-5
    code = ("import sys, numpy as np\n"
            "from roboforge_runtime import ExportedPolicy\n"
            "p = ExportedPolicy('.')\n"
            "p.reset(instruction='stack the red block on the blue block')\n"
            "assert p.instruction_input == 'instruction', p.instruction_input\n"
            "a = p.select_action(np.zeros(p.obs_dim, np.float32))\n"
            "assert a.shape == (7,) and 'torch' not in sys.modules\n"
            "print('ok')\n")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=out, timeout=300)
    assert r.returncode == 0 and "ok" in r.stdout, r.stderr
    r = verify_export(out, language_ckpt, episodes=1, progress=False)
    assert r["fidelity"]["passed"] and r["fidelity"]["text_encoder"]["passed"]
    assert r["fidelity"]["inputs"] == ["obs_history", "instruction_embedding", "noise"]
    assert set(r["success_exported"]["per_task"]) == set(TASKS) and r["success_exported"]["num_episodes"] == 2


@pytest.mark.slow
def test_onnx_visuomotor_export_verifies_on_rendered_observations(visual_ckpt, tmp_path):
    from train.verify_export import verify_export

    out = export_policy(visual_ckpt, "onnx", tmp_path / "onnx")
    r = verify_export(out, visual_ckpt, episodes=1, progress=False)
    assert r["fidelity"]["passed"] and r["fidelity"]["inputs"] == ["obs_history", "front_rgb", "wrist_rgb", "noise"]
    assert r["success_exported"]["num_episodes"] == 1
