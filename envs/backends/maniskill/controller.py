"""roboforge action semantics on ManiSkill's Panda, batched over parallel environments in torch.

The contract of :mod:`envs.core.robot`, which the MuJoCo backend implements too (constants and
mappings come from there, so the two can't drift): ``ee_delta_pose`` (7-D) moves an *accumulated*
Cartesian TCP target by ``POS_SCALE`` m / ``ROT_SCALE`` rad (axis-angle, base frame) per unit action and step,
clipped to ``WORKSPACE`` and kept within ``MAX_LEAD`` of the real TCP; one damped-least-squares IK
step with a null-space pull toward the home posture turns it into joint targets. ``joint_pos``
(8-D) maps [-1, 1] linearly onto the joint limits. Gripper: +1 open (40 mm per finger), -1 closed.

The joint targets drive ManiSkill's own ``pd_joint_pos`` controller of the ``panda`` agent (its
arm takes absolute joint positions; its gripper takes [-1, 1] over [-0.01, 0.04] m per finger,
which ``gripper_command`` maps onto). ManiSkill's ``pd_ee_delta_pose`` is not used: it is not
accumulated, scales 0.1 m per unit, composes Euler-XYZ deltas and solves IK differently on CPU
(full solve) and GPU (one step), so one dataset would not mean the same on both backends.
"""
from __future__ import annotations

import numpy as np
import torch

from envs.backends.maniskill.kinematics import SerialChain, axis_angle_quat, matrix_quat, quat_error, quat_mul
from envs.core.robot import (ACTION_DIMS, IK_DAMPING, MAX_LEAD, NULLSPACE_GAIN, POS_SCALE, ROT_SCALE, WORKSPACE,
                             gripper_opening, joint_targets, normalize_joints)

MS_GRIPPER_RANGE = (-0.01, 0.04)  # m per finger: ManiSkill panda's normalized gripper command range


