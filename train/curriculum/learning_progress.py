"""Learning progress per task, as OMNI (Zhang et al. 2023) computes it from periodic evaluation.

One :meth:`LearningProgress.update` per evaluation, with each task's success rate on fixed
evaluation seeds:

1. normalize against a random policy's success on the same task:
   ``p = max(raw - random, 0) / (1 - random)``; the random success is capped at 0.75 (as OMNI
   does) so a task the random policy already solves cannot divide by zero;
2. fast EMA ``fast <- alpha p + (1 - alpha) fast`` and slow EMA tracking the fast one
   ``slow <- alpha fast + (1 - alpha) slow`` (alpha 0.1; both start at the first ``p``);
3. reweight both with ``f(p) = (1 - theta) p / (p + theta (1 - 2p))`` (theta 0.1): f(0)=0,
   f(0.1)=0.5, f(1)=1, slope 9 at 0 and 1/9 at 1, so a task starting to be learned shows far
   more progress than one being polished;
4. ``LP = |f(fast) - f(slow)|``: improving or forgetting both count.

:meth:`LearningProgress.distribution` turns LP into sampling probabilities: the tasks with
LP > 0 or a success > 0 are z-scored, squashed by a sigmoid and normalized; the others get 0
(when no task qualifies, every task is z-scored, which gives the uniform distribution).
"""
from __future__ import annotations

import math
from typing import Mapping, Sequence

import numpy as np

RANDOM_CAP = 0.75   # OMNI's cap on the random policy's success (keeps 1 - random away from 0)


def reweight(p, theta: float = 0.1):
    """``f(p) = (1 - theta) p / (p + theta (1 - 2p))`` elementwise: f(0)=0, f(theta)=0.5,
    f(1)=1; slope (1 - theta) / theta at 0 (9 for theta 0.1)."""
    p = np.asarray(p, dtype=np.float64)
    return (1.0 - theta) * p / (p + theta * (1.0 - 2.0 * p))


def normalize_success(raw, random):
    """``max(raw - random, 0) / (1 - random)`` with ``random`` capped at :data:`RANDOM_CAP`."""
    raw = np.asarray(raw, dtype=np.float64)
    random = np.minimum(np.asarray(random, dtype=np.float64), RANDOM_CAP)
    return np.maximum(raw - random, 0.0) / (1.0 - random)


def lp_distribution(lp: Sequence[float], success: Sequence[float]) -> np.ndarray:
    """OMNI's sampling distribution from learning progress: the tasks with ``lp > 0`` or
    ``success > 0`` get ``sigmoid(zscore(lp))`` normalized over them (the z-score over those
    tasks; a zero spread divides by 1), the rest 0. No such task: the same over all tasks."""
    lp = np.asarray(lp, dtype=np.float64)
    success = np.asarray(success, dtype=np.float64)
    active = (lp > 0) | (success > 0)
    if not active.any():
        active = np.ones_like(active)
    sub = lp[active]
    std = sub.std()
    z = (sub - sub.mean()) / (std if std > 0 else 1.0)
    probs = 1.0 / (1.0 + np.exp(-z))
    out = np.zeros_like(lp)
    out[active] = probs / probs.sum()
    return out


class LearningProgress:
    """Fast/slow success EMAs per task and the learning progress between them.

    ``tasks``: the pool (more can join with :meth:`add_tasks`). ``random_success``: each
    task's success under a random policy (:meth:`set_random_success`; 0 until set)."""

    def __init__(self, tasks: Sequence[str], alpha: float = 0.1, theta: float = 0.1):
        if not 0 < alpha <= 1:
            raise ValueError(f"alpha={alpha} is invalid; allowed: a number in (0, 1]")
        if not 0 < theta < 0.5:
            raise ValueError(f"theta={theta} is invalid; allowed: a number in (0, 0.5)")
        self.alpha, self.theta = float(alpha), float(theta)
        self.tasks: list[str] = []
        self.random: dict[str, float] = {}
        self.fast: dict[str, float | None] = {}
        self.slow: dict[str, float | None] = {}
        self.success: dict[str, float] = {}     # the latest raw success rate
        self.add_tasks(tasks)

    def add_tasks(self, tasks: Sequence[str]) -> None:
        """New tasks join with no evaluation yet (LP 0, success 0)."""
        for t in tasks:
            if t not in self.random:
                self.tasks.append(t)
                self.random[t], self.fast[t], self.slow[t], self.success[t] = 0.0, None, None, 0.0

    def set_random_success(self, rates: Mapping[str, float]) -> None:
        for t, r in rates.items():
            self.random[self._known(t)] = _rate(t, r)

    def update(self, success: Mapping[str, float]) -> None:
        """Fold one evaluation's success rates (``{task: rate in [0, 1]}``; tasks not named keep
        their EMAs) into the EMAs."""
        rates = {self._known(t): _rate(t, r) for t, r in success.items()}
        for t, raw in rates.items():
            p = float(normalize_success(raw, self.random[t]))
            if self.fast[t] is None:
                self.fast[t] = self.slow[t] = p
            else:
                self.fast[t] = self.alpha * p + (1 - self.alpha) * self.fast[t]
                self.slow[t] = self.alpha * self.fast[t] + (1 - self.alpha) * self.slow[t]
            self.success[t] = raw

    def learning_progress(self) -> dict[str, float]:
        """``|f(fast) - f(slow)|`` per task (0 before its first evaluation)."""
        out = {}
        for t in self.tasks:
            if self.fast[t] is None:
                out[t] = 0.0
            else:
                out[t] = float(abs(reweight(self.fast[t], self.theta) - reweight(self.slow[t], self.theta)))
        return out

    def distribution(self) -> dict[str, float]:
        """OMNI's LP sampling distribution over the pool (:func:`lp_distribution`)."""
        lp = self.learning_progress()
        probs = lp_distribution([lp[t] for t in self.tasks], [self.success[t] for t in self.tasks])
        return dict(zip(self.tasks, probs.tolist()))

    def _known(self, task: str) -> str:
        if task not in self.random:
            raise KeyError(f"task {task!r} is not in the curriculum's pool ({', '.join(self.tasks)})")
        return task

    # -- checkpoints ---------------------------------------------------------------------------
    def state_dict(self) -> dict:
        return {"tasks": list(self.tasks), "random": dict(self.random), "fast": dict(self.fast),
                "slow": dict(self.slow), "success": dict(self.success)}

    def load_state_dict(self, state: Mapping) -> None:
        """The saved pool replaces this one (a resumed run continues the pool it had)."""
        self.tasks = list(state["tasks"])
        for key in ("random", "fast", "slow", "success"):
            setattr(self, key, {t: state[key][t] for t in self.tasks})


def _rate(task: str, value) -> float:
    value = float(value)
    if not (math.isfinite(value) and 0.0 <= value <= 1.0):
        raise ValueError(f"success rate of {task!r}={value} is invalid; allowed: a number in [0, 1]")
    return value
