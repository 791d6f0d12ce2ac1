"""The robot and what an action means: the contract both backends implement and the oracle, the
policies and the export manifest read. One definition here, so a demonstration recorded on one
backend means the same on the other and on the real arm.

Robot: a Franka Panda with its base at the world origin (z up, x forward across the table), arm
joints ``ARM_JOINTS`` then the two finger joints, home posture from the ``home`` keyframe of
``assets/panda/panda.xml``. Control runs at ``CONTROL_HZ``; actions are normalized to [-1, 1].

``ee_delta_pose`` (7-D): [dx, dy, dz, rx, ry, rz, gripper]. The first six move a Cartesian target
of the tool centre point (TCP) in the robot base frame: ``POS_SCALE`` m and ``ROT_SCALE`` rad
(axis-angle) per unit action per control step. The target accumulates, is clipped to
``WORKSPACE`` and kept within ``MAX_LEAD`` of the real TCP; one damped least squares IK step
(damping ``IK_DAMPING``, null-space pull ``NULLSPACE_GAIN`` toward home) turns it into joint targets.
``joint_pos`` (8-D): 7 arm joint targets mapped linearly from [-1, 1] onto the joint limits
(:func:`joint_targets`), then the gripper. Gripper (both modes): +1 open (``GRIPPER_MAX`` m per
finger, 80 mm between the pads), -1 closed, linear in between (:func:`gripper_opening`).

The helpers below are plain arithmetic, so the same function serves numpy (MuJoCo) and torch
batches (ManiSkill).
"""
from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from functools import lru_cache
from pathlib import Path

import numpy as np

ASSETS = Path(os.environ.get("ROBOFORGE_ASSETS", Path(__file__).resolve().parents[2] / "assets"))
PANDA_XML = ASSETS / "panda" / "panda.xml"

ROBOT_NAME = "franka_panda"
ARM_JOINTS = tuple(f"joint{i}" for i in range(1, 8))
GRIPPER_JOINTS = ("finger_joint1", "finger_joint2")

CONTROL_HZ = 20      # policy/action rate
ACTION_DIMS = {"ee_delta_pose": 7, "joint_pos": 8}
CONTROL_MODES = tuple(ACTION_DIMS)

POS_SCALE = 0.02     # m per control step at |action| = 1 (0.4 m/s at 20 Hz)
ROT_SCALE = 0.1      # rad per control step at |action| = 1
MAX_LEAD = 0.06      # m: how far the Cartesian target may run ahead of the real TCP
WORKSPACE = np.array([[0.15, -0.45, 0.005], [0.8, 0.45, 0.6]])  # TCP target bounds, m
IK_DAMPING = 0.05
NULLSPACE_GAIN = 0.2
GRIPPER_MAX = 0.04   # m per finger (the gripper tendon is the mean finger opening)
GRIPPER_OPEN, GRIPPER_CLOSED = 1.0, -1.0
INIT_JOINT_NOISE = 0.02  # rad: per-episode perturbation of the home posture


def check_action_finite(action: np.ndarray, control_mode: str) -> None:
    """Raise ``ValueError`` when ``action`` (any shape, numpy) holds NaN or inf. Clipping would
    keep a NaN, and a simulator given one zeroes or ignores it: the arm drifts while every
    observation stays finite, so the bad action must stop at the door, as a wrong shape does."""
    bad = ~np.isfinite(action)
    if bad.any():
        where = [tuple(int(i) for i in ix) if len(ix) > 1 else int(ix[0]) for ix in np.argwhere(bad)[:5]]
        raise ValueError(f"action has {int(bad.sum())} non-finite value(s) (NaN/inf) at index {', '.join(map(str, where))}; "
                         f"{control_mode} expects finite values in [-1, 1]")


def gripper_opening(action):
    """Gripper action in [-1, 1] -> finger opening target (m per finger)."""
    return (action + 1.0) * 0.5 * GRIPPER_MAX


def joint_targets(action, low, high):
    """``joint_pos`` arm actions in [-1, 1] -> joint position targets (rad) within [low, high]."""
    return low + (action + 1.0) * 0.5 * (high - low)


def normalize_joints(q, low, high):
    """Inverse of :func:`joint_targets`: joint positions (rad) -> [-1, 1] over the limits."""
    return 2.0 * (q - low) / (high - low) - 1.0


@lru_cache(maxsize=1)
def _home() -> tuple[float, ...]:
    if not PANDA_XML.exists():
        raise FileNotFoundError(f"robot model not found at {PANDA_XML}; set ROBOFORGE_ASSETS to the "
                                f"folder holding panda/panda.xml")
    key = ET.parse(PANDA_XML).getroot().find("keyframe/key[@name='home']")
    return tuple(float(x) for x in key.get("qpos").split())


def home_qpos() -> np.ndarray:
    """Robot joint positions (7 arm + 2 fingers) of the ``home`` keyframe."""
    return np.array(_home())
