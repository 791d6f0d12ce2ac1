"""Quaternions (w, x, y, z) in numpy for the scene spec and the planners.

The formulas and the order of operations are MuJoCo's (``mju_mulQuat``, ``mju_quat2Vel``), so
these give the same bits as the MuJoCo backend's controller.
"""
from __future__ import annotations

import numpy as np


def yaw_quat(yaw) -> np.ndarray:
    """Rotation by ``yaw`` rad about +z; a scalar gives (4,), an array of yaws (..., 4)."""
    yaw = np.asarray(yaw, dtype=np.float64)
    return np.stack([np.cos(yaw / 2), np.zeros_like(yaw), np.zeros_like(yaw), np.sin(yaw / 2)], -1)


def quat_mul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Hamilton product ``a * b`` (apply ``b``, then ``a``)."""
    aw, ax, ay, az = a
    bw, bx, by, bz = b
    return np.array([aw * bw - ax * bx - ay * by - az * bz, aw * bx + ax * bw + ay * bz - az * by,
                     aw * by - ax * bz + ay * bw + az * bx, aw * bz + ax * by - ay * bx + az * bw])


def quat_error(target: np.ndarray, current: np.ndarray) -> np.ndarray:
    """Rotation vector (rad, world frame) that takes ``current`` to ``target`` (the short way)."""
    dq = quat_mul(target, np.array([current[0], -current[1], -current[2], -current[3]]))
    if dq[0] < 0:
        dq = -dq
    x, y, z = dq[1:]
    sin_half = np.sqrt(x * x + y * y + z * z)
    axis = np.array([1.0, 0.0, 0.0]) if sin_half < 1e-15 else dq[1:] * (1 / sin_half)
    angle = 2 * np.arctan2(sin_half, dq[0])
    if angle > np.pi:
        angle -= 2 * np.pi
    return axis * angle
