"""The observation contract: one layout of the flat ``state`` vector and one set of spaces, which
both backends build through the functions here (so they cannot drift apart).

``state`` (float32), in this order (:func:`state_layout` names the slices):
arm qpos (7, rad), arm qvel (7, rad/s), gripper width (1, m), TCP position (3, m, base frame),
TCP quaternion (4, wxyz, w >= 0); then per movable object in the task's build order: position
(3), quaternion (4), position minus TCP (3); then per fixture (zones, bowls, markers): position
(3); then per goal: the goal's target minus the position of what it moves (3; the TCP for reach
goals), like ManiSkill's obj_to_goal_pos.
Other modes add camera images (``front_rgb`` / ``wrist_rgb`` (H, W, 3) uint8, ``*_depth``
(H, W, 1) float32 m) or a ``pointcloud`` (N, 6) float32: xyz (world) + rgb in [0, 1].
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
from gymnasium import spaces

OBS_MODES = ("state", "rgb", "rgbd", "pointcloud")
IMAGE_OBS_MODES = ("rgb", "rgbd", "pointcloud")
CAMERAS = ("front", "wrist")
# the fixed front camera, world frame: eye (m), the point it looks at (m), vertical field of view
# (degrees); the wrist camera rides on the hand (assets/panda/panda.xml, mirrored on ManiSkill)
FRONT_CAMERA = ((1.05, 0.42, 0.5), (0.48, 0.0, 0.06), 45.0)
POINTCLOUD_POINTS = 1024

PROPRIO_FIELDS = (("qpos", 7), ("qvel", 7), ("gripper_width", 1), ("tcp_pos", 3), ("tcp_quat", 4))
OBJECT_FIELDS = (("pos", 3), ("quat", 4), ("rel_pos", 3))
FIXTURE_FIELDS = (("pos", 3),)
GOAL_FIELDS = (("delta", 3),)


def state_layout(movable: Sequence[str], fixtures: Sequence[str], n_goals: int) -> dict[str, slice]:
    """Names of the slices of the ``state`` vector for a scene with these movable objects and
    fixtures (names, in build order) and ``n_goals`` goals."""
    groups = [("", PROPRIO_FIELDS)] + [(f"{n}.", OBJECT_FIELDS) for n in movable]
    groups += [(f"{n}.", FIXTURE_FIELDS) for n in fixtures] + [(f"goal_{k}.", GOAL_FIELDS) for k in range(n_goals)]
    layout, i = {}, 0
    for prefix, fields in groups:
        for key, n in fields:
            layout[prefix + key], i = slice(i, i + n), i + n
    return layout


def state_dim(layout: dict[str, slice]) -> int:
    return sum(sl.stop - sl.start for sl in layout.values())


def state_observation(qpos, qvel, gripper_width, tcp_pos, tcp_quat, objects: Sequence[tuple], fixtures: Sequence,
                      goal_deltas: Sequence):
    """The ``state`` vector in :func:`state_layout` order. Every argument has its features on the
    last axis: numpy (k,) for one environment or torch (N, k) for a batch; the result is float32
    of the same kind. ``objects`` holds (position, quaternion) of each movable object, ``fixtures``
    each fixture's position, ``goal_deltas`` each goal's target minus what it moves."""
    where, concat = _array_ops(qpos)
    parts = [qpos, qvel, gripper_width, tcp_pos, where(tcp_quat[..., :1] < 0, -tcp_quat, tcp_quat)]
    for pos, quat in objects:
        parts += [pos, quat, pos - tcp_pos]
    parts += list(fixtures)
    parts += list(goal_deltas)
    return concat(parts)


def _array_ops(x):
    """(where, concatenate-to-float32) for numpy arrays or torch tensors, without importing torch
    for numpy callers."""
    if isinstance(x, np.ndarray):
        return np.where, lambda parts: np.concatenate(parts, axis=-1).astype(np.float32)
    import torch

    return torch.where, lambda parts: torch.cat(parts, -1).to(torch.float32)


def observation_space(obs_mode: str, n_state: int, image_size: int) -> spaces.Space:
    """One environment's observation space: the ``state`` Box alone, or a Dict adding the cameras'
    images (``image_size`` square) or the point cloud."""
    state = spaces.Box(-np.inf, np.inf, (n_state,), np.float32)
    if obs_mode == "state":
        return state
    s, d = image_size, {"state": state}
    if obs_mode in ("rgb", "rgbd"):
        for cam in CAMERAS:
            d[f"{cam}_rgb"] = spaces.Box(0, 255, (s, s, 3), np.uint8)
            if obs_mode == "rgbd":
                d[f"{cam}_depth"] = spaces.Box(0.0, np.inf, (s, s, 1), np.float32)
    else:
        d["pointcloud"] = spaces.Box(-np.inf, np.inf, (POINTCLOUD_POINTS, 6), np.float32)
    return spaces.Dict(d)
