"""Task features from a trained HILP representation, for the curriculum (``train/curriculum``).

- ``task_difficulty``: the Hilbert distance ||phi(s0) - phi(g)|| from a task's start state to its
  goal-satisfying state (the oracle's final state), averaged over seeds: HILP's temporal distance,
  about how many discounted steps the task takes from where it starts.
- ``task_novelty``: how far, in phi space, a task's goal states lie from the goal states of tasks
  already mastered: for each of its goal states the distance to the nearest mastered goal state,
  averaged. A near-duplicate of a mastered task scores ~0; with nothing mastered, ``inf``.

- ``relative_novelty``: ``task_novelty / task_difficulty``, what the curriculum's judge reads
  (:func:`hilp_novelty`): scale-free, so one threshold serves any trained phi; below ~0.5 the task
  ends nearer a mastered task's goal than half its own length.

All read goal states through :func:`train.hilp.goals.oracle_endpoints` (cached), so asking for
every task in a pool each curriculum round costs one oracle episode per (task, seed) once.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np
import torch

from train.hilp.goals import oracle_endpoints

FEATURE_SEEDS = range(1_000_000, 1_000_005)   # apart from demo and evaluation seeds


def _phi(policy, obs: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return policy.phi(policy._tensor(obs)).cpu().numpy()


def _endpoints(task: str, seeds, sim: str, control_mode: str):
    ends = [e for e in oracle_endpoints(task, seeds, sim, control_mode) if e.success]
    if not ends:
        raise ValueError(f"task {task!r}: the oracle solved none of seeds {list(seeds)}; it has no goal state "
                         f"to measure (check the task with python -m generation validate)")
    return ends


def task_difficulty(policy, task: str, seeds: Iterable[int] = FEATURE_SEEDS, sim: str = "mujoco",
                    control_mode: str = "ee_delta_pose") -> float:
    """Mean ||phi(start) - phi(goal)|| over the seeds the oracle solves (latent units ~ steps)."""
    ends = _endpoints(task, tuple(seeds), sim, control_mode)
    starts, goals = _phi(policy, np.stack([e.start for e in ends])), _phi(policy, np.stack([e.goal for e in ends]))
    return float(np.linalg.norm(starts - goals, axis=-1).mean())


def task_novelty(policy, task: str, mastered: Sequence[str], seeds: Iterable[int] = FEATURE_SEEDS,
                 sim: str = "mujoco", control_mode: str = "ee_delta_pose") -> float:
    """Mean over ``task``'s goal states of the phi-distance to the nearest goal state of any
    ``mastered`` task (``inf`` when none is mastered; ``task`` itself among them gives ~0)."""
    if not mastered:
        return float("inf")
    seeds = tuple(seeds)
    mine = _phi(policy, np.stack([e.goal for e in _endpoints(task, seeds, sim, control_mode)]))
    theirs = _phi(policy, np.stack([e.goal for m in mastered for e in _endpoints(m, seeds, sim, control_mode)]))
    dist = np.linalg.norm(mine[:, None] - theirs[None], axis=-1)   # (mine, theirs)
    return float(dist.min(axis=1).mean())


def task_features(policy, tasks: Sequence[str], mastered: Sequence[str] = (), seeds: Iterable[int] = FEATURE_SEEDS,
                  sim: str = "mujoco", control_mode: str = "ee_delta_pose") -> dict[str, dict[str, float]]:
    """``{task: {"difficulty": ..., "novelty": ...}}`` for a pool of tasks against ``mastered``."""
    seeds = tuple(seeds)
    return {t: {"difficulty": task_difficulty(policy, t, seeds, sim, control_mode),
                "novelty": task_novelty(policy, t, mastered, seeds, sim, control_mode)} for t in tasks}


def relative_novelty(policy, task: str, mastered: Sequence[str], seeds: Iterable[int] = FEATURE_SEEDS,
                     sim: str = "mujoco", control_mode: str = "ee_delta_pose") -> float:
    """``task_novelty / task_difficulty``: how far ``task``'s goal states lie from the mastered
    tasks' goal states, in units of ``task``'s own start-to-goal distance (``inf`` when nothing is
    mastered; ~0 for a task that ends where a mastered one does)."""
    if not mastered:
        return float("inf")
    seeds = tuple(seeds)
    novelty = task_novelty(policy, task, mastered, seeds, sim, control_mode)
    return novelty / max(task_difficulty(policy, task, seeds, sim, control_mode), 1e-6)


def hilp_novelty(policy, seeds: Iterable[int] = FEATURE_SEEDS, sim: str = "mujoco",
                 control_mode: str = "ee_delta_pose") -> Callable[[str, Sequence[str]], float]:
    """The ``(task, mastered) -> score`` the curriculum's interestingness judge takes
    (``train.curriculum.interestingness.NoveltyFn``): :func:`relative_novelty` under ``policy``.
    Raises ValueError for a task the oracle cannot solve on ``seeds`` (the judge then decides by
    text alone and says so)."""
    seeds = tuple(seeds)
    policy.eval()

    def novelty(task: str, mastered: Sequence[str]) -> float:
        return relative_novelty(policy, task, mastered, seeds, sim, control_mode)

    return novelty


def load_hilp(path, device: str = "cpu"):
    """A trained HILP policy from ``path``: a ``policy=hilp`` run directory or its
    ``checkpoints/last``. Raises ValueError in one line when there is none."""
    from policies.common.policy import Policy
    from policies.hilp import HILPPolicy

    path = Path(path)
    found = next((d for d in (path, path / "checkpoints" / "last") if (d / "config.json").is_file()), None)
    if found is None:
        raise ValueError(f"{path} holds no HILP checkpoint (config.json); give a policy=hilp run directory "
                         f"or its checkpoints/last")
    policy = Policy.from_pretrained(found, device=device)
    if not isinstance(policy, HILPPolicy):
        raise ValueError(f"{found} holds a {type(policy).__name__}, not a HILP checkpoint")
    if policy.config.obs_key != "slots":
        raise ValueError(f"{found} reads {policy.config.obs_key!r}; the curriculum needs a HILP trained on slots")
    return policy
