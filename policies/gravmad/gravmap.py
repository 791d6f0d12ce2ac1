"""GravMaps (GravMAD, Chen et al., ICLR 2025, section 3.3): a sub-goal drawn as value maps over a
voxel grid of the workspace, reduced to the points that carry a value, encoded into one token.

From a sub-goal (TCP position ``p`` in m, world frame; gripper openness ``g`` in [0, 1]):

- **cost map**: ``min(|x - p| / cost_radius, 1)`` at each voxel centre ``x``: 0 at the sub-goal,
  rising linearly with distance, saturated at 1 from ``cost_radius`` m on (VoxPoser's
  distance-to-target cost, normalised);
- **gripper map**: ``g`` within ``gripper_radius`` m of the sub-goal, elsewhere the gripper's
  current openness (``default_open``; nothing asks it to change there).

The saturated far field (cost 1) says nothing, so the map is reduced to the voxels with cost < 1
(a ball around the sub-goal, cut by the workspace box), subsampled to ``num_points``: every voxel of the gripper
map's sub-goal region first, the rest in a fixed pseudo-random order (the same map always gives
the same points). Each point carries (x, y, z,
cost, gripper openness, 1 where the gripper map holds the sub-goal's value); a PointNet
(``policies.common.encoders.PointCloudEncoder``, no centring: where the sub-goal is matters)
turns them into the GravMap token. Batched in torch: a training batch draws its maps on the fly.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from policies.common.config import JSONConfig, is_int, is_number, require
from policies.common.encoders import PointCloudEncoder, PointCloudEncoderConfig

# The table-top workspace the maps cover, m (world frame): the TCP target bounds of
# envs.core.robot.WORKSPACE, trimmed to where the tasks' objects and sub-goals lie.
DEFAULT_BOUNDS = ((0.2, -0.4, 0.0), (0.8, 0.4, 0.4))
POINT_FEATURES = 6  # x, y, z, cost, gripper openness, gripper-set flag


@dataclass
class GravMapConfig(JSONConfig):
    bounds: tuple = DEFAULT_BOUNDS       # ((x0, y0, z0), (x1, y1, z1)) m
    resolution: int = 32                 # voxels per axis
    cost_radius: float = 0.25            # m: where the cost map saturates at 1
    gripper_radius: float = 0.05         # m: where the gripper map holds the sub-goal's openness
    num_points: int = 256                # value-carrying points kept per map
    hidden_dims: tuple[int, ...] = (64, 128)  # the token encoder's per-point MLP
    token_dim: int = 128

    def __post_init__(self):
        self.bounds = tuple(tuple(float(v) for v in corner) for corner in self.bounds)
        self.hidden_dims = tuple(self.hidden_dims)
        self.validate()

    def validate(self) -> None:
        lo, hi = (np.array(c) for c in self.bounds) if len(self.bounds) == 2 else (None, None)
        require(lo is not None and lo.shape == (3,) and hi.shape == (3,) and bool(np.all(hi > lo)), self, "bounds",
                "two corners ((x0, y0, z0), (x1, y1, z1)) in m with x1 > x0, y1 > y0, z1 > z0")
        require(is_int(self.resolution, 2), self, "resolution", "an integer >= 2 (voxels per axis)")
        require(is_number(self.cost_radius) and self.cost_radius > 0, self, "cost_radius", "a distance > 0 (m)")
        require(is_number(self.gripper_radius) and self.gripper_radius > 0, self, "gripper_radius",
                "a distance > 0 (m)")
        require(is_int(self.num_points), self, "num_points", "an integer >= 1")
        require(len(self.hidden_dims) > 0 and all(is_int(d) for d in self.hidden_dims), self, "hidden_dims",
                "a non-empty list of integers >= 1")
        require(is_int(self.token_dim), self, "token_dim", "an integer >= 1")

    @property
    def voxel_size(self) -> np.ndarray:
        lo, hi = np.array(self.bounds)
        return (hi - lo) / self.resolution


def voxel_centres(cfg: GravMapConfig) -> torch.Tensor:
    """(resolution ** 3, 3) centres of the workspace voxels, m."""
    lo, hi = (torch.tensor(c, dtype=torch.float32) for c in cfg.bounds)
    axes = [lo[i] + (torch.arange(cfg.resolution, dtype=torch.float32) + 0.5) * (hi[i] - lo[i]) / cfg.resolution
            for i in range(3)]
    return torch.stack(torch.meshgrid(*axes, indexing="ij"), -1).reshape(-1, 3)


class GravMapBuilder(nn.Module):
    """``forward(pos (B, 3), gripper_open (B,), default_open (B,) = 1) -> (points (B, N, 6), mask (B, N))``:
    the reduced GravMaps of a batch of sub-goals (``mask`` False on padding when fewer than N
    voxels carry a value)."""

    def __init__(self, cfg: GravMapConfig):
        super().__init__()
        self.config = cfg
        self.register_buffer("centres", voxel_centres(cfg), persistent=False)
        # a fixed pseudo-random rank per voxel: the subsample is spread over the ball, deterministic
        g = torch.Generator().manual_seed(0)
        self.register_buffer("rank", torch.rand(len(self.centres), generator=g), persistent=False)

    def value_maps(self, pos: torch.Tensor, gripper_open: torch.Tensor, default_open: torch.Tensor | None = None):
        """Full maps over every voxel: (cost (B, V), gripper (B, V), gripper_set (B, V) bool)."""
        c = self.config
        dist = torch.cdist(pos.float().reshape(-1, 1, 3), self.centres.unsqueeze(0)).squeeze(1)
        cost = (dist / c.cost_radius).clamp(max=1.0)
        near = dist <= max(c.gripper_radius, 0.5 * float(np.linalg.norm(c.voxel_size)))  # never an empty spot
        default = torch.ones_like(gripper_open) if default_open is None else default_open
        gripper = torch.where(near, gripper_open.float().reshape(-1, 1), default.float().reshape(-1, 1))
        return cost, gripper, near

    def forward(self, pos: torch.Tensor, gripper_open: torch.Tensor, default_open: torch.Tensor | None = None):
        c = self.config
        cost, gripper, near = self.value_maps(pos, gripper_open, default_open)
        carries = cost < 1.0
        # the voxels holding the sub-goal's gripper value first, then the other value-carrying
        # ones (score >= 1) in a fixed spread, then padding
        score = carries.float() + near.float() + 0.5 * self.rank.unsqueeze(0)
        k = min(c.num_points, score.shape[1])
        idx = score.topk(k, dim=1).indices
        pts = torch.cat([self.centres[idx], cost.gather(1, idx).unsqueeze(-1), gripper.gather(1, idx).unsqueeze(-1),
                         near.gather(1, idx).float().unsqueeze(-1)], -1)
        return pts, carries.gather(1, idx)


class GravMapEncoder(nn.Module):
    """Sub-goals -> GravMap tokens: ``forward(pos (B, 3), gripper_open (B,), default_open=None)
    -> (B, token_dim)``; ``maps(...)`` gives the points (and mask) it encodes."""

    def __init__(self, cfg: GravMapConfig | None = None):
        super().__init__()
        self.config = cfg = cfg or GravMapConfig()
        self.builder = GravMapBuilder(cfg)
        self.encoder = PointCloudEncoder(PointCloudEncoderConfig(point_features=3, center_xyz=False,
                                                                 hidden_dims=cfg.hidden_dims, output_dim=cfg.token_dim))

    @property
    def output_dim(self) -> int:
        return self.config.token_dim

    def maps(self, pos, gripper_open, default_open=None):
        return self.builder(torch.as_tensor(pos), torch.as_tensor(gripper_open), default_open)

    def forward(self, pos: torch.Tensor, gripper_open: torch.Tensor, default_open: torch.Tensor | None = None):
        points, mask = self.builder(pos, gripper_open, default_open)
        return self.encoder(points, mask)


def gravmap_points(pos, gripper_open: float, cfg: GravMapConfig | None = None, default_open: float = 1.0) -> np.ndarray:
    """One sub-goal's reduced GravMap as a numpy (n, 6) array (padding dropped): x, y, z (m),
    cost, gripper openness, gripper-set flag."""
    b = GravMapBuilder(cfg or GravMapConfig())
    with torch.no_grad():
        pts, mask = b(torch.tensor(np.asarray(pos, np.float32)).reshape(1, 3), torch.tensor([float(gripper_open)]),
                      torch.tensor([float(default_open)]))
    return pts[0][mask[0]].numpy()
