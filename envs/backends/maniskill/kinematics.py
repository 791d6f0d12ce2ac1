"""Batched forward kinematics and geometric Jacobians of a serial chain read from a URDF, in torch.

Used by the arm controller on both ManiSkill sim backends (CPU and CUDA): one code path, batched
over parallel environments, no host round trip. Frames: the chain's root link frame (the robot
base, which the scene puts at the world origin). Quaternions are wxyz.
"""
from __future__ import annotations

import xml.etree.ElementTree as ET

import numpy as np
import torch


def _rpy_matrix(r: float, p: float, y: float) -> np.ndarray:
    cr, sr, cp, sp, cy, sy = np.cos(r), np.sin(r), np.cos(p), np.sin(p), np.cos(y), np.sin(y)
    return np.array([[cy * cp, cy * sp * sr - sy * cr, cy * sp * cr + sy * sr],
                     [sy * cp, sy * sp * sr + cy * cr, sy * sp * cr - cy * sr],
                     [-sp, cp * sr, cp * cr]])


class SerialChain:
    """Revolute/fixed joints from ``root`` to ``end_link``; ``fk`` and ``jacobian`` are batched."""

    def __init__(self, urdf_path: str, end_link: str, device="cpu", dtype=torch.float32):
        joints = {}
        for j in ET.parse(urdf_path).getroot().iter("joint"):
            o = j.find("origin")
            xyz = [float(v) for v in (o.get("xyz", "0 0 0") if o is not None else "0 0 0").split()]
            rpy = [float(v) for v in (o.get("rpy", "0 0 0") if o is not None else "0 0 0").split()]
            a = j.find("axis")
            axis = [float(v) for v in (a.get("xyz") if a is not None else "1 0 0").split()]
            T = np.eye(4)
            T[:3, :3], T[:3, 3] = _rpy_matrix(*rpy), xyz
            joints[j.find("child").get("link")] = (j.get("name"), j.get("type"), j.find("parent").get("link"), T,
                                                   np.asarray(axis) / np.linalg.norm(axis))
        chain, link = [], end_link
        while link in joints:
            chain.append(joints[link])
            link = joints[link][2]
        if not chain:
            raise ValueError(f"link {end_link!r} not found in {urdf_path}")
        chain.reverse()
        if any(t not in ("revolute", "fixed", "continuous") for _, t, *_ in chain):
            raise ValueError("SerialChain supports revolute and fixed joints only")
        self.joint_names = [n for n, t, *_ in chain if t != "fixed"]
        # (origin transform, axis or None) per joint; consecutive fixed origins are folded together
        self._steps: list[tuple[torch.Tensor, torch.Tensor | None]] = []
        pending = np.eye(4)
        for _, jtype, _, T, axis in chain:
            pending = pending @ T
            if jtype != "fixed":
                self._steps.append((pending, axis))
                pending = np.eye(4)
        self._tail = pending
        self.to(device, dtype)

    def to(self, device, dtype=torch.float32) -> "SerialChain":
        self.device, self.dtype = torch.device(device), dtype
        as_t = lambda a: torch.as_tensor(np.asarray(a), device=self.device, dtype=dtype)  # noqa: E731
        # joint i: x_parent = O_i (Rot(axis_i, q_i) x_child); its origin rotation is folded into
        # the joint rotation (O_R Rot) and its axis is expressed before the rotation (O_R axis)
        self._origin_R = as_t(np.stack([T[:3, :3] for T, _ in self._steps]))        # (dof, 3, 3)
        self._origin_t = as_t(np.stack([T[:3, 3] for T, _ in self._steps]))[..., None]  # (dof, 3, 1)
        self._axes = as_t(np.stack([T[:3, :3] @ a for T, a in self._steps]))           # (dof, 3)
        K = np.stack([[[0, -a[2], a[1]], [a[2], 0, -a[0]], [-a[1], a[0], 0]] for _, a in self._steps])
        self._K, self._K2 = as_t(K), as_t(K @ K)
        self._tail_R, self._tail_t = as_t(self._tail[:3, :3]), as_t(self._tail[:3, 3])
        return self

    @property
    def dof(self) -> int:
        return len(self._steps)

    def fk(self, q: torch.Tensor, with_jacobian: bool = False):
        """End-link pose for joint positions ``q`` (B, dof): position (B, 3), rotation (B, 3, 3),
        and, when asked, the geometric Jacobian (B, 6, dof) (rows: linear, then angular)."""
        B = q.shape[0]
        th = q.unsqueeze(-1).unsqueeze(-1)                                              # (B, dof, 1, 1)
        rot = torch.eye(3, device=q.device, dtype=q.dtype) + torch.sin(th) * self._K + (1 - torch.cos(th)) * self._K2
        rot = self._origin_R @ rot                                                      # Rodrigues, all joints
        R = torch.eye(3, device=q.device, dtype=q.dtype).expand(B, 3, 3)
        p = torch.zeros(B, 3, 1, device=q.device, dtype=q.dtype)
        axes, origins = [], []
        for i in range(self.dof):
            p = p + R @ self._origin_t[i]
            if with_jacobian:
                axes.append(R @ self._axes[i])
                origins.append(p)
            R = R @ rot[:, i]
        pos = (p + R @ self._tail_t.unsqueeze(-1)).squeeze(-1)
        R = R @ self._tail_R
        if not with_jacobian:
            return pos, R
        z = torch.stack(axes, 2)                                                        # (B, 3, dof)
        r = pos.unsqueeze(2) - torch.cat(origins, 2)
        return pos, R, torch.cat([torch.linalg.cross(z, r, dim=1), z], 1)


