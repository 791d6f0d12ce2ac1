"""Conformance suite run over every registered task (built-in, and generated ones once loaded):
the Gymnasium contract, success false at reset, seeded determinism, oracle success >= 90%.

The default suite checks the oracle on the first 10 of the 20 unseen seeds (at most one miss);
``-m slow`` runs the full 20-seed check (the figure docs/benchmarks.md quotes)."""
import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import envs
from planners import oracle_episodes

ORACLE_SEEDS = range(70_000, 70_020)  # unseen: demo seeds start at 0, eval seeds at 100_000
QUICK_ORACLE_SEEDS = ORACLE_SEEDS[:10]   # the default suite's share; the long tasks take ~1 s an episode


def oracle_success_rate(task: str, seeds=ORACLE_SEEDS) -> float:
    env = gym.make(envs.env_id(task))
    wins = sum(e["success"] for e in oracle_episodes(env, seeds))
    env.close()
    return wins / len(seeds)


@pytest.mark.parametrize("task", envs.list_tasks())
def test_task_conformance(task):
    env = gym.make(envs.env_id(task))
    check_env(env.unwrapped, skip_render_check=True)
    for seed in (0, 1, 2):
        obs, info = env.reset(seed=seed)
        assert info["success"] is False, f"{task}: success at reset (seed {seed})"
        assert info["instruction"] and "{" not in info["instruction"]
        obs2, info2 = gym.make(envs.env_id(task)).reset(seed=seed)
        assert np.array_equal(obs, obs2) and info["instruction"] == info2["instruction"]
    rate = oracle_success_rate(task, QUICK_ORACLE_SEEDS)
    assert rate >= 0.9, f"{task}: oracle success {rate:.0%} on {len(QUICK_ORACLE_SEEDS)} unseen seeds (need >= 90%)"


@pytest.mark.slow
@pytest.mark.parametrize("task", envs.list_tasks())
def test_oracle_success_on_20_unseen_seeds(task):
    rate = oracle_success_rate(task)
    assert rate >= 0.9, f"{task}: oracle success {rate:.0%} on 20 unseen seeds (need >= 90%)"


def test_library_has_at_least_15_tasks_across_families():
    names = envs.list_tasks()
    assert len(names) >= 15
    skills = {g.skill for n in names for g in _goals(n)}
    assert skills == {"pick_place", "push", "reach", "articulate"}


def _goals(name):
    env = gym.make(envs.env_id(name))
    env.reset(seed=0)
    return env.unwrapped.goals
