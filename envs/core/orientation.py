"""Yaw about +z for goals that care how an object is turned: reading it from a quaternion, each
kind's symmetry (the turn after which it looks the same), and the error between two yaws modulo
that symmetry. Angles in radians."""
from __future__ import annotations

import numpy as np

# What "turned" means per kind: a cuboid (block, zone, square socket) repeats every quarter turn
# when its footprint is square and every half turn when it is oblong. A cylinder, bowl, marker or
# round socket has no yaw at all, so a goal yaw on one is an error rather than a silent no-op.
YAW_KINDS = ("block", "zone", "socket (square or oblong hole)")
SQUARE_TOL = 1e-4  # m: footprints whose sides differ by less than this count as square


def yaw_of(quat) -> float:
    """Heading (rad, in (-pi, pi]) of a wxyz quaternion: the rotation of its x axis about +z."""
    w, x, y, z = quat
    return float(np.arctan2(2 * (w * z + x * y), 1 - 2 * (y * y + z * z)))


def tilt_of(quat) -> float:
    """Angle (rad) between a wxyz quaternion's z axis and world +z (0 = upright)."""
    w, x, y, z = quat
    return float(np.arccos(np.clip(1 - 2 * (x * x + y * y), -1.0, 1.0)))


def has_yaw(obj) -> bool:
    """Whether ``obj``'s kind has a defined yaw symmetry (see :func:`yaw_period`)."""
    return obj.kind in ("block", "zone") or (obj.kind == "socket" and obj.hole_shape == "square")


def yaw_period(obj) -> float:
    """The turn (rad) after which ``obj`` looks the same: pi/2 for a square footprint (a cube), pi
    for an oblong one. Raises ``ValueError`` naming the kinds that have a yaw otherwise."""
    if not has_yaw(obj):
        what = f"a {obj.kind} with a round hole" if obj.kind == "socket" else f"a {obj.kind}"
        raise ValueError(f"a goal yaw on {obj.name!r} ({what}) is undefined: it looks the same at every yaw; "
                         f"kinds that support one: {', '.join(YAW_KINDS)}")
    hx, hy = (obj.hole if obj.kind == "socket" else obj.half_size[:2])
    return np.pi / 2 if abs(hx - hy) < SQUARE_TOL else np.pi


def yaw_error(yaw: float, target: float, period: float) -> float:
    """Signed turn (rad) from ``yaw`` to the nearest yaw equivalent to ``target`` modulo
    ``period``, in [-period/2, period/2)."""
    return float((target - yaw + period / 2) % period - period / 2)
