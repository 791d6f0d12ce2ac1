"""Export of GravMAD policies: the graph takes the proprio and point-cloud histories and the current
sub-goal (its GravMap built inside), the manifest names the sub-goal input, and the runtime reads
the env's observation under ``SubGoalObservation`` as the torch policy does.

Fast tests use a TorchScript graph; the ONNX one (about 15 s here) is ``slow``."""
from __future__ import annotations

import json

import gymnasium as gym
import numpy as np
import pytest
import torch

import envs
from envs.core.observation import AGENT_DIM, POINTCLOUD_POINTS
from planners.subgoals import SubGoalObservation
from policies.export import export_policy
from policies.export.__main__ import main as export_main
from policies.export.runtime import ExportedPolicy, ObservationError
from policies.gravmad import GravMADPolicy
from tests.test_export_multitask import write_run
from tests.test_gravmad_policy import tiny_policy

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TASK = "stack_blocks"


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    return write_run(tmp_path_factory.mktemp("gravmad"), tiny_policy(obs_dim=AGENT_DIM), TASK, "pointcloud")


@pytest.fixture(scope="module")
def ts_dir(ckpt, tmp_path_factory):
    return export_policy(ckpt, "torchscript", tmp_path_factory.mktemp("exp") / "gravmad")


@pytest.fixture(scope="module")
def episode():
    """Two observations of a pointcloud env under SubGoalObservation (the manual provider)."""
    env = SubGoalObservation(gym.make(envs.env_id(TASK), obs_mode="pointcloud", image_size=32), "manual")
    obs0, _ = env.reset(seed=3)
    obs1, *_ = env.step(np.zeros(7, np.float32))
    env.close()
    return obs0, obs1


def torch_chunk(policy, history: list[dict], noise: np.ndarray) -> np.ndarray:
    """The torch policy's chunk from ``history`` (env observations, oldest first) and ``noise``."""
    obs = {"proprio": np.stack([o["state"][:AGENT_DIM] for o in history]),
           "pointcloud": np.stack([o["pointcloud"] for o in history]),
           "subgoal": np.stack([o["subgoal"] for o in history])}
    return policy({k: torch.from_numpy(v[None]) for k, v in obs.items()}, torch.from_numpy(noise))[0].numpy()


def test_manifest_names_the_subgoal_input(ts_dir):
    m = json.loads((ts_dir / "manifest.json").read_text())
    assert m["format_version"] == 3 and m["policy"]["type"] == "gravmad" and m["obs_mode"] == "pointcloud"
    inputs = {i["name"]: i for i in m["model"]["inputs"]}
    assert list(inputs) == ["obs_history", "pointcloud", "subgoal", "noise"]
    assert inputs["pointcloud"]["shape"] == ["batch", 2, POINTCLOUD_POINTS, 6]
    assert inputs["subgoal"]["shape"] == ["batch", 4] and "newest one only" in inputs["subgoal"]["meaning"]
    keys = {k["name"]: k for k in m["observation"]["keys"]}
    assert list(keys) == ["proprio", "pointcloud", "subgoal"]
    goal = keys["subgoal"]
    assert goal["input"] == "subgoal" and goal["shape"] == [4] and goal["history"] is False
    assert [(f["name"], f["slice"], f["units"]) for f in goal["fields"]] == [("pos", [0, 3], "m"),
                                                                           ("gripper_open", [3, 4], "[0, 1]")]
    assert "robot base frame" in goal["frame"] and "SubGoalObservation" in goal["source"]
    assert m["policy"]["gravmap"]["inside_graph"] and m["policy"]["gravmap"]["resolution"] == 8
    assert m["export_check"]["max_abs_diff"] < 1e-5


