"""Goal predicates: each checks itself on a :class:`SceneState` and says where the oracle must
put its object (``target``). Success, dense reward and the oracle plan all derive from these.

Tolerances are in metres. A predicate's ``obj`` is the object that moves; fixtures never do.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from envs.core.orientation import tilt_of, yaw_error, yaw_of, yaw_period
from envs.core.scene import ObjectSpec
from envs.core.state import SceneState

PUSH_HEIGHT = 0.012     # m: TCP height while pushing (closed fingers just above the table)
PUSH_CLEARANCE = 0.01   # m: gap between the fingers and the object's footprint circle before a push
YAW_WEIGHT = 0.05       # m per rad: how a yaw error counts in a goal's distance (a quarter turn ~ 8 cm)


@dataclass
class Goal:
    obj: ObjectSpec

    @property
    def name(self) -> str:
        return f"{type(self).__name__.lower()}_{self.obj.name}"

    def check(self, state: SceneState) -> bool:
        raise NotImplementedError

    def target(self, state: SceneState) -> np.ndarray:
        """Position (3,) of ``obj``'s centre that satisfies the goal."""
        raise NotImplementedError

    def distance(self, state: SceneState) -> float:
        """How far ``obj`` is from satisfying the goal (m); drives the dense reward."""
        return float(np.linalg.norm(state.pos(self.obj) - self.target(state)))

    def orientation(self, state: SceneState) -> tuple[float, float] | None:
        """(yaw, period) in rad that ``obj`` must be turned to, equivalent modulo ``period``; None
        when the goal accepts any yaw. The oracle turns the object in hand to match."""
        return None

    # How the oracle achieves the goal: "pick_place" (grasp and carry), "push" (non-prehensile,
    # fingers closed), "reach" (move the TCP; nothing is carried) or "articulate" (grasp a
    # fixture's handle and move it along its joint: envs.core.fixture_goals).
    skill = "pick_place"


@dataclass
class On(Goal):
    """``obj`` rests on top of ``base``: centred within ``xy_tol`` and touching its top face."""

    base: ObjectSpec = None
    xy_tol: float | None = None
    z_tol: float = 0.01

    def target(self, state):
        b = state.pos(self.base)
        return np.array([b[0], b[1], b[2] + self.base.half_size[2] + self.obj.half_size[2]])

    def check(self, state):
        p, t = state.pos(self.obj), self.target(state)
        tol = self.xy_tol if self.xy_tol is not None else min(self.base.half_size[:2])
        return bool(np.linalg.norm(p[:2] - t[:2]) <= tol and abs(p[2] - t[2]) <= self.z_tol)


@dataclass
class InZone(Goal):
    """``obj``'s centre lies inside ``zone``'s footprint (shrunk by ``margin``) on the table,
    or inside a bowl."""

    zone: ObjectSpec = None
    margin: float = 0.0
    offset: tuple[float, float] = (0.0, 0.0)  # where in the zone the oracle puts obj (room for several)

    def target(self, state):
        z = state.pos(self.zone)
        floor = z[2] - self.zone.half_size[2] + (0.005 if self.zone.kind == "bowl" else 0.0)
        return np.array([z[0] + self.offset[0], z[1] + self.offset[1], max(floor, 0.0) + self.obj.half_size[2]])

    def check(self, state):
        p, z = state.pos(self.obj), state.pos(self.zone)
        hx, hy = self.zone.half_size[0] - self.margin, self.zone.half_size[1] - self.margin
        if self.zone.kind == "bowl":  # round: inside the rim radius
            return bool(np.linalg.norm(p[:2] - z[:2]) <= hx and p[2] < z[2] + self.zone.half_size[2] + self.obj.half_size[2])
        return bool(abs(p[0] - z[0]) <= hx and abs(p[1] - z[1]) <= hy and p[2] < self.obj.half_size[2] + 0.01)


