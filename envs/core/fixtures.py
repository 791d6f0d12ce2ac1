"""Containers and articulated fixtures: one geometry, read by both backends, the goals and the oracle.

Kinds (added by :class:`~envs.core.scene.Scene`'s ``add_box``, ``add_lid``, ``add_drawer``, ``add_door``):

- ``box``: an open container fixed to the table, a floor and four walls of ``WALL`` thickness;
  ``half_size`` is its outer bounding box.
- ``lid``: a free plate with a knob on top that covers a box; ``half_size`` bounds plate + knob,
  and the body's origin is that box's centre (so ``On``/``Covered`` targets work unchanged). The
  gripper takes it by the knob (:func:`grasp_point`).
- ``drawer``: a cabinet fixed to the table (floor, top, sides, back, open towards the robot at
  -x of its own frame) holding a drawer on a prismatic joint; the drawer (front panel, floor,
  walls and a handle sticking out towards the robot) slides out along -x by up to
  :func:`joint_range`. ``half_size`` is the cabinet's outer bounding box.
- ``door``: the same cabinet closed by a door on a revolute joint: a panel over the open face,
  hinged about a vertical axis at its +y edge (the robot's left), with a handle near its free
  (-y) edge sticking out towards the robot; it swings out towards the robot by up to
  :data:`DOOR_RANGE` rad. ``half_size`` is the cabinet's outer bounding box.

Every shape is a box (:class:`Part`) in the object's own frame (origin at the bounding-box centre,
yaw about +z); ``body`` says whether it belongs to the fixed base or to the jointed moving part.
The state an articulated fixture reports (:class:`~envs.core.state.SceneState`) is the world
position of its handle as ``objects[name].pos`` (what the gripper reaches for, the goal's
``target`` and the observation's fixture feature) and the joint position as ``joints[name]``
(m for prismatic, rad for revolute). Units: metres, radians, kilograms, N·s/m (N·m·s/rad for a
revolute joint).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

WALL = 0.008          # m: wall / floor thickness of boxes and drawers
CLEARANCE = 0.003     # m: gap between a drawer and its cabinet
LID_PLATE = 0.01      # m: thickness of a lid's plate
LID_KNOB = (0.012, 0.012, 0.016)  # m: half extents of a lid's knob
HANDLE = (0.025, 0.01, 0.01)     # m: half extents of a drawer handle (sticks out along -x)
DRAWER_WALL_HEIGHT = 0.04        # m: height of a drawer's walls above its floor
DRAWER_TRAVEL = 0.7   # fraction of the cabinet's depth the drawer slides out when fully open

# Joint dynamics: enough damping and dry friction that a fixture stays where the gripper left it
DRAWER_MASS = 0.3           # kg
DRAWER_DAMPING = 4.0        # N·s/m
DRAWER_FRICTION = 0.5       # N (dry friction on the joint)

# A door: the same joint feel at its handle as a drawer's (damping and friction scaled by the
# handle's lever arm, about 0.15 m), a quarter turn of travel
DOOR_RANGE = 1.5708         # rad: how far the door swings open
DOOR_MASS = 0.3             # kg
DOOR_DAMPING = 0.09         # N·m·s/rad
DOOR_FRICTION = 0.075       # N·m (dry friction on the joint)
DOOR_HANDLE_INSET = 0.03    # m: from the door's free edge to its handle's centre line

# Kinds that have a joint, and its type; a joint goal on any other kind is refused.
JOINT_KINDS: dict[str, str] = {"drawer": "prismatic", "door": "revolute"}
CONTAINER_KINDS = ("box", "drawer", "bowl")  # what InContainer accepts
FIXTURE_KINDS = frozenset({"box", "lid", "drawer", "door"})


@dataclass(frozen=True)
class Part:
    """One box shape of a fixture: ``center`` and ``half`` (m) in the object's frame; ``body``:
    "base" (fixed, or the free body of a lid) or "moving" (the jointed part, at joint position 0)."""

    name: str
    center: tuple[float, float, float]
    half: tuple[float, float, float]
    body: str = "base"


def parts(obj) -> list[Part]:
    """The box shapes of a ``box``, ``lid``, ``drawer`` or ``door`` (same on every backend)."""
    hx, hy, hz = obj.half_size
    t = WALL
    if obj.kind == "box":
        return [Part("floor", (0, 0, -hz + t / 2), (hx, hy, t / 2)),
                Part("wall_px", (hx - t / 2, 0, 0), (t / 2, hy, hz)),
                Part("wall_nx", (-hx + t / 2, 0, 0), (t / 2, hy, hz)),
                Part("wall_py", (0, hy - t / 2, 0), (hx - t, t / 2, hz)),
                Part("wall_ny", (0, -hy + t / 2, 0), (hx - t, t / 2, hz))]
    if obj.kind == "lid":
        kx, ky, kz = LID_KNOB
        return [Part("plate", (0, 0, -hz + LID_PLATE / 2), (hx, hy, LID_PLATE / 2)),
                Part("knob", (0, 0, hz - kz), (kx, ky, kz))]
    if obj.kind in ("drawer", "door"):
        c = CLEARANCE
        cabinet = [Part("bottom", (0, 0, -hz + t / 2), (hx, hy, t / 2)),
                   Part("top", (0, 0, hz - t / 2), (hx, hy, t / 2)),
                   Part("side_py", (0, hy - t / 2, 0), (hx, t / 2, hz)),
                   Part("side_ny", (0, -hy + t / 2, 0), (hx, t / 2, hz)),
                   Part("back", (hx - t / 2, 0, 0), (t / 2, hy, hz))]
        hl, hw, hh = HANDLE
        if obj.kind == "door":  # a panel over the open face, its handle near the free (-y) edge
            return cabinet + [Part("panel", (-hx - t / 2, 0, c / 2), (t / 2, hy, hz - c / 2), "moving"),
                              Part("handle", (-hx - t - hl, -hy + DOOR_HANDLE_INSET, 0), (hl, hw, hh), "moving")]
        # the drawer: its front panel closes the cabinet's open face from outside
        x0, x1 = -hx, hx - t - c                     # drawer box along x (panel excluded)
        iy = hy - t - c                              # drawer's outer half width
        z0 = -hz + t + c                             # underside of its floor
        wh = min(DRAWER_WALL_HEIGHT, 2 * hz - 2 * t - 2 * c - t) / 2  # half height of its walls
        xm, xh = (x0 + x1) / 2, (x1 - x0) / 2
        drawer = [Part("panel", (-hx - t / 2, 0, c / 2), (t / 2, hy, hz - c / 2), "moving"),
                  Part("floor", (xm, 0, z0 + t / 2), (xh, iy, t / 2), "moving"),
                  Part("wall_py", (xm, iy - t / 2, z0 + t + wh), (xh, t / 2, wh), "moving"),
                  Part("wall_ny", (xm, -iy + t / 2, z0 + t + wh), (xh, t / 2, wh), "moving"),
                  Part("wall_back", (x1 - t / 2, 0, z0 + t + wh), (t / 2, iy, wh), "moving"),
                  Part("handle", (-hx - t - hl, 0, 0), (hl, hw, hh), "moving")]
        return cabinet + drawer
    raise ValueError(f"{obj.kind!r} is not a container or articulated fixture; kinds: {', '.join(sorted(FIXTURE_KINDS))}")


@dataclass(frozen=True)
class JointSpec:
    """An articulated fixture's joint, in the object's frame: ``type`` "prismatic" or "revolute",
    ``axis`` (unit; a revolute joint turns right-handed about it), range (m or rad), damping (N·s/m
    or N·m·s/rad), dry friction (N or N·m), mass of the moving part (kg) and, for a revolute joint,
    ``pivot``: a point on its axis (m)."""

    type: str
    axis: tuple[float, float, float]
    low: float
    high: float
    damping: float
    friction: float
    mass: float
    pivot: tuple[float, float, float] = (0.0, 0.0, 0.0)


def joint_spec(obj) -> JointSpec:
    """The joint of an articulated fixture; a ``ValueError`` naming the jointed kinds otherwise."""
    check_articulated(obj, "a joint")
    if obj.kind == "door":  # about -z through the panel's outer edge on the hinge side: opens outwards
        hx, hy, _ = obj.half_size
        return JointSpec("revolute", (0.0, 0.0, -1.0), 0.0, joint_range(obj), DOOR_DAMPING, DOOR_FRICTION,
                         DOOR_MASS, (-hx - WALL, hy, 0.0))
    return JointSpec("prismatic", (-1.0, 0.0, 0.0), 0.0, joint_range(obj), DRAWER_DAMPING, DRAWER_FRICTION,
                     DRAWER_MASS)


def joint_range(obj) -> float:
    """Upper joint limit: how far the drawer slides out (m) or the door swings open (rad)."""
    if obj.kind == "door":
        return DOOR_RANGE
    return round(DRAWER_TRAVEL * 2 * obj.half_size[0], 4)


def joint_name(obj) -> str:
    """The name both backends give an articulated fixture's joint."""
    return f"{obj.name}_{'hinge' if JOINT_KINDS[obj.kind] == 'revolute' else 'slide'}"