class ArmController:
    """Batched action -> ``pd_joint_pos`` command for ``num_envs`` Pandas."""

    def __init__(self, mode: str, chain: SerialChain, low, high, home, num_envs: int, device):
        self.mode, self.chain, self.num_envs = mode, chain, num_envs
        self.device = torch.device(device)
        t = lambda a: torch.as_tensor(np.asarray(a), device=self.device, dtype=torch.float32)  # noqa: E731
        self.low, self.high, self.home = t(low), t(high), t(home)
        self.workspace = t(WORKSPACE)
        self.target_pos = torch.zeros(num_envs, 3, device=self.device)
        self.target_quat = torch.zeros(num_envs, 4, device=self.device)
        self.target_quat[:, 0] = 1.0
        self._damp = IK_DAMPING**2 * torch.eye(6, device=self.device)
        self._eye7 = torch.eye(7, device=self.device)

    @property
    def action_dim(self) -> int:
        return ACTION_DIMS[self.mode]

    def tcp_pose(self, q: torch.Tensor):
        pos, rot = self.chain.fk(q[:, :7])
        return pos, matrix_quat(rot)

    def reset(self, env_idx: torch.Tensor, q: torch.Tensor) -> None:
        """Anchor the Cartesian targets of ``env_idx`` at their current TCP poses."""
        pos, quat = self.tcp_pose(q[env_idx])
        self.target_pos[env_idx] = pos
        self.target_quat[env_idx] = quat

    def gripper_command(self, a: torch.Tensor) -> torch.Tensor:
        """roboforge gripper action (+1 open .. -1 closed over 0..40 mm per finger) -> ManiSkill's."""
        width = gripper_opening(a)
        lo, hi = MS_GRIPPER_RANGE
        return 2.0 * (width - lo) / (hi - lo) - 1.0

    def command(self, action: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
        """Actions (N, action_dim) in [-1, 1] and joint positions (N, 9) -> ``pd_joint_pos``
        actions (N, 8): arm joint targets (rad) and the gripper command."""
        action = action.clamp(-1.0, 1.0)
        grip = self.gripper_command(action[:, -1:])
        if self.mode == "joint_pos":
            arm = joint_targets(action[:, :7], self.low, self.high)
            return torch.cat([arm, grip], 1)
        tcp_pos, tcp_rot, J = self.chain.fk(q[:, :7], with_jacobian=True)
        tp = torch.minimum(torch.maximum(self.target_pos + action[:, :3] * POS_SCALE, self.workspace[0]), self.workspace[1])
        lead = tp - tcp_pos
        dist = torch.linalg.norm(lead, dim=-1, keepdim=True)
        # blocked by contact: don't wind up an unreachable target
        self.target_pos = torch.where(dist > MAX_LEAD, tcp_pos + lead * (MAX_LEAD / dist.clamp_min(1e-9)), tp)
        self.target_quat = quat_mul(axis_angle_quat(action[:, 3:6] * ROT_SCALE), self.target_quat)
        arm = self._ik_step(q[:, :7], self.target_pos, self.target_quat, tcp_pos, matrix_quat(tcp_rot), J)
        return torch.cat([arm, grip], 1)

    def _ik_step(self, q, pos, quat, tcp_pos, tcp_quat, J):
        """One damped-least-squares step toward a TCP pose with a null-space pull toward home."""
        err = torch.cat([pos - tcp_pos, quat_error(quat, tcp_quat)], -1).unsqueeze(-1)
        JT = J.transpose(1, 2)
        J_pinv = torch.linalg.solve(J @ JT + self._damp, J).transpose(1, 2)          # (N, 7, 6)
        null = (self._eye7 - J_pinv @ J) @ (NULLSPACE_GAIN * (self.home - q)).unsqueeze(-1)
        dq = (J_pinv @ err + null).squeeze(-1)
        return torch.minimum(torch.maximum(q + dq, self.low), self.high)

    def solve_ik(self, pos, quat, q0, iters: int = 50, tol: float = 1e-3) -> torch.Tensor:
        """Joint positions (N, 7) reaching TCP poses, iterating kinematics only (the simulation is
        untouched). Used by oracles that command ``joint_pos``."""
        q = q0[:, :7].clone()
        for _ in range(iters):
            tcp_pos, tcp_rot, J = self.chain.fk(q, with_jacobian=True)
            q_new = self._ik_step(q, pos, quat, tcp_pos, matrix_quat(tcp_rot), J)
            done = (q_new - q).abs().max() < tol
            q = q_new
            if done:
                break
        return q

    def normalize_joints(self, q: torch.Tensor) -> torch.Tensor:
        return normalize_joints(q, self.low, self.high)


class SingleArmView:
    """The controller of environment 0 as numpy, the surface oracles use on every backend:
    ``target_pos`` (3,), ``target_quat`` (4,) wxyz, ``solve_ik(pos, quat)``, ``normalize_joints(q)``."""

    def __init__(self, env):
        self._env = env

    @property
    def _ctrl(self) -> ArmController:
        return self._env.arm

    @property
    def mode(self) -> str:
        return self._ctrl.mode

    @property
    def action_dim(self) -> int:
        return self._ctrl.action_dim

    @property
    def target_pos(self) -> np.ndarray:
        return self._ctrl.target_pos[0].cpu().numpy().astype(np.float64)

    @property
    def target_quat(self) -> np.ndarray:
        return self._ctrl.target_quat[0].cpu().numpy().astype(np.float64)

    def solve_ik(self, pos, quat, iters: int = 50) -> np.ndarray:
        c = self._ctrl
        t = lambda a: torch.as_tensor(np.asarray(a), device=c.device, dtype=torch.float32)[None]  # noqa: E731
        q0 = self._env.agent.robot.get_qpos()[:1]
        return c.solve_ik(t(pos), t(quat), q0, iters)[0].cpu().numpy().astype(np.float64)

    def normalize_joints(self, q) -> np.ndarray:
        c = self._ctrl
        return c.normalize_joints(torch.as_tensor(np.asarray(q), device=c.device, dtype=torch.float32)).cpu().numpy()