@dataclass
class AtPose(Goal):
    """``obj``'s centre is within ``tol`` of a fixed table-top position ``xy``; with ``yaw`` (rad
    about +z) also turned to it within ``yaw_tol``, modulo the object's symmetry (a cube's quarter
    turn, an oblong block's half turn; kinds without a yaw are refused)."""

    xy: tuple[float, float] = (0.5, 0.0)
    tol: float = 0.02
    yaw: float | None = None
    yaw_tol: float = 0.1

    def __post_init__(self):
        if self.yaw is not None:
            yaw_period(self.obj)  # a kind without a yaw: say which kinds have one

    def target(self, state):
        return np.array([self.xy[0], self.xy[1], self.obj.half_size[2]])

    def check(self, state):
        return bool(np.linalg.norm(state.pos(self.obj)[:2] - np.asarray(self.xy)) <= self.tol
                    and state.pos(self.obj)[2] < self.obj.half_size[2] + 0.01
                    and _yaw_ok(self, state, self.yaw_tol))

    def distance(self, state):
        return super().distance(state) + _yaw_distance(self, state)

    def orientation(self, state):
        return None if self.yaw is None else (float(self.yaw), yaw_period(self.obj))


@dataclass
class Near(Goal):
    """``obj`` sits on the table beside ``other``, centre-to-centre ``gap`` (m) along ``direction``
    ("left" = +y, "right" = -y, "front" = -x towards the robot, "behind" = +x), within ``tol``."""

    other: ObjectSpec = None
    direction: str = "left"
    gap: float = 0.07
    tol: float = 0.025

    _DIRS = {"left": (0, 1), "right": (0, -1), "front": (-1, 0), "behind": (1, 0)}

    def target(self, state):
        o = state.pos(self.other)
        d = np.asarray(self._DIRS[self.direction], dtype=float)
        return np.array([o[0] + d[0] * self.gap, o[1] + d[1] * self.gap, self.obj.half_size[2]])

    def check(self, state):
        p, t = state.pos(self.obj), self.target(state)
        return bool(np.linalg.norm(p[:2] - t[:2]) <= self.tol and p[2] < self.obj.half_size[2] + 0.01)


@dataclass
class Bridge(Goal):
    """``obj`` rests across the tops of ``left`` and ``right`` (the apex of a pyramid)."""

    left: ObjectSpec = None
    right: ObjectSpec = None
    xy_tol: float = 0.02
    z_tol: float = 0.012

    def target(self, state):
        a, b = state.pos(self.left), state.pos(self.right)
        top = max(a[2] + self.left.half_size[2], b[2] + self.right.half_size[2])
        return np.array([(a[0] + b[0]) / 2, (a[1] + b[1]) / 2, top + self.obj.half_size[2]])

    def check(self, state):
        p, t = state.pos(self.obj), self.target(state)
        return bool(np.linalg.norm(p[:2] - t[:2]) <= self.xy_tol and abs(p[2] - t[2]) <= self.z_tol)


@dataclass
class Pushed(InZone):
    """Like :class:`InZone`, but the oracle must push the object along the table (no grasp)."""

    skill = "push"

    def push_point(self, state) -> np.ndarray:
        """Where the TCP pushes from: just behind the object on the target->object line, at
        push height. The dense reward's reach stage aims here (as ManiSkill's PushCube does)
        rather than at the object's centre, which a random approach would shove off course."""
        p, t = state.pos(self.obj), self.target(state)
        d = (t[:2] - p[:2]) / (np.linalg.norm(t[:2] - p[:2]) + 1e-9)
        return np.array([*(p[:2] - d * (self.obj.footprint_radius + PUSH_CLEARANCE)), PUSH_HEIGHT])


@dataclass
class Reached(Goal):
    """The tool centre point is within ``tol`` of the marker ``obj`` (a reaching task)."""

    tol: float = 0.02
    skill = "reach"

    def target(self, state):
        return state.pos(self.obj).copy()

    def check(self, state):
        return bool(np.linalg.norm(state.tcp_pos - state.pos(self.obj)) <= self.tol)

    def distance(self, state):
        return float(np.linalg.norm(state.tcp_pos - state.pos(self.obj)))


@dataclass
class Aligned(Goal):
    """``obj`` rests on the table with its edges parallel to ``ref``'s (a block or a zone), within
    ``yaw_tol`` rad. Edges match every quarter turn, or every half turn when both footprints are
    oblong (long side to long side). With ``xy_tol`` (m), ``obj``'s centre must also be within it
    of ``ref``'s (fitting a block into a zone's outline); otherwise it may stay where it is."""

    ref: ObjectSpec = None
    yaw_tol: float = 0.1
    xy_tol: float | None = None

    def __post_init__(self):
        yaw_period(self.obj), yaw_period(self.ref)  # both need a yaw: say which kinds have one

    def orientation(self, state):
        return yaw_of(state.objects[self.ref.name].quat), min(yaw_period(self.obj), yaw_period(self.ref))

    def target(self, state):
        xy = state.pos(self.obj)[:2] if self.xy_tol is None else state.pos(self.ref)[:2]
        return np.array([xy[0], xy[1], self.obj.half_size[2]])

    def check(self, state):
        p = state.pos(self.obj)
        near = self.xy_tol is None or np.linalg.norm(p[:2] - state.pos(self.ref)[:2]) <= self.xy_tol
        return bool(near and p[2] < self.obj.half_size[2] + 0.01 and _yaw_ok(self, state, self.yaw_tol))

    def distance(self, state):
        return super().distance(state) + _yaw_distance(self, state)


