"""PointNet-style point-cloud encoder: a per-point MLP, then a max over the points.

The layout follows DP3's encoder (3D Diffusion Policy, Ze et al. 2024): Linear + LayerNorm + ReLU
per point, max-pool, then a Linear + LayerNorm projection. LayerNorm normalises each point on its
own, so padding points never influence real ones (BatchNorm would mix them), and the max over
points makes the output independent of point order.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from policies.common.config import JSONConfig, is_int, require


@dataclass
class PointCloudEncoderConfig(JSONConfig):
    """Input (..., N, 3 + F): xyz in metres, then F >= ``point_features`` per-point feature
    columns (the env's clouds: rgb in [0, 1], F = 3; later columns may be e.g. a segmentation
    one-hot or a sub-goal flag). The encoder reads xyz and the first ``point_features`` of them."""

    point_features: int = 0         # feature columns read after xyz: 0 = xyz only, 3 = rgb, ...
    center_xyz: bool = True          # subtract the mean of the real points (translation invariance)
    hidden_dims: tuple[int, ...] = (64, 128, 256)   # per-point MLP widths
    output_dim: int = 256

    def __post_init__(self):
        self.hidden_dims = tuple(self.hidden_dims)
        self.validate()

    def validate(self) -> None:
        """Raise ``ValueError`` naming the first invalid field and what it allows."""
        require(is_int(self.point_features, 0), self, "point_features", "an integer >= 0 (columns after xyz)")
        require(isinstance(self.center_xyz, bool), self, "center_xyz", "true or false")
        require(len(self.hidden_dims) > 0 and all(is_int(d) for d in self.hidden_dims), self, "hidden_dims",
                "a non-empty list of integers >= 1")
        require(is_int(self.output_dim), self, "output_dim", "an integer >= 1")

    @property
    def in_channels(self) -> int:
        return 3 + self.point_features


class PointCloudEncoder(nn.Module):
    """``forward(points, mask=None)``: (..., N, 3 + F) -> (..., output_dim), F >= ``point_features``.

    ``mask`` (..., N) bool marks real points (True) against padding (False), so clouds with
    different point counts batch together; a cloud with no real point pools to zeros (then projected).
    """

    def __init__(self, cfg: PointCloudEncoderConfig):
        super().__init__()
        self.config = cfg
        layers, prev = [], cfg.in_channels
        for d in cfg.hidden_dims:
            layers += [nn.Linear(prev, d), nn.LayerNorm(d), nn.ReLU(inplace=True)]
            prev = d
        self.point_mlp = nn.Sequential(*layers)
        self.project = nn.Sequential(nn.Linear(prev, cfg.output_dim), nn.LayerNorm(cfg.output_dim))

    @property
    def output_dim(self) -> int:
        return self.config.output_dim

    def forward(self, points: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        c = self.config
        if points.dim() < 2 or points.shape[-1] < c.in_channels:
            raise ValueError(f"points have shape {tuple(points.shape)}; expected (..., N, >= {c.in_channels}): xyz + "
                             f"point_features={c.point_features} feature columns")
        if mask is not None and mask.shape != points.shape[:-1]:
            raise ValueError(f"mask has shape {tuple(mask.shape)}; expected {tuple(points.shape[:-1])} (one per point)")
        lead, n = points.shape[:-2], points.shape[-2]
        x = points.reshape(-1, n, points.shape[-1]).float()
        valid = (torch.ones(x.shape[:2], dtype=torch.bool, device=x.device) if mask is None
                 else mask.reshape(-1, n).bool())
        w = valid.unsqueeze(-1).to(x.dtype)
        xyz = x[..., :3]
        if c.center_xyz:
            xyz = xyz - (xyz * w).sum(1, keepdim=True) / w.sum(1, keepdim=True).clamp_min(1)
        x = torch.cat([xyz, x[..., 3:c.in_channels]], -1)
        h = self.point_mlp(x).masked_fill(~valid.unsqueeze(-1), float("-inf")).amax(dim=1)
        h = torch.where(valid.any(1, keepdim=True), h, torch.zeros_like(h))
        return self.project(h).reshape(*lead, -1)
