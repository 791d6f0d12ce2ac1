"""Export: ONNX/TorchScript artifacts, manifest, the torch-free runtime, verify, and bad input."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch
import yaml

import envs
from policies.diffusion import DiffusionConfig, DiffusionPolicy
from policies.export import ExportError, export_policy
from policies.export.runtime import ExportedPolicy, ObservationError
from policies.rl.mlp_policy import MLPActorConfig, MLPActorPolicy
from train.verify_export import verify_export

ROOT = Path(__file__).resolve().parents[1]
TASK = "stack_blocks"


def tiny_diffusion(obs_dim: int) -> DiffusionPolicy:
    cfg = DiffusionConfig(obs_dim=obs_dim, action_dim=7, n_obs_steps=2, horizon=8, n_action_steps=4,
                          down_dims=(8, 16), kernel_size=3, n_groups=4, diffusion_step_embed_dim=8,
                          num_inference_steps=3)
    torch.manual_seed(0)
    return DiffusionPolicy(cfg)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    """A run directory as train.py writes it: config.yaml + checkpoints/last (tiny random policy,
    normalizer fitted on real observations of the task)."""
    run = tmp_path_factory.mktemp("run")
    env = gym.make(envs.env_id(TASK))
    obs = []
    for seed in range(5):
        o, _ = env.reset(seed=seed)
        obs.append(o)
        for _ in range(10):
            obs.append(env.step(env.action_space.sample())[0])
    env.close()
    obs = np.array(obs)
    policy = tiny_diffusion(obs.shape[1])
    policy.fit_normalizer(obs, np.random.default_rng(0).uniform(-1, 1, (len(obs), 7)))
    policy.save_pretrained(run / "checkpoints" / "last")
    (run / "config.yaml").write_text(yaml.safe_dump({"env": TASK, "sim": {"name": "mujoco"}, "obs_mode": "state",
                                                     "control_mode": "ee_delta_pose", "library": None}))
    return run


@pytest.fixture(scope="module")
def ckpt(run_dir) -> Path:
    return run_dir / "checkpoints" / "last"


@pytest.fixture(scope="module")
def onnx_dir(ckpt, tmp_path_factory) -> Path:
    return export_policy(ckpt, "onnx", tmp_path_factory.mktemp("exp") / "onnx")


def test_onnx_export_writes_model_manifest_and_runtime(onnx_dir, ckpt):
    assert {p.name for p in onnx_dir.iterdir()} == {"model.onnx", "manifest.json", "roboforge_runtime.py"}
    m = json.loads((onnx_dir / "manifest.json").read_text())
    assert m["format"] == "roboforge-export" and m["model"]["format"] == "onnx"
    assert m["obs_mode"] == "state" and m["task"]["name"] == TASK
    assert [i["name"] for i in m["model"]["inputs"]] == ["obs_history", "noise"]
    state = m["observation"]["keys"][0]
    assert state["name"] == "state" and m["observation"]["history"] == 2
    fields = {f["name"]: f for f in state["fields"]}
    assert fields["qpos"]["units"] == "rad" and fields["tcp_pos"]["slice"] == [15, 18]
    assert fields["goal_0.delta"]["units"] == "m"
    assert max(f["slice"][1] for f in state["fields"]) == state["shape"][0]
    a = m["action"]
    assert a["control_mode"] == "ee_delta_pose" and a["shape"] == [7] and a["frame"] == "robot base frame"
    assert a["scale"]["translation_m_per_step"] == 0.02 and a["gripper"] == {**a["gripper"], "open": 1.0, "closed": -1.0}
    assert m["control"] == {**m["control"], "frequency_hz": 20, "n_action_steps": 4, "n_obs_steps": 2}
    assert m["robot"]["arm_joints"] == [f"joint{i}" for i in range(1, 8)]
    assert m["normalization"]["baked_into_graph"] is True
    assert len(m["normalization"]["observation"]["low"]) == state["shape"][0]
    assert m["policy"]["sampler"]["num_inference_steps"] == 3
    assert len(m["source"]["sha256"]) == 64 and m["source"]["checkpoint"] == str(ckpt.resolve())
    assert m["roboforge_version"].startswith("0.")
    assert m["cameras"] == []
    assert m["export_check"]["max_abs_diff"] <= 1e-4


def test_exported_graph_matches_torch_with_the_same_noise(onnx_dir, ckpt):
    policy = DiffusionPolicy.from_pretrained(ckpt)
    exported = ExportedPolicy(onnx_dir)
    rng = np.random.default_rng(0)
    for b in (1, 5):  # the batch axis is dynamic
        obs = rng.normal(size=(b, 2, policy.config.obs_dim)).astype(np.float32)
        noise = rng.standard_normal((b, 8, 7), dtype=np.float32)
        ref = policy(torch.from_numpy(obs), torch.from_numpy(noise)).numpy()
        out = exported(obs, noise)
        assert out.shape == (b, 4, 7)
        assert np.abs(out - ref).max() <= 1e-4


def test_runtime_keeps_history_and_action_queue_like_training(onnx_dir, ckpt):
    """select_action() over 8 steps = two chunks: the first from [o0, o0], the second from [o3, o4]."""
    policy = DiffusionPolicy.from_pretrained(ckpt)
    exported = ExportedPolicy(onnx_dir)
    obs = np.random.default_rng(1).normal(size=(8, policy.config.obs_dim)).astype(np.float32)
    exported.reset(seed=7)
    acts = np.stack([exported.select_action(o) for o in obs])
    rng = np.random.default_rng(7)
    expected = []
    for hist in ([obs[0], obs[0]], [obs[3], obs[4]]):
        noise = rng.standard_normal((1, 8, 7), dtype=np.float32)
        expected.append(policy(torch.from_numpy(np.stack(hist)[None]), torch.from_numpy(noise))[0].numpy())
    assert acts.shape == (8, 7) and acts.dtype == np.float32
    np.testing.assert_allclose(acts, np.concatenate(expected), atol=1e-4)
    exported.reset(seed=7)  # the whole first chunk at once, from the same padded history and noise
    np.testing.assert_allclose(exported.predict_action_chunk(obs[0]), expected[0], atol=1e-4)


def test_runtime_imports_without_torch(onnx_dir):
    code = ("import sys, numpy as np\n"
            "from {mod} import ExportedPolicy\n"
            "p = ExportedPolicy(sys.argv[1]); p.reset()\n"
            "a = p.select_action(np.zeros(p.obs_dim, np.float32))\n"
            "assert a.shape == (7,), a.shape\n"
            "assert 'torch' not in sys.modules, 'torch was imported'\n"
            "print('ok')\n")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    r = subprocess.run([sys.executable, "-c", code.format(mod="policies.export.runtime"), str(onnx_dir)],
                       capture_output=True, text=True, env=env, cwd=ROOT, timeout=120)
    assert r.returncode == 0 and "ok" in r.stdout, r.stderr
    # the copy inside the export directory works with nothing of roboforge on the path
    env.pop("PYTHONPATH")
    r = subprocess.run([sys.executable, "-c", code.format(mod="roboforge_runtime"), "."],
                       capture_output=True, text=True, env=env, cwd=onnx_dir, timeout=120)
    assert r.returncode == 0 and "ok" in r.stdout, r.stderr


def test_torchscript_export_runs_in_the_runtime(ckpt, tmp_path):
    out = export_policy(ckpt, "torchscript", tmp_path / "ts")
    assert (out / "model.pt").exists()
    policy = DiffusionPolicy.from_pretrained(ckpt)
    exported = ExportedPolicy(out)
    obs = np.random.default_rng(2).normal(size=(3, 2, policy.config.obs_dim)).astype(np.float32)
    noise = np.random.default_rng(3).standard_normal((3, 8, 7), dtype=np.float32)
    ref = policy(torch.from_numpy(obs), torch.from_numpy(noise)).numpy()
    np.testing.assert_allclose(exported(obs, noise), ref, atol=1e-5)


def test_bad_observations_name_what_is_expected(onnx_dir):
    p = ExportedPolicy(onnx_dir)
    n = p.obs_dim
    with pytest.raises(ObservationError, match=rf"expects \({n},\) or \(batch, {n}\).*qpos\[0:7\]"):
        p.select_action(np.zeros(n - 1))
    with pytest.raises(ObservationError, match=r"lacks \['state'\].*got \['front_rgb'\]"):
        p.select_action({"front_rgb": np.zeros((8, 8, 3))})
    with pytest.raises(ObservationError, match="NaN"):
        p.select_action(np.full(n, np.nan))
    p.reset()
    assert p.select_action({"state": np.zeros(n)}).shape == (7,)  # dict observations are read through 'state'
    with pytest.raises(ObservationError, match="batch size changed"):
        p.select_action(np.zeros((2, n)))


def test_verify_reports_fidelity_and_sim_success(onnx_dir, ckpt):
    r = verify_export(onnx_dir, ckpt, episodes=2, progress=False)
    assert r["fidelity"]["passed"] and r["fidelity"]["max_abs_diff"] <= 1e-4
    for k in ("success_torch", "success_exported"):
        assert r[k]["num_episodes"] == 2 and 0.0 <= r[k]["success_rate"] <= 1.0
    assert json.loads((onnx_dir / "verify.json").read_text())["fidelity"]["passed"]


def test_verify_rejects_a_different_checkpoint(onnx_dir, tmp_path, run_dir):
    other = tmp_path / "other"
    shutil.copytree(run_dir / "checkpoints" / "last", other)
    p = DiffusionPolicy.from_pretrained(other)
    with torch.no_grad():
        next(p.model.parameters()).add_(1.0)
    p.save_pretrained(other)
    with pytest.raises(ExportError, match="different checkpoint"):
        verify_export(onnx_dir, other, episodes=0)


def test_verify_command_and_its_old_name(onnx_dir, ckpt, tmp_path):
    r = subprocess.run([sys.executable, "-m", "train.verify_export", onnx_dir, "--checkpoint", ckpt, "--episodes", "0"],
                       capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert r.returncode == 0 and "PASS" in r.stdout, r.stderr
    other = tmp_path / "other"
    shutil.copytree(ckpt, other)
    (other / "config.json").write_text((other / "config.json").read_text() + " ")  # another checkpoint hash
    r = cli("verify", onnx_dir, "--checkpoint", other, "--episodes", "0")
    assert r.returncode == 2 and "different checkpoint" in r.stderr, r.stderr


def test_rl_mlp_policy_exports_with_its_normalizer(tmp_path):
    env = gym.make(envs.env_id("reach_target"))
    obs_dim = env.observation_space.shape[0]
    env.close()
    cfg = MLPActorConfig(obs_dim=obs_dim, action_dim=7, hidden_sizes=[32, 32], algorithm="sac", task="reach_target",
                         env_kwargs={"obs_mode": "state", "control_mode": "ee_delta_pose"})
    torch.manual_seed(0)
    policy = MLPActorPolicy(cfg)
    policy.actor.normalizer.mean.normal_()
    policy.actor.normalizer.var.uniform_(0.5, 2.0)
    policy.save_pretrained(tmp_path / "ckpt")  # no run config: task and modes come from the policy config
    out = export_policy(tmp_path / "ckpt", "onnx", tmp_path / "exp")
    m = json.loads((out / "manifest.json").read_text())
    assert m["policy"]["type"] == "rl_mlp" and m["control"]["n_action_steps"] == 1
    assert [i["name"] for i in m["model"]["inputs"]] == ["obs_history"]
    assert len(m["normalization"]["observation"]["mean"]) == obs_dim
    exported = ExportedPolicy(out)
    obs = np.random.default_rng(0).normal(size=(4, obs_dim)).astype(np.float32) * 3
    np.testing.assert_allclose(exported.select_action(obs), policy.select_action(obs), atol=1e-5)


# -- bad input ---------------------------------------------------------------------------------
def cli(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "policies.export", *map(str, args)], capture_output=True, text=True,
                          cwd=ROOT, timeout=300)


def test_cli_unknown_format(ckpt, tmp_path):
    r = cli(ckpt, "--format", "tflite", "--out", tmp_path / "x")
    assert r.returncode == 2 and "unknown export format 'tflite'; choose one of onnx, torchscript" in r.stderr


def test_checkpoint_without_config_or_normalizer_is_refused(ckpt, tmp_path):
    no_cfg = tmp_path / "no_cfg"
    shutil.copytree(ckpt, no_cfg)
    (no_cfg / "config.json").unlink()
    with pytest.raises(ExportError, match="has no config.json"):
        export_policy(no_cfg, "onnx", tmp_path / "a")
    unfitted = tiny_diffusion(DiffusionPolicy.from_pretrained(ckpt).config.obs_dim)
    unfitted.save_pretrained(tmp_path / "unfitted")
    with pytest.raises(ExportError, match="no normalizer stats"):
        export_policy(tmp_path / "unfitted", "onnx", tmp_path / "b")


def test_unknown_task_and_mismatched_task_are_refused(ckpt, tmp_path):
    bare = tmp_path / "bare"
    shutil.copytree(ckpt, bare)  # no run config.yaml anywhere above it
    with pytest.raises(ExportError, match="pass --env <task>"):
        export_policy(bare, "onnx", tmp_path / "a")
    with pytest.raises(ExportError, match="expects 45-dim observations but task 'reach_target'"):
        export_policy(bare, "onnx", tmp_path / "b", env="reach_target")
    with pytest.raises(envs.UnknownTaskError, match="Known tasks"):
        export_policy(bare, "onnx", tmp_path / "c", env="stak_blocks")


def test_out_dir_that_is_not_an_export_is_not_overwritten(ckpt, tmp_path):
    (tmp_path / "keep.txt").write_text("mine")
    with pytest.raises(ExportError, match="keep.txt, which a policy export never holds"):
        export_policy(ckpt, "onnx", tmp_path)
    assert (tmp_path / "keep.txt").read_text() == "mine"


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_export_refuses_a_task_library_and_a_lookalike_manifest(ckpt, tmp_path):
    """A directory with a manifest.json is replaced only when the manifest says it is an export
    and it holds nothing but export files; a library passed as --out is left byte for byte."""
    from generation.library import Library

    lib = Library(tmp_path / "lib")
    source = (ROOT / "envs" / "tasks" / "stack_tower.py").read_text().replace('"stack_tower"', '"tower_kept"')
    lib.admit("tower_kept", source, {"generator": "test"})
    lib.journal_append("attempts", {"note": "kept"})
    before = _tree(lib.root)
    r = cli(ckpt, "--format", "onnx", "--out", lib.root)
    assert r.returncode == 2 and "refusing to replace" in r.stderr and "journal/" in r.stderr, r.stderr
    assert "Traceback" not in r.stderr and _tree(lib.root) == before
    # only export file names, but the manifest is someone else's
    fake = tmp_path / "fake"
    fake.mkdir()
    (fake / "manifest.json").write_text('{"name": "my data"}')
    with pytest.raises(ExportError, match="not a roboforge export manifest"):
        export_policy(ckpt, "torchscript", fake)
    assert (fake / "manifest.json").read_text() == '{"name": "my data"}'
    # a previous export (its own manifest, only its files) is replaced whole
    out = export_policy(ckpt, "torchscript", tmp_path / "exp")
    out = export_policy(ckpt, "torchscript", out)
    assert {p.name for p in out.iterdir()} == {"model.pt", "manifest.json", "roboforge_runtime.py"}
    # ... but not once the user has put a file of their own in it
    (out / "notes.md").write_text("mine")
    with pytest.raises(ExportError, match="notes.md"):
        export_policy(ckpt, "torchscript", out)
    assert (out / "notes.md").read_text() == "mine"


def test_a_truncated_checkpoint_and_an_empty_batch_are_one_line(ckpt, onnx_dir, tmp_path):
    broken = tmp_path / "run" / "checkpoints" / "last"
    shutil.copytree(ckpt.parent.parent, tmp_path / "run")
    data = (broken / "model.safetensors").read_bytes()
    (broken / "model.safetensors").write_bytes(data[: len(data) // 3])
    with pytest.raises(ExportError, match="model.safetensors cannot be read .*damaged"):
        export_policy(broken, "onnx", tmp_path / "out")
    assert not (tmp_path / "out").exists()
    p = ExportedPolicy(onnx_dir)
    obs_dim = p.obs_dim
    with pytest.raises(ObservationError, match="batch >= 1"):
        p.select_action(np.zeros((0, obs_dim), np.float32))
    with pytest.raises(ObservationError, match="expected \\(batch, "):
        p(np.zeros((0, p.n_obs_steps, obs_dim), np.float32))
