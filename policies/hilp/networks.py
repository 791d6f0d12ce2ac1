"""The networks of HILP: LayerNorm MLPs, the Hilbert representation phi (an ensemble of two), the
latent-conditioned value, critics and Gaussian actor. Inputs are normalized observations."""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn


def mlp(in_dim: int, hidden: Sequence[int], out_dim: int, layer_norm: bool = True) -> nn.Sequential:
    """Linear -> GELU -> LayerNorm per hidden layer (HILP's MLP), then a linear head."""
    layers, d = [], in_dim
    for h in hidden:
        layers += [nn.Linear(d, h), nn.GELU()] + ([nn.LayerNorm(h)] if layer_norm else [])
        d = h
    layers.append(nn.Linear(d, out_dim))
    return nn.Sequential(*layers)


class PhiValue(nn.Module):
    """Two Hilbert representations phi_1, phi_2: S -> R^latent_dim and their goal-reaching values
    V_k(s, g) = -||phi_k(s) - phi_k(g)||, so V is a (negated) distance in a latent space where
    one step of the optimal policy moves ~1 unit toward the goal."""

    def __init__(self, obs_dim: int, hidden: Sequence[int], latent_dim: int, layer_norm: bool = True):
        super().__init__()
        self.phis = nn.ModuleList(mlp(obs_dim, hidden, latent_dim, layer_norm) for _ in range(2))

    def phi(self, obs: torch.Tensor, k: int = 0) -> torch.Tensor:
        return self.phis[k](obs)

    def forward(self, obs: torch.Tensor, goal: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(V_1, V_2), each (B,)."""
        return tuple(-latent_distance(phi(obs), phi(goal)) for phi in self.phis)


def latent_distance(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """||a - b|| over the last axis, floored at 1e-3 so its gradient stays finite at a = b."""
    return ((a - b) ** 2).sum(-1).clamp_min(1e-6).sqrt()


class LatentValue(nn.Module):
    """V(s, z): the latent policy's value for direction z."""

    def __init__(self, obs_dim: int, latent_dim: int, hidden: Sequence[int], layer_norm: bool = True):
        super().__init__()
        self.net = mlp(obs_dim + latent_dim, hidden, 1, layer_norm)

    def forward(self, obs: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([obs, z], -1)).squeeze(-1)


class LatentCritic(nn.Module):
    """Two Q(s, z, a) heads (clipped double Q)."""

    def __init__(self, obs_dim: int, latent_dim: int, action_dim: int, hidden: Sequence[int], layer_norm: bool = True):
        super().__init__()
        self.qs = nn.ModuleList(mlp(obs_dim + latent_dim + action_dim, hidden, 1, layer_norm) for _ in range(2))

    def forward(self, obs, z, action) -> tuple[torch.Tensor, torch.Tensor]:
        x = torch.cat([obs, z, action], -1)
        return tuple(q(x).squeeze(-1) for q in self.qs)


class LatentActor(nn.Module):
    """pi(a | s, z): a Gaussian with a state-independent log std (as HILP); the mean is the
    deterministic action used at test time (clipped to [-1, 1] by the caller)."""

    LOG_STD_MIN, LOG_STD_MAX = -5.0, 2.0

    def __init__(self, obs_dim: int, latent_dim: int, action_dim: int, hidden: Sequence[int], layer_norm: bool = True):
        super().__init__()
        self.mean = mlp(obs_dim + latent_dim, hidden, action_dim, layer_norm)
        self.log_std = nn.Parameter(torch.zeros(action_dim))

    def forward(self, obs: torch.Tensor, z: torch.Tensor) -> torch.distributions.Normal:
        mean = self.mean(torch.cat([obs, z], -1))
        std = self.log_std.clamp(self.LOG_STD_MIN, self.LOG_STD_MAX).exp().expand_as(mean)
        return torch.distributions.Normal(mean, std)