# -- quaternions (wxyz), batched over the leading dimension -----------------------------------
def quat_mul(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    aw, ax, ay, az = a.unbind(-1)
    bw, bx, by, bz = b.unbind(-1)
    return torch.stack([aw * bw - ax * bx - ay * by - az * bz, aw * bx + ax * bw + ay * bz - az * by,
                        aw * by - ax * bz + ay * bw + az * bx, aw * bz + ax * by - ay * bx + az * bw], -1)


def quat_conj(q: torch.Tensor) -> torch.Tensor:
    return q * torch.tensor([1.0, -1.0, -1.0, -1.0], device=q.device, dtype=q.dtype)


def axis_angle_quat(v: torch.Tensor) -> torch.Tensor:
    """Rotation vector (rad) -> unit quaternion; zero vectors give the identity."""
    ang = torch.linalg.norm(v, dim=-1, keepdim=True)
    half = 0.5 * ang
    scale = torch.where(ang > 1e-12, torch.sin(half) / ang.clamp_min(1e-12), 0.5 - ang * ang / 48)
    return torch.cat([torch.cos(half), v * scale], -1)


def quat_error(target: torch.Tensor, current: torch.Tensor) -> torch.Tensor:
    """Rotation vector (rad, world frame) taking ``current`` to ``target`` (shortest way)."""
    dq = quat_mul(target, quat_conj(current))
    dq = torch.where(dq[..., :1] < 0, -dq, dq)
    s = torch.linalg.norm(dq[..., 1:], dim=-1, keepdim=True)
    ang = 2 * torch.atan2(s, dq[..., :1])
    return dq[..., 1:] * torch.where(s > 1e-12, ang / s.clamp_min(1e-12), 2.0 / dq[..., :1].clamp_min(1e-12))


def matrix_quat(R: torch.Tensor) -> torch.Tensor:
    """Rotation matrices (B, 3, 3) -> quaternions (B, 4), w >= 0."""
    from mani_skill.utils.geometry.rotation_conversions import matrix_to_quaternion

    q = matrix_to_quaternion(R)
    return torch.where(q[..., :1] < 0, -q, q)
