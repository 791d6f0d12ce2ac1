"""HILP: goal relabelling, the losses, the policy surface (save/load, goal and reward prompts),
resume, exploratory data, the run config, and the curriculum's task features."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from policies.common.config import ConfigError
from policies.hilp import HILPConfig, HILPPolicy
from policies.hilp.modeling import expectile_loss
from train.datasets.demo_store import Episode
from train.hilp.data import GoalDataset
from train.hilp.trainer import train_hilp

pytestmark = pytest.mark.usefixtures("one_torch_thread")
TINY = dict(hidden_dims=(32, 32), latent_dim=8, batch_size=64, drop_goal_features=False, obs_key="state")


def line_episodes(n_eps=6, length=12, dim=2, seed=0):
    """Episodes walking along a line in steps of 0.1 (a chain whose temporal distance is |i - j|)."""
    rng = np.random.default_rng(seed)
    eps = []
    for k in range(n_eps):
        xs = np.zeros((length + 1, dim), np.float32)
        xs[:, 0] = np.arange(length + 1) * 0.1
        xs[:, 1] = rng.normal(0, 0.01, length + 1)
        eps.append(Episode(xs[:-1], np.ones((length, 1), np.float32), np.zeros(length, np.float32), k, True,
                           final_obs=xs[-1], task=f"line{k % 2}"))
    return eps


def tiny_policy(dataset, **kw) -> HILPPolicy:
    torch.manual_seed(0)
    policy = HILPPolicy(HILPConfig(obs_dim=dataset.obs_dim, action_dim=dataset.action_dim, **{**TINY, **kw}))
    policy.fit_normalizer(dataset.obs)
    return policy


def test_goal_relabelling_follows_hilp():
    ds = GoalDataset(line_episodes(), discount=0.9, p_future_goal=0.625, p_random_goal=0.375, obs_key="state")
    assert len(ds) == 72 and ds.tasks == ["line0", "line1"] and (ds.final[:12] == 11).all()
    rng = np.random.default_rng(0)
    idx = rng.integers(0, len(ds), 20_000)
    goal = ds.sample_goals(idx, rng)
    same_episode = (goal // 12 == idx // 12) & (goal >= idx)
    # ~62.5% future goals (plus the random ones that land in the future of the same episode by chance)
    assert 0.6 < same_episode.mean() < 0.7
    future = goal[same_episode] - idx[same_episode]
    assert future.max() <= 11 and np.all(goal[same_episode] <= ds.final[idx[same_episode]])
    batch = ds.sample(256, rng)
    assert batch["goals"].shape == (256, 2) and set(np.unique(batch["success"])) <= {0.0, 1.0}
    with pytest.raises(ValueError, match="add up to 1"):
        GoalDataset(line_episodes(), p_future_goal=0.5, p_random_goal=0.4, obs_key="state")


def test_expectile_loss_weights_the_sides():
    adv = torch.tensor([1.0, -1.0])
    assert expectile_loss(adv, torch.tensor([1.0, 0.0]), 0.95).item() == pytest.approx(0.95 / 2)
    assert expectile_loss(adv, torch.tensor([0.0, 1.0]), 0.95).item() == pytest.approx(0.05 / 2)


def test_phi_learns_temporal_distance_and_round_trips(tmp_path):
    ds = GoalDataset(line_episodes(), discount=0.9, obs_key="state")
    policy = tiny_policy(ds, discount=0.9, lr=3e-3)
    stats = train_hilp(policy, ds, tmp_path, steps=150, batch_size=64, lr=3e-3, checkpoint_every=150,
                       log_every=50, progress=False)
    assert stats["steps_this_run"] == 150
    xs = torch.tensor([[0.0, 0.0], [0.2, 0.0], [0.5, 0.0], [1.1, 0.0]])
    d = policy.hilbert_distance(xs[:1].expand(4, -1), xs).detach().numpy()
    assert d[0] < 0.01 and 0.5 < d[1] < d[2], d   # 0, 2 and 5 steps along the chain: farther in phi space

    loaded = HILPPolicy.from_pretrained(tmp_path / "checkpoints" / "last")
    loaded.set_goal(xs[3].numpy())
    a = loaded.select_action(xs[0].numpy())
    assert a.shape == (1,) and np.all(np.abs(a) <= 1)
    assert loaded.select_action(xs.numpy()).shape == (4, 1)            # a batch of envs, one goal
    policy.set_goal(xs[3].numpy())
    np.testing.assert_allclose(policy.select_action(xs[0].numpy()), a, atol=1e-6)


def test_reward_prompted_latent_recovers_the_direction():
    ds = GoalDataset(line_episodes(), obs_key="state")
    policy = tiny_policy(ds).eval()
    obs = torch.as_tensor(np.random.default_rng(1).normal(size=(64, 2)), dtype=torch.float32)
    z_true = torch.nn.functional.normalize(torch.randn(8), dim=0)
    rewards = (policy.phi(obs) @ z_true).detach().numpy() * 3.0     # any positive scale
    z = policy.latent_from_rewards(obs.numpy(), rewards)
    np.testing.assert_allclose(z, z_true.numpy(), atol=1e-4)
    policy.set_latent(z)
    assert policy.select_action(obs.numpy()).shape == (64, 1)


def test_acting_without_a_goal_says_what_to_do():
    policy = tiny_policy(GoalDataset(line_episodes(), obs_key="state"))
    with pytest.raises(RuntimeError, match="set_goal"):
        policy.select_action(np.zeros(2, np.float32))


def test_resume_continues_exactly(tmp_path):
    ds = GoalDataset(line_episodes(), obs_key="state")
    whole = tiny_policy(ds)
    train_hilp(whole, ds, tmp_path / "whole", steps=40, batch_size=32, checkpoint_every=40, progress=False)
    part = tiny_policy(ds)
    train_hilp(part, ds, tmp_path / "part", steps=20, batch_size=32, checkpoint_every=20, progress=False)
    resumed = tiny_policy(ds)   # a fresh process: fresh weights, the checkpoint decides
    stats = train_hilp(resumed, ds, tmp_path / "part", steps=40, batch_size=32, checkpoint_every=20, progress=False)
    assert stats["resumed_from"] == 20 and stats["steps_this_run"] == 20
    for (k, a), b in zip(whole.state_dict().items(), resumed.state_dict().values()):
        torch.testing.assert_close(a, b, msg=k)


def test_config_errors_name_the_key():
    with pytest.raises(ConfigError, match="drop_goal_features"):
        HILPConfig(obs_dim=5, action_dim=1)                          # goal fields exist only in slots
    with pytest.raises(ConfigError, match="p_random_goal"):
        HILPConfig(obs_dim=5, action_dim=1, obs_key="state", drop_goal_features=False, p_random_goal=0.5)
    from train.config import compose

    config = compose("env=builtin", "policy=hilp", "obs_mode=slots", "policy.steps=10")
    assert config.policy.name == "hilp" and config.policy.expectile == 0.95 and config.policy.latent_dim == 32
    with pytest.raises(ConfigError, match="obs_mode='state' is invalid; allowed: slots for policy=hilp"):
        compose("env=reach_target", "policy=hilp")


def test_noisy_oracle_and_exploration_store(tmp_path):
    import gymnasium as gym

    import envs
    from train.demos import collect_exploration, rollout_oracle

    env = gym.make(envs.env_id("reach_target"), obs_mode="slots")
    clean, noisy, again = rollout_oracle(env, 3), rollout_oracle(env, 3, 0.5), rollout_oracle(env, 3, 0.5)
    env.close()
    assert not np.allclose(clean.actions[:5], noisy.actions[:5])
    np.testing.assert_array_equal(noisy.actions, again.actions)       # seeded by the episode seed
    store = collect_exploration("reach_target", 4, 50, tmp_path, action_noise=0.5, random_fraction=0.5,
                                progress=False)
    assert len(store) == 4 and store.meta["random_episodes"] == 2 and store.episodes[0].slots is not None
    assert len(store.episodes[0].actions) == 100                       # random actions: never reaches, runs out
    assert collect_exploration("reach_target", 4, 50, tmp_path, action_noise=0.5, random_fraction=0.5,
                               progress=False).path == store.path      # cached
    with pytest.raises(ValueError, match="action_noise"):
        from planners import make_oracle

        make_oracle(gym.make(envs.env_id("reach_target")), action_noise=-1)


def test_task_features_for_the_curriculum(tmp_path):
    from envs.core.observation import SLOTS_DIM
    from train.demos import collect_demos
    from train.hilp.data import episodes_of
    from train.hilp.features import task_difficulty, task_features, task_novelty

    store = collect_demos("reach_target", 6, 0, tmp_path, obs_mode="slots", progress=False)
    ds = GoalDataset(episodes_of([store]))
    torch.manual_seed(0)
    policy = HILPPolicy(HILPConfig(obs_dim=SLOTS_DIM, action_dim=ds.action_dim, hidden_dims=(32,), latent_dim=8))
    policy.fit_normalizer(ds.obs)
    train_hilp(policy, ds, tmp_path / "run", steps=30, batch_size=32, checkpoint_every=30, progress=False)
    seeds = range(500, 503)
    assert task_difficulty(policy, "reach_target", seeds) > 0
    assert task_novelty(policy, "reach_target", [], seeds) == float("inf")
    assert task_novelty(policy, "reach_target", ["reach_target"], seeds) == pytest.approx(0.0, abs=1e-5)
    feats = task_features(policy, ["reach_target"], ["reach_target"], seeds)
    assert set(feats["reach_target"]) == {"difficulty", "novelty"}



def test_hilp_novelty_drives_the_interestingness_judge(tmp_path):
    """curriculum.novelty=hilp: the judge loads a policy=hilp checkpoint and reads the relative
    phi-space novelty; a task ending where a mastered one does is boring, a bad checkpoint is one line."""
    from envs.core.observation import SLOTS_DIM
    from train.curriculum.config import CurriculumConfig
    from train.curriculum.interestingness import EmbeddingJudge
    from train.curriculum.runner import load_novelty
    from train.demos import collect_demos
    from train.hilp.data import episodes_of
    from train.hilp.features import relative_novelty

    store = collect_demos("reach_target", 4, 0, tmp_path, obs_mode="slots", progress=False)
    ds = GoalDataset(episodes_of([store]))
    torch.manual_seed(0)
    policy = HILPPolicy(HILPConfig(obs_dim=SLOTS_DIM, action_dim=ds.action_dim, hidden_dims=(32,), latent_dim=8))
    policy.fit_normalizer(ds.obs)
    train_hilp(policy, ds, tmp_path / "hilp", steps=20, batch_size=32, checkpoint_every=20, progress=False)
    seeds = range(1_000_000, 1_000_002)
    assert relative_novelty(policy, "reach_target", [], seeds) == float("inf")
    assert relative_novelty(policy, "reach_target", ["reach_target"], seeds) == pytest.approx(0.0, abs=1e-5)
    push = relative_novelty(policy, "push_to_zone", ["reach_target"], seeds)
    assert 0 < push < float("inf")

    cfg = CurriculumConfig(name="omni", novelty="hilp", hilp_checkpoint=str(tmp_path / "hilp"),
                           novelty_threshold=push / 2)
    judge = EmbeddingJudge(cfg.similarity_threshold, load_novelty(cfg, "mujoco", "ee_delta_pose", seeds=seeds),
                           cfg.novelty_threshold, embed=lambda texts: np.ones((len(texts), 1), np.float32))
    verdicts = judge.judge({"reach_target": "reach the target"},
                           {"reach_target": "reach the target", "push_to_zone": "push the block"})   # all text-alike
    assert not verdicts["reach_target"].interesting and "novelty 0.000 (<" in verdicts["reach_target"].reason
    assert verdicts["push_to_zone"].interesting and f"novelty {push:.3f} (>=" in verdicts["push_to_zone"].reason

    with pytest.raises(ConfigError, match=r"curriculum.hilp_checkpoint=.* is invalid; allowed: a HILP checkpoint "
                                          r"trained on slots \(.* holds no HILP checkpoint"):
        load_novelty(CurriculumConfig(name="omni", novelty="hilp", hilp_checkpoint=str(tmp_path / "none")),
                     "mujoco", "ee_delta_pose")


@pytest.mark.slow
@pytest.mark.timeout(1800)   # two train.py processes; on a loaded shared CPU their start-up alone takes minutes
def test_train_py_policy_hilp_end_to_end_and_resume(tmp_path):
    """``python train.py policy=hilp`` on two tasks, then ``resume=`` (the saved config: already done)."""
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    run = tmp_path / "run"
    args = ["env=[reach_target,push_to_zone]", "policy=hilp", "obs_mode=slots", "data.num_demos=3",
            "policy.explore_episodes=2", "policy.steps=20", "policy.hidden_dims=[16]", "policy.batch_size=16",
            "train.checkpoint_every=10", "train.log_every=5", "eval.episodes=1", "eval.num_videos=0",
            f"data.store_root={tmp_path}/demos", f"hydra.run.dir={run}", "progress=false", "train.num_threads=1"]

    def cli(*a):
        res = subprocess.run([sys.executable, "train.py", *a], cwd=root, capture_output=True, text=True, timeout=900,
                             env={**os.environ, "PYTHONUNBUFFERED": "1"})
        assert res.returncode == 0, res.stderr[-3000:]
        return json.loads((run / "metrics.json").read_text())

    metrics = cli(*args)
    assert set(metrics["per_task"]) == {"reach_target", "push_to_zone"} and metrics["policy"] == "hilp"
    assert metrics["num_exploration"] == {"reach_target": 2, "push_to_zone": 2} and metrics["train"]["steps"] == 20
    assert HILPPolicy.from_pretrained(run / "checkpoints" / "last").config.steps == 20
    metrics = cli(f"resume={run}")
    assert metrics["train"]["resumed_from"] == 20 and metrics["train"]["steps_this_run"] == 0


@pytest.mark.slow
def test_bench_hilp_tiny_runs(tmp_path):
    from bench import hilp as bench_hilp

    result = bench_hilp.main(["--tiny", "--steps", "20", "--store-root", str(tmp_path)])
    row = result["runs"][0]
    assert {"hilp", "gcbc"} <= set(row) and row["hilp"]["num_episodes"] == row["gcbc"]["num_episodes"] > 0


def test_bench_hilp_merges_seeds_run_apart(tmp_path):
    import json

    from bench import hilp as bench

    cfg = {"tasks": ["reach_target"], "demos": 100, "explore": 100, "steps": 3000, "hidden": [256, 256], "batch": 256,
           "eval_episodes": 20}

    def part(name, seeds, rates, **over):
        runs = [{"task": "reach_target", "seed": s, "hilp": {"success_rate": h}, "gcbc": {"success_rate": g}}
                for s, (h, g) in zip(seeds, rates)]
        path = tmp_path / name
        path.write_text(json.dumps({"config": {**cfg, **over, "seeds": seeds}, "runs": runs, "wall_s": 10.0,
                                    "machine": {}, "command": f"python bench/hilp.py --seeds {seeds}"}))
        return str(path)

    a, b = part("a.json", [0], [(0.9, 0.7)]), part("b.json", [1, 2], [(0.8, 0.6), (1.0, 0.5)])
    out = bench.main(["--merge", a, b, "--out", str(tmp_path / "all.json")])
    assert out["config"]["seeds"] == [0, 1, 2] and out["wall_s"] == 20.0
    assert out["summary"]["reach_target"]["hilp"] == {"mean": 0.9, "std": 0.082, "per_seed": [0.9, 0.8, 1.0]}
    with pytest.raises(SystemExit, match=r"differs from .*a.json in \['steps'\]"):
        bench.main(["--merge", a, part("c.json", [3], [(0.1, 0.1)], steps=100), "--out", str(tmp_path / "x.json")])
