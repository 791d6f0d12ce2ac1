"""Backend-agnostic scene specification: what objects a task puts on the table, and where.

A task's ``build(scene, rng)`` fills a :class:`Scene`; backends compile it (MuJoCo to MJCF,
ManiSkill to actors). Units: metres, kilograms, radians. World frame: the robot base sits at the
origin, +x points away from the robot across the table, +z up, the table top is the plane z = 0.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from envs.core.fixtures import LID_KNOB, LID_PLATE, joint_range
from envs.core.rotations import yaw_quat
from envs.core.sockets import HOLE_SHAPES

# Named colours (RGBA) that instructions can mention; generated tasks draw from the same palette.
COLORS: dict[str, tuple[float, float, float, float]] = {
    "red": (0.85, 0.15, 0.15, 1.0),
    "green": (0.15, 0.7, 0.2, 1.0),
    "blue": (0.15, 0.3, 0.85, 1.0),
    "yellow": (0.95, 0.85, 0.1, 1.0),
    "purple": (0.55, 0.2, 0.75, 1.0),
    "orange": (0.95, 0.5, 0.1, 1.0),
    "cyan": (0.1, 0.8, 0.85, 1.0),
    "pink": (0.95, 0.5, 0.7, 1.0),
    "brown": (0.5, 0.3, 0.15, 1.0),
    "white": (0.95, 0.95, 0.95, 1.0),
    "gray": (0.5, 0.5, 0.5, 1.0),
}

# Regions of the table top (x range, y range) reachable by the arm with the gripper pointing down.
REGIONS: dict[str, tuple[tuple[float, float], tuple[float, float]]] = {
    "table": ((0.38, 0.62), (-0.2, 0.2)),
    "left": ((0.38, 0.62), (0.04, 0.2)),
    "right": ((0.38, 0.62), (-0.2, -0.04)),
    "near": ((0.36, 0.46), (-0.2, 0.2)),
    "far": ((0.54, 0.64), (-0.2, 0.2)),
}


# Every kind of object a scene can hold (the add_* methods below); backends build each of them.
OBJECT_KINDS = frozenset({"block", "cylinder", "zone", "bowl", "marker", "socket", "box", "lid", "drawer",
                          "door"})
BOWL_WALLS = 12  # wall segments approximating a round bowl, the same on every backend


class SceneError(ValueError):
    """A task asked the scene for something impossible (unknown colour, no room to place...)."""


@dataclass
class ObjectSpec:
    """One object or fixture. ``half_size`` is (x, y, z) half extents of its bounding box."""

    name: str
    kind: str  # one of OBJECT_KINDS
    color: str
    half_size: tuple[float, float, float]
    mass: float = 0.05
    movable: bool = True
    pos: np.ndarray = field(default_factory=lambda: np.zeros(3))
    yaw: float = 0.0  # rad about +z
    # sockets only (see add_socket): the hole's shape and half extents (x, y) in the socket's
    # frame, m (a round hole: (radius, radius))
    hole_shape: str = ""
    hole: tuple[float, float] = (0.0, 0.0)
    joint_pos: float = 0.0  # articulated fixtures: initial joint position (m or rad; 0 = closed)

    @property
    def quat(self) -> np.ndarray:
        """Initial orientation (w, x, y, z): ``yaw`` about +z."""
        return yaw_quat(self.yaw)

    @property
    def rgba(self) -> tuple[float, float, float, float]:
        return COLORS[self.color]

    @property
    def height(self) -> float:
        return 2.0 * self.half_size[2]

    @property
    def footprint_radius(self) -> float:
        """Radius of the circle that covers the object's footprint at any yaw."""
        return float(np.hypot(self.half_size[0], self.half_size[1]))

    def __str__(self) -> str:  # instructions say "the red block"
        return f"{self.color} {self.kind}"


