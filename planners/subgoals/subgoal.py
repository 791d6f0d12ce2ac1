"""A sub-goal: where the TCP should get to and how open the gripper should be there.

What GravMAD's GravMaps are drawn from. Positions are metres in the world frame (robot base at
the origin, z up); ``gripper_open`` is in [0, 1] (1 open, 0 closed).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from envs.core.robot import WORKSPACE


class SubGoalError(ValueError):
    """A proposed sub-goal is unusable (outside the workspace, unknown object, malformed)."""


@dataclass(frozen=True)
class SubGoal:
    pos: np.ndarray            # (3,) m, world frame
    gripper_open: float        # [0, 1]
    obj: str = ""              # the object it refers to, when there is one
    source: str = ""           # who proposed it: keypose, manual, offline, llm

    def to_dict(self) -> dict:
        return {"pos": [round(float(x), 5) for x in self.pos], "gripper_open": float(self.gripper_open),
                "obj": self.obj, "source": self.source}


def check_subgoal(goal: SubGoal, known_objects=None, workspace: np.ndarray = WORKSPACE) -> SubGoal:
    """``goal`` if usable, else :class:`SubGoalError` saying why: its position must be finite and
    inside ``workspace`` ((2, 3) low/high corners, m; the TCP target bounds by default), its
    openness in [0, 1], and ``obj`` (when set) one of ``known_objects``."""
    pos = np.asarray(goal.pos, float)
    if pos.shape != (3,) or not np.isfinite(pos).all():
        raise SubGoalError(f"sub-goal position {pos.tolist()} is not 3 finite numbers (m)")
    lo, hi = np.asarray(workspace)
    if np.any(pos < lo - 1e-6) or np.any(pos > hi + 1e-6):
        raise SubGoalError(f"sub-goal position {np.round(pos, 3).tolist()} is outside the workspace "
                           f"{np.round(lo, 3).tolist()}..{np.round(hi, 3).tolist()} m")
    if not 0.0 <= float(goal.gripper_open) <= 1.0:
        raise SubGoalError(f"gripper_open={goal.gripper_open} is invalid; allowed: 0 (closed) .. 1 (open)")
    if goal.obj and known_objects is not None and goal.obj not in set(known_objects):
        raise SubGoalError(f"sub-goal refers to {goal.obj!r}, which is not in the scene; known: "
                           f"{', '.join(sorted(known_objects))}")
    return goal
