"""Offline goal-conditioned data for HILP: every transition of the demo and exploration stores, with
goals relabelled as in seohongpark/HILP (``GCDataset``): a geometric-future state of the same
episode (``p_future_goal``) or any state of the dataset (``p_random_goal``); the goal is reached,
reward 0 and terminal, when it is the transition's own state."""
from __future__ import annotations

from typing import Iterable, Sequence

import numpy as np

from train.datasets.demo_store import Episode


class GoalDataset:
    """Transitions (s, a, s') of ``episodes`` on the vector ``obs_key`` (``slots``: the
    task-independent observation every store keeps; ``state``: the store's own vector).

    Arrays (N transitions): ``obs`` / ``next_obs`` (N, D), ``actions`` (N, A), ``final`` (N,) the
    index of its episode's last transition, ``task`` (N,) an index into ``tasks``."""

    def __init__(self, episodes: Iterable[Episode], discount: float = 0.99, p_future_goal: float = 0.625,
                 p_random_goal: float = 0.375, obs_key: str = "slots"):
        if abs(p_future_goal + p_random_goal - 1.0) > 1e-6:
            raise ValueError(f"p_future_goal + p_random_goal = {p_future_goal + p_random_goal}; they must add up to 1")
        obs, nxt, actions, final, task = [], [], [], [], []
        self.tasks: list[str] = []
        n = 0
        for ep in episodes:
            states, last = _vectors(ep, obs_key)
            if len(states) == 0:
                continue
            if ep.task not in self.tasks:
                self.tasks.append(ep.task)
            obs.append(states)
            nxt.append(np.concatenate([states[1:], last[None]]))
            actions.append(ep.actions)
            final.append(np.full(len(states), n + len(states) - 1))
            task.append(np.full(len(states), self.tasks.index(ep.task)))
            n += len(states)
        if n == 0:
            raise ValueError("GoalDataset: no transitions (every episode is empty or none was given)")
        self.obs, self.next_obs = np.concatenate(obs).astype(np.float32), np.concatenate(nxt).astype(np.float32)
        self.actions = np.concatenate(actions).astype(np.float32)
        self.final, self.task = np.concatenate(final), np.concatenate(task)
        self.discount, self.p_random_goal = float(discount), float(p_random_goal)

    def __len__(self) -> int:
        return len(self.obs)

    @property
    def obs_dim(self) -> int:
        return self.obs.shape[1]

    @property
    def action_dim(self) -> int:
        return self.actions.shape[1]

    def sample_goals(self, idx: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Goal indices for transitions ``idx``: geometric future (clipped to the episode's last
        transition) or, with probability ``p_random_goal``, uniform over the dataset."""
        future = np.minimum(idx + rng.geometric(1.0 - self.discount, size=len(idx)), self.final[idx])
        random = rng.integers(0, len(self), size=len(idx))
        return np.where(rng.random(len(idx)) < self.p_random_goal, random, future)

    def sample(self, batch_size: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
        """A batch: ``obs``, ``actions``, ``next_obs``, ``goals`` (raw vectors) and ``success``
        (1.0 where the goal is the transition's own state)."""
        idx = rng.integers(0, len(self), size=batch_size)
        goal = self.sample_goals(idx, rng)
        return {"obs": self.obs[idx], "actions": self.actions[idx], "next_obs": self.next_obs[idx],
                "goals": self.obs[goal], "success": (idx == goal).astype(np.float32)}


def _vectors(ep: Episode, obs_key: str) -> tuple[np.ndarray, np.ndarray]:
    if obs_key == "slots":
        if ep.slots is None or ep.final_slots is None:
            raise ValueError(f"episode {ep.task}/{ep.seed} has no slots observation (a format 2 store, or a "
                             f"scene with more objects than slots); regenerate it with train.demos")
        return ep.slots, ep.final_slots
    if obs_key == "state":   # the store's own vector (a single task's state)
        return ep.obs, ep.final_obs
    raise ValueError(f"obs_key={obs_key!r} is invalid; allowed: slots, state")


def episodes_of(stores: Sequence) -> list[Episode]:
    """Every episode of several demo stores, in order."""
    return [ep for store in stores for ep in store.episodes]