@dataclass
class Inserted(Goal):
    """``obj`` (a peg) sits in the hole of ``socket`` (see ``Scene.add_socket``): upright, centred
    within ``xy_tol`` m, its bottom at least ``depth`` m below the socket's top (default: all the
    way down but 5 mm), and, for a square or oblong hole, turned to fit within ``yaw_tol`` rad.
    A peg wider than the hole is refused when the goal is made, with both sizes."""

    socket: ObjectSpec = None
    depth: float | None = None
    xy_tol: float = 0.01
    yaw_tol: float = 0.12

    TILT_TOL = 0.15  # rad: a peg leaning more than this is jammed, not inserted

    def __post_init__(self):
        if self.socket is None or self.socket.kind != "socket":
            raise ValueError(f"Inserted(socket=...) needs a socket (Scene.add_socket), not "
                             f"{getattr(self.socket, 'kind', None)!r}")
        hx, hy = self.socket.hole
        px, py = self.obj.half_size[:2]
        if self.socket.hole_shape == "round":  # the peg's footprint circle must pass
            fits = (px if self.obj.kind == "cylinder" else np.hypot(px, py)) < hx
        else:  # turned to fit: short side in the short way, long side in the long way
            fits = all(a < b for a, b in zip(sorted((px, py)), sorted((hx, hy))))
        if not fits:
            raise ValueError(f"peg {self.obj.name!r} ({2 * px:.3f} x {2 * py:.3f} m, {self.obj.kind}) does not fit the "
                             f"{self.socket.hole_shape} hole of {self.socket.name!r} ({2 * hx:.3f} x {2 * hy:.3f} m); "
                             f"make the hole larger than the peg (2-5 mm of clearance)")
        if self.depth is None:
            self.depth = max(2 * self.socket.half_size[2] - 0.005, 0.0)

    def orientation(self, state):
        if self.obj.kind == "cylinder" or self.socket.hole_shape == "round":
            return None
        return yaw_of(state.objects[self.socket.name].quat), min(yaw_period(self.obj), yaw_period(self.socket))

    def target(self, state):
        s = state.pos(self.socket)
        return np.array([s[0], s[1], s[2] - self.socket.half_size[2] + self.obj.half_size[2]])

    def check(self, state):
        p, s = state.pos(self.obj), state.pos(self.socket)
        bottom, top = p[2] - self.obj.half_size[2], s[2] + self.socket.half_size[2]
        return bool(np.linalg.norm(p[:2] - s[:2]) <= self.xy_tol and bottom <= top - self.depth + 1e-4
                    and tilt_of(state.objects[self.obj.name].quat) <= self.TILT_TOL
                    and _yaw_ok(self, state, self.yaw_tol))

    def distance(self, state):
        return super().distance(state) + _yaw_distance(self, state)


def _yaw_left(goal: Goal, state: SceneState) -> float:
    """|turn| (rad) still needed for ``goal``'s orientation (0 when it has none)."""
    o = goal.orientation(state)
    return 0.0 if o is None else abs(yaw_error(yaw_of(state.objects[goal.obj.name].quat), *o))


def _yaw_ok(goal: Goal, state: SceneState, tol: float) -> bool:
    return _yaw_left(goal, state) <= tol


def _yaw_distance(goal: Goal, state: SceneState) -> float:
    return YAW_WEIGHT * _yaw_left(goal, state)


def goal_delta(goal: Goal, state: SceneState) -> np.ndarray:
    """Target minus the position of what the goal moves (the TCP for reach goals): the
    goal-relative feature of the state observation."""
    mover = state.tcp_pos if goal.skill == "reach" else state.pos(goal.obj)
    return goal.target(state) - mover
