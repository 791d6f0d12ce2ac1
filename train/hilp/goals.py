"""Goal states from the oracle, and zero-shot goal reaching measured by the task's own success.

A task's *goal-satisfying state* for a seed is the oracle's final ``slots`` observation on that
seed (the scene with the task done). Goal reaching then asks a goal-conditioned policy (anything
with ``set_goal(goal_obs)`` and ``select_action(obs)``: HILP, or the goal-conditioned BC baseline
of ``bench/hilp.py``) to bring the same seed's start state there, and counts the episode a success
when the task's own ``info["success"]`` holds at any step: no learned success test anywhere.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Iterable

import gymnasium as gym
import numpy as np

import envs
from train.demos import rollout_oracle


@dataclass(frozen=True)
class Endpoints:
    """One oracle episode's start and final ``slots`` observations (raw), and whether it succeeded."""

    task: str
    seed: int
    start: np.ndarray
    goal: np.ndarray
    success: bool


def oracle_endpoints(task: str, seeds: Iterable[int], sim: str = "mujoco",
                     control_mode: str = "ee_delta_pose") -> list[Endpoints]:
    """The oracle's (start, final) slots observations of ``task`` on each seed (cached per task
    code, backend and seeds, so the curriculum can ask again for free)."""
    return list(_endpoints(task, envs.task_source_hash(task), tuple(int(s) for s in seeds), sim, control_mode))


@lru_cache(maxsize=256)
def _endpoints(task: str, code_hash: str, seeds: tuple[int, ...], sim: str, control_mode: str) -> tuple:
    env = gym.make(envs.env_id(task), sim=sim, obs_mode="slots", control_mode=control_mode)
    try:
        out = []
        for seed in seeds:
            ep = rollout_oracle(env, seed)
            out.append(Endpoints(task, seed, ep.slots[0].copy(), ep.final_slots.copy(), ep.success))
        return tuple(out)
    finally:
        env.close()


def reach_goals(policy, task: str, seeds: Iterable[int], sim: str = "mujoco", control_mode: str = "ee_delta_pose",
                max_episode_steps: int | None = None) -> dict:
    """Zero-shot goal reaching on ``task``: per seed, the goal is the oracle's final state of that
    seed and ``policy`` acts from the seed's start. Seeds the oracle itself fails are skipped
    (named in ``skipped_seeds``). Returns ``success_rate`` over the rest, with the per-episode
    outcomes and lengths."""
    goals = [e for e in oracle_endpoints(task, seeds, sim, control_mode) if e.success]
    skipped = sorted(set(int(s) for s in seeds) - {e.seed for e in goals})
    kw = {"max_episode_steps": max_episode_steps} if max_episode_steps else {}
    env = gym.make(envs.env_id(task), sim=sim, obs_mode="slots", control_mode=control_mode, **kw)
    episodes = []
    try:
        for e in goals:
            obs, info = env.reset(seed=e.seed)
            policy.reset()
            policy.set_goal(e.goal)
            success, length = False, 0
            while True:
                obs, _, terminated, truncated, info = env.step(policy.select_action(obs))
                length += 1
                success = success or bool(info["success"])
                if terminated or truncated:
                    break
            episodes.append({"seed": e.seed, "success": success, "length": length})
    finally:
        env.close()
    rate = float(np.mean([ep["success"] for ep in episodes])) if episodes else 0.0
    return {"success_rate": rate, "num_episodes": len(episodes),
            "num_successes": int(sum(ep["success"] for ep in episodes)), "skipped_seeds": skipped,
            "episodes": episodes}
