"""Exponential moving average of model weights (diffusion_policy's power-schedule EMA).

Diffusion policies are evaluated with the EMA weights: they are markedly smoother than the raw
weights late in training. The EMA is its own object holding an averaged copy of the model, so
the trainer saves ``ema.averaged_model`` and the model it optimizes is untouched.
"""
from __future__ import annotations

import copy

import torch
from torch import nn


class EMAModel:
    """``averaged_model`` tracks ``model`` with decay ``1 - (1 + k / inv_gamma) ** -power``
    clamped to [min_value, max_value], where ``k = step_count - update_after_step - 1``.

    Early on the decay is small (the average follows the model closely, so it is not dragged back
    to the random init); it approaches ``max_value`` as training proceeds. With the defaults
    (inv_gamma=1, power=0.75) the decay is ~0.999 at 10k steps and ~0.9999 at 215k steps.
    Buffers (e.g. normalizer stats) and frozen parameters are copied, not averaged.
    """

    def __init__(self, model: nn.Module, update_after_step: int = 0, inv_gamma: float = 1.0,
                 power: float = 0.75, min_value: float = 0.0, max_value: float = 0.9999):
        self.averaged_model = copy.deepcopy(model).eval().requires_grad_(False)
        self.update_after_step = update_after_step
        self.inv_gamma, self.power = inv_gamma, power
        self.min_value, self.max_value = min_value, max_value
        self.optimization_step = 0

    def get_decay(self, optimization_step: int) -> float:
        """Decay used for the update at ``optimization_step`` (0-based count of past updates)."""
        k = max(0, optimization_step - self.update_after_step - 1)
        if k <= 0:
            return 0.0  # the first update copies the model outright
        value = 1 - (1 + k / self.inv_gamma) ** -self.power
        return max(self.min_value, min(value, self.max_value))

    @torch.no_grad()
    def step(self, model: nn.Module) -> None:
        """Fold the current weights of ``model`` (same architecture) into the average."""
        decay = self.get_decay(self.optimization_step)
        params = dict(model.named_parameters())
        for name, ema_p in self.averaged_model.named_parameters():
            p = params[name]
            if not p.requires_grad or not p.is_floating_point():
                ema_p.copy_(p)
            else:
                ema_p.mul_(decay).add_(p.detach().to(ema_p.dtype), alpha=1 - decay)
        buffers = dict(model.named_buffers())
        for name, ema_b in self.averaged_model.named_buffers():
            ema_b.copy_(buffers[name])
        self.optimization_step += 1

    def state_dict(self) -> dict:
        return {"averaged_model": self.averaged_model.state_dict(), "optimization_step": self.optimization_step}

    def load_state_dict(self, state: dict) -> None:
        self.averaged_model.load_state_dict(state["averaged_model"])
        self.optimization_step = int(state["optimization_step"])

    def to(self, *args, **kwargs) -> "EMAModel":
        """Move the averaged copy (e.g. after moving the trained model to another device)."""
        self.averaged_model.to(*args, **kwargs)
        return self
