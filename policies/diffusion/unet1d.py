"""1-D temporal U-Net with FiLM conditioning (the ConditionalUnet1D of diffusion_policy).

Convolutions run over time: the action trajectory (B, T, A) is treated as A channels of length T.
Every residual block is conditioned on one global vector = [sinusoidal embedding of the diffusion
timestep, flattened observation history], which predicts a per-channel scale and bias (FiLM).
"""
from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import nn


class SinusoidalPosEmb(nn.Module):
    """Diffusion timestep (B,) -> (B, dim) transformer-style sin/cos embedding."""

    def __init__(self, dim: int):
        super().__init__()
        half = dim // 2
        freqs = torch.exp(torch.arange(half) * (-math.log(10000.0) / (half - 1)))
        # Not persistent: derived from ``dim``, so it stays out of the checkpoint.
        self.register_buffer("freqs", freqs, persistent=False)

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        arg = t.to(self.freqs.dtype)[:, None] * self.freqs[None]
        return torch.cat([arg.sin(), arg.cos()], dim=-1)


class Conv1dBlock(nn.Sequential):
    """Conv1d (length-preserving) -> GroupNorm -> Mish, on (B, C, T)."""

    def __init__(self, c_in: int, c_out: int, kernel_size: int, n_groups: int):
        super().__init__(nn.Conv1d(c_in, c_out, kernel_size, padding=kernel_size // 2),
                         nn.GroupNorm(n_groups, c_out), nn.Mish())


class ConditionalResidualBlock1D(nn.Module):
    """Two conv blocks with FiLM in between: (B, c_in, T), cond (B, cond_dim) -> (B, c_out, T)."""

    def __init__(self, c_in: int, c_out: int, cond_dim: int, kernel_size: int, n_groups: int):
        super().__init__()
        self.block1 = Conv1dBlock(c_in, c_out, kernel_size, n_groups)
        self.block2 = Conv1dBlock(c_out, c_out, kernel_size, n_groups)
        self.film = nn.Sequential(nn.Mish(), nn.Linear(cond_dim, 2 * c_out))
        self.residual = nn.Conv1d(c_in, c_out, 1) if c_in != c_out else nn.Identity()

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        h = self.block1(x)
        scale, bias = self.film(cond).unsqueeze(-1).chunk(2, dim=1)   # each (B, c_out, 1)
        h = self.block2(scale * h + bias)
        return h + self.residual(x)


class ConditionalUnet1D(nn.Module):
    """Noise predictor of the diffusion policy.

    ``down_dims`` gives the channels per resolution; the sequence length is halved after every
    level but the last, so T must be divisible by ``2 ** (len(down_dims) - 1)``.
    """

    def __init__(self, action_dim: int, global_cond_dim: int, down_dims: Sequence[int] = (64, 128, 256),
                 kernel_size: int = 5, n_groups: int = 8, step_embed_dim: int = 128):
        super().__init__()
        self.step_encoder = nn.Sequential(
            SinusoidalPosEmb(step_embed_dim), nn.Linear(step_embed_dim, 4 * step_embed_dim), nn.Mish(),
            nn.Linear(4 * step_embed_dim, step_embed_dim))
        cond_dim = step_embed_dim + global_cond_dim

        def block(c_in, c_out):
            return ConditionalResidualBlock1D(c_in, c_out, cond_dim, kernel_size, n_groups)

        dims = [action_dim, *down_dims]
        levels = list(zip(dims[:-1], dims[1:]))          # (c_in, c_out) per resolution
        self.down = nn.ModuleList()
        for i, (c_in, c_out) in enumerate(levels):
            last = i == len(levels) - 1
            downsample = nn.Identity() if last else nn.Conv1d(c_out, c_out, 3, stride=2, padding=1)
            self.down.append(nn.ModuleList([block(c_in, c_out), block(c_out, c_out), downsample]))
        mid = down_dims[-1]
        self.mid = nn.ModuleList([block(mid, mid), block(mid, mid)])
        self.up = nn.ModuleList()
        for c_out, c_in in reversed(levels[1:]):         # back up through every level but the first
            # the input is the previous output concatenated with the skip of the same level
            upsample = nn.ConvTranspose1d(c_out, c_out, 4, stride=2, padding=1)
            self.up.append(nn.ModuleList([block(2 * c_in, c_out), block(c_out, c_out), upsample]))
        self.final = nn.Sequential(Conv1dBlock(down_dims[0], down_dims[0], kernel_size, n_groups),
                                   nn.Conv1d(down_dims[0], action_dim, 1))

    def forward(self, sample: torch.Tensor, timestep: torch.Tensor | int, global_cond: torch.Tensor) -> torch.Tensor:
        """sample (B, T, action_dim), timestep () or (B,) diffusion step, global_cond (B, global_cond_dim)
        -> (B, T, action_dim) predicted noise (or clean sample, per the policy's prediction_type)."""
        x = sample.transpose(1, 2)                       # (B, A, T): convolve over time
        if not isinstance(timestep, torch.Tensor):
            timestep = torch.tensor(timestep, device=sample.device)
        t = timestep.reshape(-1).expand(sample.shape[0])
        cond = torch.cat([self.step_encoder(t), global_cond], dim=-1)
        skips = []
        for res1, res2, downsample in self.down:
            x = res2(res1(x, cond), cond)
            skips.append(x)
            x = downsample(x)
        for res in self.mid:
            x = res(x, cond)
        for res1, res2, upsample in self.up:
            x = torch.cat([x, skips.pop()], dim=1)
            x = upsample(res2(res1(x, cond), cond))
        return self.final(x).transpose(1, 2)
