"""Export of the tiny VLA through policies.export: the manifest's byte-prompt text side, the runtime
writing the prompt ids from the instruction string, and the exported graph acting as the torch
policy does on a rendered observation. The fast test traces TorchScript; the ONNX export, run
torch-free, is the ``slow`` one (an ONNX export takes about a minute here)."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch
import yaml

import envs
from policies import Policy
from policies.export import ExportError, export_policy
from policies.export.runtime import ExportedPolicy
from policies.vla import VLAConfig, VLAPolicy

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TASKS = ["reach_target", "place_in_zone"]


def write_run(run: Path, **kw) -> Path:
    """A tiny VLA saved as train.py saves it: config.yaml + checkpoints/last."""
    rng = np.random.default_rng(0)
    torch.manual_seed(0)
    policy = VLAPolicy(VLAConfig(action_dim=7, **kw))
    policy.fit_statistics(rng.uniform(-1, 1, (300, 7)), num_trajectories=10,
                          proprio=rng.normal(size=(300, 22)) if kw.get("use_proprio") else None)
    policy.save_pretrained(run / "checkpoints" / "last")
    (run / "config.yaml").write_text(yaml.safe_dump({"env": TASKS, "sim": {"name": "mujoco"}, "obs_mode": "rgb",
                                                     "control_mode": "ee_delta_pose", "library": None}))
    return run / "checkpoints" / "last"


def rendered(task: str, seed: int):
    env = gym.make(envs.env_id(task), obs_mode="rgb", image_size=56)
    obs, info = env.reset(seed=seed)
    env.close()
    return obs, info["instruction"]


def test_torchscript_export_acts_as_the_torch_vla(tmp_path):
    ckpt = write_run(tmp_path / "run", decoding="parallel", chunk_size=4, action_head="l1", use_proprio=True,
                     proprio_dim=22)
    out = export_policy(ckpt, "torchscript", tmp_path / "ts")
    m = json.loads((out / "manifest.json").read_text())
    assert [i["name"] for i in m["model"]["inputs"]] == ["obs_history", "front_rgb", "instruction_embedding"]
    assert m["language"]["text_encoder"]["kind"] == "byte_prompt" and m["task"]["tasks"] == TASKS
    assert m["export_check"]["max_abs_diff"] < 1e-4 and m["export_check"]["text_encoder_max_abs_diff"] == 0
    assert m["control"]["n_action_steps"] == 4 and m["policy"]["decoding"]["proprio_token"]
    torch_policy = Policy.from_pretrained(ckpt)
    exported = ExportedPolicy(out)
    for task, seed in (("reach_target", 100_000), ("place_in_zone", 100_001)):
        obs, instruction = rendered(task, seed)
        torch_policy.reset(instruction=instruction)
        exported.reset(instruction=instruction)
        np.testing.assert_allclose(exported.predict_action_chunk(obs), torch_policy.predict_action_chunk(obs),
                                   atol=1e-4)
        assert exported.select_action(obs).shape == (7,)
    exported.reset()
    with pytest.raises(ValueError, match="reads an instruction"):
        exported.select_action(obs)
    with pytest.raises(ValueError, match="makes a prompt of .* tokens; this policy reads at most"):
        exported.reset(instruction="x" * 400)


def test_a_two_camera_vla_exports_one_input_per_camera(tmp_path):
    ckpt = write_run(tmp_path / "run", cameras=["front", "wrist"], decoding="parallel", chunk_size=2)
    out = export_policy(ckpt, "torchscript", tmp_path / "ts")
    m = json.loads((out / "manifest.json").read_text())
    assert [i["name"] for i in m["model"]["inputs"]] == ["obs_history", "front_rgb", "wrist_rgb",
                                                         "instruction_embedding"]
    torch_policy, exported = Policy.from_pretrained(ckpt), ExportedPolicy(out)
    obs, instruction = rendered("reach_target", 100_000)
    torch_policy.reset(instruction=instruction)
    exported.reset(instruction=instruction)
    np.testing.assert_allclose(exported.predict_action_chunk(obs), torch_policy.predict_action_chunk(obs), atol=1e-4)


def test_a_vla_with_lora_adapters_is_not_exportable_yet(tmp_path):
    ckpt = write_run(tmp_path / "run", lora_rank=2)
    with pytest.raises(ExportError, match="LoRA adapters is not exportable yet"):
        export_policy(ckpt, "torchscript", tmp_path / "ts")


@pytest.mark.slow
@pytest.mark.parametrize("kw", [dict(decoding="parallel", chunk_size=8, action_head="l1", use_proprio=True,
                                     proprio_dim=22, cameras=["front", "wrist"]), dict()],
                         ids=["parallel-l1-proprio-wrist", "autoregressive"])
def test_onnx_export_runs_torch_free_and_matches_torch(kw, tmp_path):
    ckpt = write_run(tmp_path / "run", **kw)
    out = export_policy(ckpt, "onnx", tmp_path / "onnx")
    obs, instruction = rendered("place_in_zone", 100_002)
    torch_policy = Policy.from_pretrained(ckpt)
    torch_policy.reset(instruction=instruction)
    want = torch_policy.predict_action_chunk(obs)
    np.savez(tmp_path / "obs.npz", **{k: np.asarray(v) for k, v in obs.items()})
    # the copied runtime, with torch made unimportable
    code = (f"import sys, numpy as np; sys.modules['torch'] = None; sys.path.insert(0, {str(out)!r})\n"
            f"from roboforge_runtime import ExportedPolicy\n"
            f"p = ExportedPolicy({str(out)!r}); p.reset(instruction={instruction!r})\n"
            f"obs = dict(np.load({str(tmp_path / 'obs.npz')!r}))\n"
            f"np.save({str(tmp_path / 'chunk.npy')!r}, p.predict_action_chunk(obs))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    np.testing.assert_allclose(np.load(tmp_path / "chunk.npy"), want, atol=1e-4)
