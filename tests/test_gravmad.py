"""GravMaps (cost + gripper maps over the workspace voxels), their token, and the keypose CLI."""
import json

import numpy as np
import pytest
import torch

from policies.common.config import ConfigError
from policies.gravmad import GravMapConfig, GravMapEncoder, gravmap_points

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_cost_is_low_at_the_subgoal_and_rises_with_distance():
    goal = np.array([0.5, 0.0, 0.1])
    pts = gravmap_points(goal, gripper_open=0.0)
    cfg = GravMapConfig()
    assert pts.shape == (cfg.num_points, 6)
    d = np.linalg.norm(pts[:, :3] - goal, axis=1)
    np.testing.assert_allclose(pts[:, 3], np.minimum(d / cfg.cost_radius, 1.0), atol=1e-5)
    assert pts[:, 3].max() < 1.0                          # only value-carrying voxels are kept
    assert pts[:, 3].min() < 0.1 and np.corrcoef(d, pts[:, 3])[0, 1] > 0.99
    near = pts[:, 5] == 1.0                               # the gripper map holds the sub-goal's openness
    assert near.sum() > 20 and np.all(pts[near, 4] == 0.0) and np.all(pts[~near, 4] == 1.0)
    assert np.all(d[near] <= max(cfg.gripper_radius, 0.5 * np.linalg.norm(cfg.voxel_size)) + 1e-6)
    lo, hi = np.array(cfg.bounds)
    assert np.all(pts[:, :3] >= lo) and np.all(pts[:, :3] <= hi)
    np.testing.assert_array_equal(pts, gravmap_points(goal, 0.0))  # deterministic


def test_a_map_with_few_value_carrying_voxels_is_padded_and_masked():
    cfg = GravMapConfig(resolution=8, cost_radius=0.06, num_points=64)
    enc = GravMapEncoder(cfg)
    pts, mask = enc.maps(torch.tensor([[0.21, -0.39, 0.01]]), torch.tensor([1.0]))
    assert pts.shape == (1, 64, 6) and 0 < int(mask.sum()) < 64
    assert torch.all(pts[0][mask[0]][:, 3] < 1.0)


def test_token_depends_on_the_subgoal_and_trains():
    torch.manual_seed(0)
    enc = GravMapEncoder(GravMapConfig(resolution=16, num_points=64, hidden_dims=(32,), token_dim=16))
    pos = torch.tensor([[0.5, 0.0, 0.1], [0.5, 0.0, 0.1], [0.35, 0.2, 0.05]])
    tok = enc(pos, torch.tensor([0.0, 1.0, 0.0]))
    assert tok.shape == (3, 16) and enc.output_dim == 16
    assert not torch.allclose(tok[0], tok[1]) and not torch.allclose(tok[0], tok[2])  # openness and place
    tok.pow(2).sum().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in enc.parameters())


def test_bad_gravmap_config_names_the_key():
    with pytest.raises(ConfigError, match=r"GravMapConfig.cost_radius=-1 is invalid; allowed: a distance > 0"):
        GravMapConfig(cost_radius=-1)
    with pytest.raises(ConfigError, match="GravMapConfig.bounds"):
        GravMapConfig(bounds=((0.8, 0, 0), (0.2, 1, 1)))


def test_keyposes_cli_writes_json_and_plots(tmp_path, capsys):
    from policies.gravmad.__main__ import main

    assert main(["keyposes", "--env", "stack_blocks", "--episodes", "1", "--out", str(tmp_path), "--no-frames"]) == 0
    rec = json.loads((tmp_path / "stack_blocks_seed0.json").read_text())
    assert rec["success"] and [k["reasons"][0] for k in rec["keyposes"]] == ["gripper", "gripper"]
    assert rec["keyposes"][0]["subgoal"]["gripper_open"] == 0.0
    assert (tmp_path / "stack_blocks_seed0_signals.png").stat().st_size > 10_000
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["precision"] == 1.0 and summary["recall"] == 1.0
    assert main(["keyposes", "--env", "no_such_task", "--out", str(tmp_path)]) == 2
    assert "unknown task 'no_such_task'" in capsys.readouterr().err


@pytest.mark.slow
def test_keyposes_cli_renders_a_frame_strip(tmp_path):
    from policies.gravmad.__main__ import main

    assert main(["keyposes", "--env", "stack_blocks", "--episodes", "1", "--out", str(tmp_path)]) == 0
    assert (tmp_path / "stack_blocks_seed0_frames.png").stat().st_size > 10_000


def test_gravmap_cli_rejects_a_keypose_the_episode_does_not_have(tmp_path, capsys):
    from policies.gravmad.__main__ import main

    assert main(["gravmap", "--env", "stack_blocks", "--keypose", "9", "--out", str(tmp_path / "g.png")]) == 2
    assert "--keypose=9 is invalid; allowed: 0..1" in capsys.readouterr().err