class Scene:
    """Collects the objects a task builds and samples their initial poses reproducibly."""

    def __init__(self, rng: np.random.Generator):
        self.rng = rng
        self.objects: list[ObjectSpec] = []

    # -- adding things ---------------------------------------------------------------------
    def _add(self, kind: str, color: str, half_size, name: str | None, **kw) -> ObjectSpec:
        if color not in COLORS:
            raise SceneError(f"unknown colour {color!r}; known colours: {', '.join(COLORS)}")
        name = name or f"{kind}_{sum(o.kind == kind for o in self.objects)}"
        if any(o.name == name for o in self.objects):
            raise SceneError(f"object name {name!r} used twice in one scene")
        obj = ObjectSpec(name=name, kind=kind, color=color,
                         half_size=tuple(float(h) for h in half_size), **kw)
        self.objects.append(obj)
        return obj

    def add_block(self, color: str, size: float | tuple = 0.04, mass: float = 0.05,
                  name: str | None = None) -> ObjectSpec:
        """A cuboid; ``size`` is the edge length (m) or (x, y, z) edge lengths."""
        sx, sy, sz = (size, size, size) if np.isscalar(size) else size
        return self._add("block", color, (sx / 2, sy / 2, sz / 2), name, mass=mass)

    def add_cylinder(self, color: str, radius: float = 0.02, height: float = 0.05,
                     mass: float = 0.05, name: str | None = None) -> ObjectSpec:
        return self._add("cylinder", color, (radius, radius, height / 2), name, mass=mass)

    def add_zone(self, color: str, size: float | tuple = 0.12, name: str | None = None) -> ObjectSpec:
        """A flat coloured target area on the table (no collision)."""
        sx, sy = (size, size) if np.isscalar(size) else size
        return self._add("zone", color, (sx / 2, sy / 2, 0.0005), name, movable=False, mass=0.0)

    def add_bowl(self, color: str, radius: float = 0.06, height: float = 0.04,
                 name: str | None = None) -> ObjectSpec:
        """A fixed open container (floor + walls); objects placed in it must land inside."""
        return self._add("bowl", color, (radius, radius, height / 2), name, movable=False, mass=0.0)

    def add_marker(self, color: str = "green", radius: float = 0.015, name: str | None = None) -> ObjectSpec:
        """A floating visual sphere (no collision): a point for the gripper to reach."""
        return self._add("marker", color, (radius, radius, radius), name, movable=False, mass=0.0)

    def add_socket(self, color: str, hole: float | tuple = 0.036, shape: str = "square", depth: float = 0.03,
                   wall: float = 0.025, name: str | None = None) -> ObjectSpec:
        """A fixed block with a hole through it for a peg to go into (an insertion fixture).

        ``hole`` is the opening's width (m): a square's edge, or (x, y) widths for an oblong slot,
        or a round hole's diameter (``shape="round"``). Make it the peg's width plus the clearance
        (2-5 mm in all is typical). ``depth`` is the socket's height (m), ``wall`` the material
        around the hole (m)."""
        if shape not in HOLE_SHAPES:
            raise SceneError(f"shape={shape!r} is invalid; allowed: {', '.join(HOLE_SHAPES)}")
        wx, wy = (hole, hole) if np.isscalar(hole) else hole
        if shape == "round" and wx != wy:
            raise SceneError(f"hole={hole!r} is invalid for a round hole; allowed: one diameter (m)")
        if not (min(wx, wy) > 0 and depth > 0 and wall > 0):
            raise SceneError(f"socket hole={hole!r}, depth={depth!r}, wall={wall!r} are invalid; allowed: sizes > 0 (m)")
        half = (wx / 2 + wall, wy / 2 + wall, depth / 2) if shape == "square" else (wx / 2 + wall,) * 2 + (depth / 2,)
        return self._add("socket", color, half, name, movable=False, mass=0.0, hole_shape=shape,
                         hole=(float(wx / 2), float(wy / 2)))

    # -- containers and articulated fixtures (geometry: envs.core.fixtures) ------------------
    def add_box(self, color: str, size: float | tuple = (0.12, 0.12, 0.06), name: str | None = None) -> ObjectSpec:
        """An open box fixed to the table (floor + 4 walls); ``size`` is its outer (x, y, z) size (m),
        or one number for a cube. Things go in with ``InContainer``; a lid covers it (``Covered``)."""
        sx, sy, sz = (size, size, size) if np.isscalar(size) else size
        if min(sx, sy) < 0.06 or sz < 0.02:
            raise SceneError(f"box size {size!r} is too small; allowed: x, y >= 0.06 m, z >= 0.02 m")
        return self._add("box", color, (sx / 2, sy / 2, sz / 2), name, movable=False, mass=0.0)

    def add_lid(self, color: str, size: float | tuple = (0.13, 0.13), mass: float = 0.08,
                name: str | None = None) -> ObjectSpec:
        """A free lid: a plate of (x, y) ``size`` (m) with a knob on top the gripper takes."""
        sx, sy = (size, size) if np.isscalar(size) else size
        return self._add("lid", color, (sx / 2, sy / 2, (LID_PLATE + 2 * LID_KNOB[2]) / 2), name, mass=mass)

    def add_drawer(self, color: str, size: tuple = (0.17, 0.18, 0.1), open_fraction: float = 0.0,
                   name: str | None = None) -> ObjectSpec:
        """A cabinet fixed to the table with a drawer that slides out towards the robot (a prismatic
        joint; ``Opened`` / ``Closed`` goals, ``InContainer`` for what is inside). ``size``: the
        cabinet's outer (x, y, z) size (m); ``open_fraction``: how far the drawer starts open (0..1)."""
        return self._add_cabinet("drawer", color, size, open_fraction, name, max_y=0.3)

    def add_door(self, color: str, size: tuple = (0.17, 0.18, 0.1), open_fraction: float = 0.0,
                 name: str | None = None) -> ObjectSpec:
        """A cabinet fixed to the table closed by a door hinged at its left edge (a revolute joint
        about a vertical axis; it swings out towards the robot by up to a quarter turn) with a
        handle near its right edge; ``Opened`` / ``Closed`` goals. ``size``: the cabinet's outer
        (x, y, z) size (m); ``open_fraction``: how far the door starts open (0..1 of the turn)."""
        return self._add_cabinet("door", color, size, open_fraction, name, max_y=0.24)

    def _add_cabinet(self, kind: str, color: str, size: tuple, open_fraction: float, name: str | None,
                     max_y: float) -> ObjectSpec:
        """A cabinet fixed to the table with a jointed ``kind`` (drawer, door) set ``open_fraction`` open."""
        if not 0.0 <= open_fraction <= 1.0:
            raise SceneError(f"open_fraction={open_fraction!r} is invalid; allowed: 0..1")
        sx, sy, sz = size
        if not (0.12 <= sx <= 0.24 and 0.12 <= sy <= max_y and 0.07 <= sz <= 0.16):
            raise SceneError(f"{kind} size {size!r} is invalid; allowed: x 0.12-0.24, y 0.12-{max_y:g}, z 0.07-0.16 m")
        obj = self._add(kind, color, (sx / 2, sy / 2, sz / 2), name, movable=False, mass=0.0)
        obj.joint_pos = open_fraction * joint_range(obj)
        return obj

    def place_in_air(self, obj: ObjectSpec, region: str = "table", z_range=(0.05, 0.25)) -> None:
        """Put a marker at a random reachable point above ``region``."""
        (x0, x1), (y0, y1) = REGIONS[region]
        obj.pos = np.array([self.rng.uniform(x0, x1), self.rng.uniform(y0, y1), self.rng.uniform(*z_range)])

    def distinct_colors(self, n: int, exclude: tuple[str, ...] = ()) -> list[str]:
        """``n`` different colour names, drawn with the scene's rng."""
        pool = [c for c in COLORS if c not in exclude]
        if n > len(pool):
            raise SceneError(f"asked for {n} distinct colours, only {len(pool)} available")
        return [pool[i] for i in self.rng.choice(len(pool), size=n, replace=False)]

    # -- placing things --------------------------------------------------------------------
    def place_randomly(self, objects: list[ObjectSpec], region: str = "table",
                       min_gap: float = 0.02, yaw_range: float | None = None,
                       max_tries: int = 2000) -> None:
        """Sample non-overlapping table-top poses for ``objects`` inside ``region``.

        Footprints are treated as circles so any yaw is collision free; ``min_gap`` (m) is the
        extra clearance between footprints (room for the fingers). ``yaw_range`` defaults to
        +-pi/4 for blocks (a cube's distinct orientations) and 0 for fixtures.
        """
        if region not in REGIONS:
            raise SceneError(f"unknown region {region!r}; known regions: {', '.join(REGIONS)}")
        (x0, x1), (y0, y1) = REGIONS[region]
        placed = [o for o in self.objects if o not in objects and o.pos.any()]
        for obj in objects:
            r = obj.footprint_radius
            for _ in range(max_tries):
                xy = np.array([self.rng.uniform(x0 + r, x1 - r) if x1 - x0 > 2 * r else (x0 + x1) / 2,
                               self.rng.uniform(y0 + r, y1 - r) if y1 - y0 > 2 * r else (y0 + y1) / 2])
                if all(np.linalg.norm(xy - o.pos[:2]) >= r + o.footprint_radius + min_gap for o in placed):
                    break
            else:
                raise SceneError(f"could not place {obj.name} in region {region!r} without overlap "
                                 f"after {max_tries} tries; use fewer/smaller objects or a larger region")
            yr = yaw_range if yaw_range is not None else (np.pi / 4 if obj.kind == "block" else 0.0)
            obj.yaw = float(self.rng.uniform(-yr, yr)) if yr > 0 else 0.0
            obj.pos = np.array([xy[0], xy[1], obj.half_size[2]])
            placed.append(obj)

    def place_on(self, obj: ObjectSpec, base: ObjectSpec) -> None:
        """Start ``obj`` resting on top of ``base`` (e.g. for unstacking tasks)."""
        obj.pos = np.array([base.pos[0], base.pos[1], base.pos[2] + base.half_size[2] + obj.half_size[2]])
        obj.yaw = base.yaw

    def signature(self) -> tuple:
        """What a backend must compile: kinds, names and sizes (colours and poses change in place)."""
        return tuple((o.name, o.kind, o.half_size, o.mass, o.hole_shape, o.hole) for o in self.objects)