def check_articulated(obj, what: str) -> None:
    if obj.kind not in JOINT_KINDS:
        raise ValueError(f"{what} needs an articulated fixture, but {obj.name!r} is a {obj.kind!r}; "
                         f"kinds with joints: {', '.join(sorted(JOINT_KINDS))}")


def _rot(yaw: float) -> np.ndarray:
    c, s = np.cos(yaw), np.sin(yaw)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def to_world(obj, local) -> np.ndarray:
    """A point given in the fixture's frame -> world (the fixture at its spec pose)."""
    return np.asarray(obj.pos, float) + _rot(obj.yaw) @ np.asarray(local, float)


def to_local(obj, world) -> np.ndarray:
    return _rot(obj.yaw).T @ (np.asarray(world, float) - np.asarray(obj.pos, float))


def handle_local(obj) -> np.ndarray:
    """Where the gripper holds the handle at joint position 0, in the fixture's frame."""
    hx, hy, _ = obj.half_size
    y = -hy + DOOR_HANDLE_INSET if obj.kind == "door" else 0.0
    return np.array([-hx - WALL - HANDLE[0], y, 0.0])


def axis_rotation(axis, angle: float) -> np.ndarray:
    """3x3 rotation by ``angle`` rad about the unit vector ``axis`` (right-handed)."""
    k = np.asarray(axis, float)
    kx = np.array([[0.0, -k[2], k[1]], [k[2], 0.0, -k[0]], [-k[1], k[0], 0.0]])
    return np.eye(3) + np.sin(angle) * kx + (1.0 - np.cos(angle)) * kx @ kx


