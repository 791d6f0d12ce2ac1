"""Socket fixtures: a block of height ``depth`` with a square, oblong or round hole through it,
standing on the table so the hole's floor is the table top. Both backends build a socket from the
same list of boxes (:func:`socket_boxes`), so the hole has the same size and clearance on each."""
from __future__ import annotations

import numpy as np

HOLE_SHAPES = ("square", "round")   # "square" takes one width or (x, y) widths (an oblong slot)
ROUND_SEGMENTS = 16                 # wall boxes around a round hole; their inner faces touch the circle


def socket_boxes(obj) -> list[tuple[np.ndarray, np.ndarray, float]]:
    """(centre (3,), half extents (3,), yaw about +z) of each wall box, in the socket's frame (m, rad).

    A square/oblong hole of half extents ``obj.hole`` is framed by four boxes filling the socket's
    outer footprint ``obj.half_size``; a round hole of radius ``obj.hole[0]`` by ``ROUND_SEGMENTS``
    boxes whose inner faces are tangent to that circle.
    """
    (ox, oy, hz), (wx, wy) = obj.half_size, obj.hole
    if obj.hole_shape == "square":
        return [(np.array([sx * (wx + ox) / 2, 0.0, 0.0]), np.array([(ox - wx) / 2, oy, hz]), 0.0)
                for sx in (-1, 1)] + \
               [(np.array([0.0, sy * (wy + oy) / 2, 0.0]), np.array([wx, (oy - wy) / 2, hz]), 0.0)
                for sy in (-1, 1)]
    thick = ox - wx
    half_len = (wx + thick) * np.tan(np.pi / ROUND_SEGMENTS) * 1.05  # slight overlap: no gaps at the joints
    out = []
    for i in range(ROUND_SEGMENTS):
        a = 2 * np.pi * i / ROUND_SEGMENTS
        r = wx + thick / 2
        out.append((np.array([r * np.cos(a), r * np.sin(a), 0.0]), np.array([thick / 2, half_len, hz]), a))
    return out