def test_runtime_on_subgoal_observations_matches_torch(ts_dir, ckpt, episode):
    """Two steps of the env's observations; the second with another sub-goal, so the chunk shows
    the graph reads the current one (the torch policy reads the newest of its window)."""
    policy = GravMADPolicy.from_pretrained(ckpt)
    obs0, obs1 = episode
    obs1 = {**obs1, "subgoal": obs1["subgoal"] + np.array([0.05, -0.1, 0.1, 1.0], np.float32)}
    p = ExportedPolicy(ts_dir)
    p.reset(seed=3)
    first = p.predict_action_chunk(obs0)
    second = p.predict_action_chunk(obs1)
    rng = np.random.default_rng(3)
    noises = [rng.standard_normal((1, 8, 7), dtype=np.float32) for _ in range(2)]
    np.testing.assert_allclose(first, torch_chunk(policy, [obs0, obs0], noises[0]), atol=1e-5)
    np.testing.assert_allclose(second, torch_chunk(policy, [obs0, obs1], noises[1]), atol=1e-5)
    # a lockstep batch of two envs: the sub-goal (B, 4) with the rest
    p.reset(seed=0)
    batch = {k: np.stack([obs0[k], obs1[k]]) for k in obs0}
    assert p.select_action(batch).shape == (2, 7)


def test_a_different_subgoal_changes_position_and_gripper_not_rotation(ts_dir, episode):
    obs, _ = episode
    p = ExportedPolicy(ts_dir)
    p.reset(seed=0)
    a = p.predict_action_chunk(obs)
    p.reset(seed=0)
    b = p.predict_action_chunk({**obs, "subgoal": np.array([0.6, 0.2, 0.25, 1.0], np.float32)})
    assert np.abs(a[:, :3] - b[:, :3]).max() > 1e-4          # guided by the GravMap token
    np.testing.assert_allclose(a[:, 3:6], b[:, 3:6], atol=1e-6)  # rotation never reads it


def test_a_missing_or_malformed_subgoal_says_what_to_feed(ts_dir, episode):
    obs, _ = episode
    p = ExportedPolicy(ts_dir)
    with pytest.raises(ObservationError, match=r"lacks \['subgoal'\].*subgoal: in sim, wrap the env in "
                                               r"planners\.subgoals\.SubGoalObservation"):
        p.select_action({k: v for k, v in obs.items() if k != "subgoal"})
    with pytest.raises(ObservationError, match=r"subgoal has shape \(3,\); expected \(4,\)"):
        p.select_action({**obs, "subgoal": obs["subgoal"][:3]})
    with pytest.raises(ObservationError, match="subgoal contains NaN"):
        p.select_action({**obs, "subgoal": np.full(4, np.nan, np.float32)})


def test_cli_exports_a_gravmad_run_and_says_what_the_subgoal_is(ckpt, tmp_path, capsys):
    run = ckpt.parent.parent   # the run directory: its checkpoints/last is exported
    assert export_main([str(run), "--format", "torchscript", "--out", str(tmp_path / "e")]) == 0
    out = capsys.readouterr().out
    assert json.loads((tmp_path / "e" / "manifest.json").read_text())["source"]["checkpoint"] == str(ckpt.resolve())
    assert "exported gravmad policy for stack_blocks" in out
    assert "subgoal[4]: x, y, z in m; gripper_open in [0, 1]" in out and "SubGoalObservation" in out


@pytest.mark.slow
def test_onnx_export_matches_torch_on_subgoal_observations(ckpt, tmp_path, episode):
    out = export_policy(ckpt, "onnx", tmp_path / "onnx")
    policy = GravMADPolicy.from_pretrained(ckpt)
    obs0, obs1 = episode
    p = ExportedPolicy(out)
    p.reset(seed=5)
    p.predict_action_chunk(obs0)
    rng = np.random.default_rng(5)
    rng.standard_normal((1, 8, 7), dtype=np.float32)
    np.testing.assert_allclose(p.predict_action_chunk(obs1),
                               torch_chunk(policy, [obs0, obs1], rng.standard_normal((1, 8, 7), dtype=np.float32)),
                               atol=1e-4)


def test_verify_export_runs_the_export_with_subgoals_in_sim(ts_dir, ckpt):
    """train.verify_export wraps the tasks' envs in SubGoalObservation for a sub-goal-reading export:
    the numeric check on real observations passes, and one unseen-seed episode per policy runs."""
    from train.verify_export import verify_export

    r = verify_export(ts_dir, ckpt, episodes=1, progress=False, write=False)
    assert r["fidelity"]["passed"] and "subgoal" in r["fidelity"]["inputs"] and r["subgoals"] == "manual"
    assert r["success_exported"]["num_episodes"] == 1 and r["success_torch"]["num_episodes"] == 1

