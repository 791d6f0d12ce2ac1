"""The MuJoCo arm controller: normalized actions in [-1, 1] -> joint position targets for the
Panda's PD servos, as :mod:`envs.core.robot` defines them (``ee_delta_pose`` through an
accumulated Cartesian target and damped least squares IK each step, ``joint_pos`` mapped onto the
joint limits, the gripper opening linear in its action).
"""
from __future__ import annotations

import mujoco
import numpy as np

from envs.core.robot import (ACTION_DIMS, IK_DAMPING, MAX_LEAD, NULLSPACE_GAIN, POS_SCALE, ROT_SCALE, WORKSPACE,
                             gripper_opening, joint_targets, normalize_joints)


# MuJoCo's own quaternion routines (C) in the per-step path; envs.core.rotations has their numpy twins
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
        return ACTION_DIMS[self.mode]

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
        d.ctrl[7] = gripper_opening(action[-1])
        if self.mode == "joint_pos":
            d.ctrl[:7] = joint_targets(action[:7], self.low, self.high)
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
        return normalize_joints(q, self.low, self.high)