def handle_point(obj, q: float) -> np.ndarray:
    """World position of the handle's grasp point at joint position ``q``: slid along the axis
    (prismatic) or turned about it through the pivot (revolute)."""
    j = joint_spec(obj)
    h = handle_local(obj)
    if j.type == "revolute":
        pivot = np.asarray(j.pivot)
        return to_world(obj, pivot + axis_rotation(j.axis, q) @ (h - pivot))
    return to_world(obj, h + q * np.asarray(j.axis))


def handle_velocity(obj, q: float, qdot: float) -> np.ndarray:
    """World velocity (m/s) of the handle's grasp point at joint position ``q`` and rate ``qdot``."""
    j = joint_spec(obj)
    axis = _rot(obj.yaw) @ np.asarray(j.axis)
    if j.type == "revolute":
        return qdot * np.cross(axis, handle_point(obj, q) - to_world(obj, j.pivot))
    return qdot * axis


def handle_turn(obj, q: float) -> float:
    """How far (rad, about world +z) the handle has turned at joint position ``q``: 0 for a
    drawer, the joint angle with the axis's sign for a door (its axis is vertical)."""
    j = joint_spec(obj)
    return float(j.axis[2] * q) if j.type == "revolute" else 0.0


def joint_from_handle(obj, handle_world) -> float:
    """Inverse of :func:`handle_point`: the joint position that puts the handle there."""
    j = joint_spec(obj)
    axis = np.asarray(j.axis)
    if j.type == "revolute":  # signed angle between the pivot->handle arms, about the axis
        pivot = np.asarray(j.pivot)
        u0, u = handle_local(obj) - pivot, to_local(obj, handle_world) - pivot
        return float(np.arctan2(np.cross(u0, u) @ axis, u0 @ u - (u0 @ axis) * (u @ axis)))
    return float((to_local(obj, handle_world) - handle_local(obj)) @ axis)


