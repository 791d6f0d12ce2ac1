"""Goal predicates on containers and articulated fixtures (:mod:`envs.core.fixtures`): putting
things in, covering with a lid, opening and closing. Same shape as :mod:`envs.core.predicates`:
``check`` on a :class:`SceneState`, ``target`` for the oracle, tolerances in metres.

Joint goals (``Opened``, ``Closed``) move the fixture's handle: their ``obj`` is the fixture,
``state.pos(obj)`` its handle, ``target`` where the handle is when the goal holds, and their
skill is "articulate" (the oracle grasps the handle and pulls or pushes it along the joint: a
straight line for a drawer, an arc about the hinge for a door).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from envs.core import fixtures as fx
from envs.core.predicates import Goal, On
from envs.core.scene import ObjectSpec
from envs.core.state import SceneState


def _joint(state: SceneState, obj: ObjectSpec) -> float:
    return float(state.joints[obj.name])


@dataclass
class InContainer(Goal):
    """``obj`` lies inside ``container`` (a box, a drawer -- the part outside its cabinet when
    open -- or a bowl): its centre over the floor, ``margin`` inside the walls, below the rim."""

    container: ObjectSpec = None
    margin: float = 0.005

    def __post_init__(self):
        if self.container is not None and self.container.kind not in fx.CONTAINER_KINDS:
            raise ValueError(f"InContainer needs a container, but {self.container.name!r} is a "
                             f"{self.container.kind!r}; containers: {', '.join(fx.CONTAINER_KINDS)}")

    def _q(self, state) -> float:
        return _joint(state, self.container) if self.container.kind in fx.JOINT_KINDS else 0.0

    def target(self, state):
        c = self.container
        if c.kind == "bowl":
            z = state.pos(c)
            return np.array([z[0], z[1], max(z[2] - c.half_size[2] + 0.005, 0.0) + self.obj.half_size[2]])
        return fx.drop_point(c, self._q(state), self.obj)

    def check(self, state):
        p, c = state.pos(self.obj), self.container
        if c.kind == "bowl":  # round: inside the rim radius
            z = state.pos(c)
            return bool(np.linalg.norm(p[:2] - z[:2]) <= c.half_size[0] - self.margin
                        and p[2] < z[2] + c.half_size[2] + self.obj.half_size[2])
        return fx.interior(c, self._q(state)).contains(p, self.margin + min(self.obj.half_size[:2]))


@dataclass
class Covered(On):
    """The lid ``obj`` sits on ``base`` (a box), centred within ``xy_tol`` and resting on its rim."""

    xy_tol: float | None = 0.015

    def __post_init__(self):
        if self.obj is not None and self.obj.kind != "lid":
            raise ValueError(f"Covered needs a lid, but {self.obj.name!r} is a {self.obj.kind!r}")


@dataclass
class _JointGoal(Goal):
    """Base of the joint goals: ``fraction`` of the joint's range (0 = closed, 1 = fully open)."""

    fraction: float = 0.5
    skill = "articulate"

    def __post_init__(self):
        if self.obj is not None:
            fx.check_articulated(self.obj, type(self).__name__)
        if not 0.0 <= self.fraction <= 1.0:
            raise ValueError(f"fraction={self.fraction!r} is invalid; allowed: 0..1 of the joint's range")

    def opening(self, state) -> float:
        """The joint's position as a fraction of its range (0 closed, 1 fully open)."""
        j = fx.joint_spec(self.obj)
        return (_joint(state, self.obj) - j.low) / (j.high - j.low)

    def goal_fraction(self) -> float:
        raise NotImplementedError

    def target(self, state):
        j = fx.joint_spec(self.obj)
        return fx.handle_point(self.obj, j.low + self.goal_fraction() * (j.high - j.low))


@dataclass
class Opened(_JointGoal):
    """The articulated fixture ``obj`` (a drawer or a door) is open to at least ``fraction`` of its
    range (of its travel, m, or its swing, rad)."""

    fraction: float = 0.8

    def goal_fraction(self) -> float:  # aim a little past the threshold, short of the end stop
        return max(self.fraction, min(0.97, self.fraction + 0.1))

    def check(self, state):
        return bool(self.opening(state) >= self.fraction)


@dataclass
class Closed(_JointGoal):
    """The articulated fixture ``obj`` (a drawer or a door) is open by at most ``fraction`` of its
    range."""

    fraction: float = 0.05

    def goal_fraction(self) -> float:
        return 0.0

    def check(self, state):
        return bool(self.opening(state) <= self.fraction)
