"""The observation contract: the layouts of the flat ``state`` and ``slots`` vectors and one set of
spaces, which both backends build through the functions here (so they cannot drift apart).

``state`` (float32), in this order (:func:`state_layout` names the slices):
arm qpos (7, rad), arm qvel (7, rad/s), gripper width (1, m), TCP position (3, m, base frame),
TCP quaternion (4, wxyz, w >= 0); then per movable object in the task's build order: position
(3), quaternion (4), position minus TCP (3); then per fixture (zones, bowls, markers): position
(3); then per goal: the goal's target minus the position of what it moves (3; the TCP for reach
goals), like ManiSkill's obj_to_goal_pos.
Other modes add camera images (``front_rgb`` / ``wrist_rgb`` (H, W, 3) uint8, ``*_depth``
(H, W, 1) float32 m) or a ``pointcloud`` (N, 6) float32: xyz (world) + rgb in [0, 1].

``slots`` (float32, the same size for every task; :func:`slots_layout` names the slices): the
same robot part as ``state``, then ``MAX_OBJECTS`` object slots of ``SLOT_DIM`` features each
(:data:`SLOT_FIELDS`), slot k holding the scene's k-th object in build order and empty slots all
zero (``present`` = 0). :func:`split_slots` gives the (agent, objects (MAX_OBJECTS, SLOT_DIM))
view. docs/observations.md explains the choices.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
from gymnasium import spaces

from envs.core.scene import COLORS, OBJECT_KINDS

OBS_MODES = ("state", "slots", "rgb", "rgbd", "pointcloud")
IMAGE_OBS_MODES = ("rgb", "rgbd", "pointcloud")
CAMERAS = ("front", "wrist")
# the fixed front camera, world frame: eye (m), the point it looks at (m), vertical field of view
# (degrees); the wrist camera rides on the hand (assets/panda/panda.xml, mirrored on ManiSkill)
FRONT_CAMERA = ((1.05, 0.42, 0.5), (0.48, 0.0, 0.06), 45.0)
POINTCLOUD_POINTS = 1024


def front_camera_pixels(points, image_size: int) -> np.ndarray:
    """World points (..., 3) -> where the front camera (:data:`FRONT_CAMERA`, the same on both
    backends) sees them in its ``image_size`` image: (..., 2) (column, row) pixels from the top-left
    corner, continuous (pixel k spans [k, k + 1)); NaN behind the camera. The camera frame is
    MuJoCo's (x right, y up, looking along -z; ``lookat_xyaxes``), the inverse of
    ``MuJoCoEnv._unproject``. Grounding losses use it to find a named object in the image."""
    eye, target, fovy = (np.asarray(v, np.float64) for v in FRONT_CAMERA)
    z = (eye - target) / np.linalg.norm(eye - target)
    x = np.cross((0.0, 0.0, 1.0), z)
    x /= np.linalg.norm(x)
    y = np.cross(z, x)
    local = (np.asarray(points, np.float64) - eye) @ np.stack([x, y, z]).T          # (..., 3) camera frame
    depth = -local[..., 2]
    f = 0.5 * image_size / np.tan(np.deg2rad(fovy) / 2)
    with np.errstate(divide="ignore", invalid="ignore"):
        pixels = np.stack([image_size / 2 + f * local[..., 0] / depth, image_size / 2 - f * local[..., 1] / depth], -1)
    return np.where((depth > 0)[..., None], pixels, np.nan)

PROPRIO_FIELDS = (("qpos", 7), ("qvel", 7), ("gripper_width", 1), ("tcp_pos", 3), ("tcp_quat", 4))
OBJECT_FIELDS = (("pos", 3), ("quat", 4), ("rel_pos", 3))
FIXTURE_FIELDS = (("pos", 3),)
GOAL_FIELDS = (("delta", 3),)

# -- the task-independent ``slots`` observation -------------------------------------------------
MAX_OBJECTS = 8  # object slots; a task with more objects is refused at build in obs_mode="slots"
SLOT_KINDS = tuple(sorted(OBJECT_KINDS))  # order of the one-hot ``kind`` feature
# Per slot, in this order. present: 1 for an object, 0 for an empty slot (whose features are all
# 0); pos (m, world), quat (wxyz, w >= 0), rel_pos (pos minus TCP, m); size: full extents (m) of
# the bounding box; kind: one-hot over SLOT_KINDS; rgb: the named colour in [0, 1]; movable: 1 for
# objects, 0 for fixtures; has_goal: 1 if a goal moves this object (the marker of a reach goal
# counts); goal_delta: that goal's target minus what it moves (the TCP for reach goals), as the
# state vector's goal_k.delta, 0 without a goal. With several goals on one object, the first one.
SLOT_FIELDS = (("present", 1), ("pos", 3), ("quat", 4), ("rel_pos", 3), ("size", 3), ("kind", len(SLOT_KINDS)),
               ("rgb", 3), ("movable", 1), ("has_goal", 1), ("goal_delta", 3))
# what an episode fixes about an object (size .. movable): slot_attributes builds them once
ATTRIBUTE_FIELDS = ("size", "kind", "rgb", "movable")


def _field_slices(fields) -> dict[str, slice]:
    out, i = {}, 0
    for key, n in fields:
        out[key], i = slice(i, i + n), i + n
    return out


SLOT_FIELD_SLICES = _field_slices(SLOT_FIELDS)  # within one slot's SLOT_DIM features
SLOT_DIM = sum(n for _, n in SLOT_FIELDS)
ATTRIBUTE_DIM = sum(n for key, n in SLOT_FIELDS if key in ATTRIBUTE_FIELDS)
AGENT_DIM = sum(n for _, n in PROPRIO_FIELDS)
SLOTS_DIM = AGENT_DIM + MAX_OBJECTS * SLOT_DIM


class SlotCapacityError(ValueError):
    """A scene has more objects than the ``slots`` observation has slots."""


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


def slots_layout() -> dict[str, slice]:
    """Names of the slices of the ``slots`` vector, the same for every task: the proprioception
    fields (as in :func:`state_layout`), then ``slot_{k}.{field}`` for k < ``MAX_OBJECTS`` and
    each of :data:`SLOT_FIELDS`."""
    fields = list(PROPRIO_FIELDS) + [(f"slot_{k}.{key}", n) for k in range(MAX_OBJECTS) for key, n in SLOT_FIELDS]
    return _field_slices(fields)


def slots_goal_mask() -> np.ndarray:
    """(SLOTS_DIM,) float 1/0: 0 on every slot's ``has_goal`` and ``goal_delta``. A reader that
    multiplies by it sees the scene but not the task, which must then come from elsewhere (the
    instruction for a policy; nothing for a goal-agnostic representation such as HILP's phi)."""
    mask = np.ones(SLOTS_DIM, dtype=np.float32)
    for key, sl in slots_layout().items():
        if key.endswith((".has_goal", ".goal_delta")):
            mask[sl] = 0.0
    return mask


def split_slots(obs):
    """(agent (..., AGENT_DIM), objects (..., MAX_OBJECTS, SLOT_DIM)) views of ``slots``
    observations (numpy or torch, any leading dimensions); the empty-slot mask is
    ``objects[..., 0]`` (the ``present`` field)."""
    return obs[..., :AGENT_DIM], obs[..., AGENT_DIM:].reshape(*obs.shape[:-1], MAX_OBJECTS, SLOT_DIM)


def slot_attributes(objects: Sequence, task: str) -> np.ndarray:
    """(M, size + kind + rgb + movable) float64: what the episode fixes about each of a scene's
    ``objects`` (:class:`~envs.core.scene.ObjectSpec`, in build order). Raises
    :class:`SlotCapacityError` naming ``task`` when M exceeds ``MAX_OBJECTS``."""
    if len(objects) > MAX_OBJECTS:
        raise SlotCapacityError(
            f"task {task!r} builds {len(objects)} objects; obs_mode='slots' holds at most MAX_OBJECTS="
            f"{MAX_OBJECTS} (envs.core.observation); use obs_mode='state' or a scene with fewer objects")
    rows = []
    for o in objects:
        kind = np.zeros(len(SLOT_KINDS))
        kind[SLOT_KINDS.index(o.kind)] = 1.0
        rows.append(np.concatenate([2.0 * np.asarray(o.half_size), kind, COLORS[o.color][:3], [float(o.movable)]]))
    return np.array(rows, dtype=np.float64).reshape(len(objects), -1)


def state_observation(qpos, qvel, gripper_width, tcp_pos, tcp_quat, objects: Sequence[tuple], fixtures: Sequence,
                      goal_deltas: Sequence):
    """The ``state`` vector in :func:`state_layout` order. Every argument has its features on the
    last axis: numpy (k,) for one environment or torch (N, k) for a batch; the result is float32
    of the same kind. ``objects`` holds (position, quaternion) of each movable object, ``fixtures``
    each fixture's position, ``goal_deltas`` each goal's target minus what it moves."""
    where, concat = _array_ops(qpos)
    parts = _proprio(where, qpos, qvel, gripper_width, tcp_pos, tcp_quat)
    for pos, quat in objects:
        parts += [pos, quat, pos - tcp_pos]
    parts += list(fixtures)
    parts += list(goal_deltas)
    return concat(parts)


def slots_observation(qpos, qvel, gripper_width, tcp_pos, tcp_quat, pos, quat, attributes, goal_objects,
                      goal_deltas):
    """The ``slots`` vector in :func:`slots_layout` order, numpy (one environment) or torch
    (a leading batch dimension N). Robot arguments as for :func:`state_observation`; ``pos``
    (..., M, 3) and ``quat`` (..., M, 4) are every scene object's pose in build order,
    ``attributes`` (..., M, A) their :func:`slot_attributes`, ``goal_objects`` (..., G) integer the
    object each goal moves (an index into the M), ``goal_deltas`` (..., G, 3) each goal's target
    minus what it moves (as passed to :func:`state_observation`)."""
    where, concat = _array_ops(qpos)
    m, lead = pos.shape[-2], tuple(pos.shape[:-2])
    if m > MAX_OBJECTS:
        raise SlotCapacityError(f"{m} objects do not fit in MAX_OBJECTS={MAX_OBJECTS} slots")
    if isinstance(pos, np.ndarray):
        zeros, index = (lambda *shape: np.zeros(shape)), np.arange(m)
    else:  # torch: one dtype and device for torch.cat (attributes arrive as float64 from numpy)
        import torch

        pos, quat, attributes, goal_deltas, tcp_pos = (
            t.to(device=qpos.device, dtype=torch.float32) for t in (pos, quat, attributes, goal_deltas, tcp_pos))
        zeros = lambda *shape: torch.zeros(shape, device=qpos.device)  # noqa: E731
        index = torch.arange(m, device=qpos.device)
    has_goal, delta = zeros(*lead, m, 1), zeros(*lead, m, 3)
    for k in reversed(range(goal_objects.shape[-1])):  # the first goal on an object writes last: it wins
        hit = (goal_objects[..., k, None] == index)[..., None]                       # (..., M, 1)
        delta = where(hit, goal_deltas[..., k, None, :], delta)
        has_goal = where(hit, 1.0, has_goal)
    slots = concat([zeros(*lead, m, 1) + 1.0, pos, where(quat[..., :1] < 0, -quat, quat),
                    pos - tcp_pos[..., None, :], attributes, has_goal, delta])       # (..., M, SLOT_DIM)
    agent = concat(_proprio(where, qpos, qvel, gripper_width, tcp_pos, tcp_quat))
    return concat([agent, slots.reshape(*lead, m * SLOT_DIM), zeros(*lead, (MAX_OBJECTS - m) * SLOT_DIM)])


def _proprio(where, qpos, qvel, gripper_width, tcp_pos, tcp_quat) -> list:
    """The robot part shared by ``state`` and ``slots`` (TCP quaternion with w >= 0)."""
    return [qpos, qvel, gripper_width, tcp_pos, where(tcp_quat[..., :1] < 0, -tcp_quat, tcp_quat)]


def _array_ops(x):
    """(where, concatenate-to-float32) for numpy arrays or torch tensors, without importing torch
    for numpy callers."""
    if isinstance(x, np.ndarray):
        return np.where, lambda parts: np.concatenate(parts, axis=-1).astype(np.float32)
    import torch

    return torch.where, lambda parts: torch.cat(parts, -1).to(torch.float32)


def observation_space(obs_mode: str, n_state: int, image_size: int) -> spaces.Space:
    """One environment's observation space: the ``state`` Box alone, the ``slots`` Box (the same
    for every task), or a Dict adding the cameras' images (``image_size`` square) or the point
    cloud to ``state``."""
    if obs_mode == "slots":
        return spaces.Box(-np.inf, np.inf, (SLOTS_DIM,), np.float32)
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