def grasp_point(obj, pos: np.ndarray) -> tuple[np.ndarray, float]:
    """(world point the fingers close on, half height of what they hold) for an object whose
    centre is at ``pos``: a lid's knob, otherwise the object itself."""
    if obj.kind == "lid":
        kz = LID_KNOB[2]
        return np.asarray(pos, float) + [0.0, 0.0, obj.half_size[2] - kz], kz
    return np.asarray(pos, float), obj.half_size[2]


@dataclass(frozen=True)
class Interior:
    """The inside of a container in the world: ``center`` is the middle of its floor's top face
    (m), ``half_xy`` the half extents of the usable floor along the container's own x and y,
    ``rim`` the height of its walls' top (m), ``yaw`` its heading (rad)."""

    center: np.ndarray
    half_xy: tuple[float, float]
    rim: float
    yaw: float

    def contains(self, p, margin: float = 0.0) -> bool:
        d = _rot(self.yaw).T @ (np.asarray(p, float) - self.center)
        return bool(abs(d[0]) <= self.half_xy[0] - margin and abs(d[1]) <= self.half_xy[1] - margin
                    and -0.005 <= d[2] and p[2] <= self.rim)


def interior(obj, q: float = 0.0) -> Interior:
    """The usable inside of a ``box`` or a ``drawer`` (at joint position ``q``; the part of the
    drawer outside the cabinet, where something can be put in from above)."""
    hx, hy, hz = obj.half_size
    t = WALL
    if obj.kind == "box":
        return Interior(to_world(obj, (0, 0, -hz + t)), (hx - t, hy - t), float(obj.pos[2] + hz), obj.yaw)
    if obj.kind == "drawer":
        c = CLEARANCE
        iy = hy - 2 * t - c
        floor = -hz + 2 * t + c
        wall_top = floor + min(DRAWER_WALL_HEIGHT, 2 * hz - 2 * t - 2 * c - t)
        x_front, x_back = -hx - q, hx - 2 * t - c - q   # inside of the drawer, in the cabinet frame
        return Interior(to_world(obj, ((x_front + x_back) / 2, 0, floor)), ((x_back - x_front) / 2, iy),
                        float(obj.pos[2] + wall_top), obj.yaw)
    raise ValueError(f"{obj.name!r} is a {obj.kind!r}, not a container; containers: {', '.join(CONTAINER_KINDS)}")


def drop_point(obj, q: float, item) -> np.ndarray:
    """Where the oracle puts ``item``'s centre in a ``box`` or an open ``drawer``: the middle of
    the box's floor, or of the drawer's part outside the cabinet."""
    ins = interior(obj, q)
    if obj.kind == "drawer":
        local = np.array([-obj.half_size[0] - q / 2, 0.0, 0.0])
        xy = to_world(obj, local)[:2]
        return np.array([xy[0], xy[1], ins.center[2] + item.half_size[2]])
    return ins.center + [0.0, 0.0, item.half_size[2]]
