"""Arm controllers: normalized actions in [-1, 1] -> joint position targets for the PD servos.

``ee_delta_pose`` (7-D): [dx, dy, dz, rx, ry, rz, gripper]. The first six move a Cartesian
target of the tool centre point (TCP) in the robot base frame (= world frame here): translation
``POS_SCALE`` m and rotation ``ROT_SCALE`` rad (axis-angle, base frame) per unit action per control
step. The target accumulates (like ManiSkill's ``use_target``), so the commanded trajectory is
exact even while the arm lags; it is kept within ``MAX_LEAD`` of the real TCP. Damped least
squares IK turns it into joint targets each step.
``joint_pos`` (8-D): 7 arm joint targets mapped linearly from [-1, 1] onto the joint limits, then
the gripper. Gripper (both modes): +1 open (80 mm), -1 closed, linear in between.
"""
from __future__ import annotations

import mujoco
import numpy as np

POS_SCALE = 0.02     # m per control step at |action| = 1 (0.4 m/s at 20 Hz)
ROT_SCALE = 0.1      # rad per control step at |action| = 1
MAX_LEAD = 0.06      # m: how far the Cartesian target may run ahead of the real TCP
WORKSPACE = np.array([[0.15, -0.45, 0.005], [0.8, 0.45, 0.6]])  # TCP target bounds, m
IK_DAMPING = 0.05
NULLSPACE_GAIN = 0.2
GRIPPER_MAX = 0.04   # m per finger (tendon = mean finger opening)


def quat_mul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    out = np.empty(4)
    mujoco.mju_mulQuat(out, a, b)
    return out


def axis_angle_quat(v: np.ndarray) -> np.ndarray:
    out = np.empty(4)
    mujoco.mju_axisAngle2Quat(out, v / (np.linalg.norm(v) + 1e-12), np.linalg.norm(v))
    return out


def quat_error(target: np.ndarray, current: np.ndarray) -> np.ndarray:
    """Rotation vector (rad, world frame) that takes ``current`` to ``target``."""
    neg, dq, vel = np.empty(4), np.empty(4), np.empty(3)
    mujoco.mju_negQuat(neg, current)
    mujoco.mju_mulQuat(dq, target, neg)
    if dq[0] < 0:
        dq = -dq
    mujoco.mju_quat2Vel(vel, dq, 1.0)
    return vel


class ArmController:
    """Turns actions into ``data.ctrl`` for the Panda (7 arm actuators + 1 gripper)."""

    def __init__(self, model: mujoco.MjModel, data: mujoco.MjData, mode: str, home: np.ndarray):
        self.model, self.data, self.mode = model, data, mode
        self.tcp = model.site("tcp").id
        self.arm_qpos = np.arange(7)  # the robot is the first thing in the model
        self.low = model.jnt_range[:7, 0].copy()
        self.high = model.jnt_range[:7, 1].copy()
        self.home = home[:7].copy()
        self.jacp = np.zeros((3, model.nv))
        self.jacr = np.zeros((3, model.nv))
        self.target_pos = np.zeros(3)
        self.target_quat = np.array([1.0, 0, 0, 0])
        self._damp = IK_DAMPING**2 * np.eye(6)
        self._eye7 = np.eye(7)

    @property
    def action_dim(self) -> int:
        return 7 if self.mode == "ee_delta_pose" else 8

    def reset(self) -> None:
        """Anchor the Cartesian target at the current TCP pose and hold the current joints."""
        self.target_pos[:] = self.data.site_xpos[self.tcp]
        mujoco.mju_mat2Quat(self.target_quat, self.data.site_xmat[self.tcp])
        self.data.ctrl[:7] = self.data.qpos[:7]
        self.data.ctrl[7] = self.data.qpos[7]

    def tcp_quat(self) -> np.ndarray:
        q = np.empty(4)
        mujoco.mju_mat2Quat(q, self.data.site_xmat[self.tcp])
        return q

    def apply(self, action: np.ndarray) -> None:
        d = self.data
        d.ctrl[7] = (action[-1] + 1.0) * 0.5 * GRIPPER_MAX
        if self.mode == "joint_pos":
            d.ctrl[:7] = self.low + (action[:7] + 1.0) * 0.5 * (self.high - self.low)
            return
        tcp_pos = d.site_xpos[self.tcp]
        tp = np.clip(self.target_pos + action[:3] * POS_SCALE, WORKSPACE[0], WORKSPACE[1])
        lead = tp - tcp_pos
        dist = np.linalg.norm(lead)
        if dist > MAX_LEAD:  # blocked by contact: don't wind up an unreachable target
            tp = tcp_pos + lead * (MAX_LEAD / dist)
        self.target_pos[:] = tp
        rot = action[3:6] * ROT_SCALE
        if np.any(rot):
            self.target_quat[:] = quat_mul(axis_angle_quat(rot), self.target_quat)
        d.ctrl[:7] = self.ik(self.target_pos, self.target_quat)

    def ik(self, pos: np.ndarray, quat: np.ndarray) -> np.ndarray:
        """One damped-least-squares step from the current joints toward a TCP pose, with a
        null-space pull toward the home posture (keeps the elbow from drifting)."""
        m, d = self.model, self.data
        mujoco.mj_jacSite(m, d, self.jacp, self.jacr, self.tcp)
        J = np.vstack([self.jacp[:, :7], self.jacr[:, :7]])
        err = np.concatenate([pos - d.site_xpos[self.tcp], quat_error(quat, self.tcp_quat())])
        J_pinv = np.linalg.solve(J @ J.T + self._damp, J).T  # (J J^T + l^2 I) is symmetric
        q = d.qpos[:7]
        dq = J_pinv @ err + (self._eye7 - J_pinv @ J) @ (NULLSPACE_GAIN * (self.home - q))
        return np.clip(q + dq, self.low, self.high)

    def solve_ik(self, pos: np.ndarray, quat: np.ndarray, iters: int = 50) -> np.ndarray:
        """Joint positions reaching a TCP pose, iterating kinematics on a scratch copy (the live
        simulation is untouched). Used by oracles that command ``joint_pos``."""
        scratch = mujoco.MjData(self.model)
        scratch.qpos[:] = self.data.qpos
        saved = self.data
        self.data = scratch
        try:
            for _ in range(iters):
                mujoco.mj_kinematics(self.model, scratch)
                mujoco.mj_comPos(self.model, scratch)
                scratch.qpos[:7] = self.ik(pos, quat)
            return scratch.qpos[:7].copy()
        finally:
            self.data = saved

    def normalize_joints(self, q: np.ndarray) -> np.ndarray:
        return 2.0 * (q - self.low) / (self.high - self.low) - 1.0
