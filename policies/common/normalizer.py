"""Per-dimension min/max normalizer to [-1, 1], saved inside the policy's weights.

The stats are registered buffers, so ``state_dict()`` / ``model.safetensors`` carry them and a
loaded policy normalizes exactly as it did in training (diffusion_policy's ``LinearNormalizer``
idea, without a separate processor that export would have to chase).
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

RANGE_EPS = 1e-4  # a dim whose training range is below this is treated as constant


class NormalizerNotFitted(RuntimeError):
    """The normalizer was used before ``fit()`` (or loaded from weights without stats)."""


class Normalizer(nn.Module):
    """Maps raw values to [-1, 1] per dimension: ``y = (x - offset_in) * scale``.

    A dimension that never varied in the training data (range < ``RANGE_EPS``, e.g. a constant
    colour slot) gets scale 1 around its value, so it maps to 0 and the inverse is still exact,
    instead of dividing by ~0.

    Buffers (all in ``state_dict``): ``low``/``high`` (dim,) raw min/max, ``scale``/``centre``
    (dim,) the affine map, ``fitted`` () bool.
    """

    def __init__(self, dim: int):
        super().__init__()
        self.dim = int(dim)
        self.register_buffer("low", torch.zeros(self.dim))
        self.register_buffer("high", torch.zeros(self.dim))
        self.register_buffer("centre", torch.zeros(self.dim))
        self.register_buffer("scale", torch.ones(self.dim))
        self.register_buffer("fitted", torch.zeros((), dtype=torch.bool))
        # Python mirror of ``fitted`` so a fitted normalizer never reads a (GPU) buffer per call,
        # which would sync the device and show up as a constant branch when tracing for export.
        self._fitted = False

    @torch.no_grad()
    def fit(self, data: np.ndarray | torch.Tensor, min_span: float = 0.0) -> "Normalizer":
        """Set the stats from raw training data ``data`` (N, dim) (any leading shape, last = dim).

        ``min_span`` floors the range a dimension is scaled by: a dimension that barely varied in
        training (a resting block's height or tilt: ~0.2 mm, ~0.3 degrees) then maps small
        deviations at test time to small values instead of amplifying them ~10^4 times, far outside
        anything the model saw. Dimensions below ``RANGE_EPS`` are still only centred."""
        x = torch.as_tensor(data).detach().to(device=self.low.device, dtype=torch.float32)
        if x.ndim == 0 or x.shape[-1] != self.dim:
            raise ValueError(f"cannot fit a {self.dim}-dim normalizer on data of shape {tuple(x.shape)}; "
                             f"expected (N, {self.dim})")
        x = x.reshape(-1, self.dim)
        if x.shape[0] == 0:
            raise ValueError("cannot fit the normalizer on empty data (N = 0)")
        if not torch.isfinite(x).all():
            raise ValueError("cannot fit the normalizer: the data contains NaN or inf")
        low, high = x.min(0).values, x.max(0).values
        span = high - low
        constant = span < RANGE_EPS
        self.low.copy_(low)
        self.high.copy_(high)
        self.centre.copy_((high + low) / 2)
        self.scale.copy_(torch.where(constant, torch.ones_like(span), 2.0 / span.clamp_min(max(RANGE_EPS, min_span))))
        self.fitted.fill_(True)
        self._fitted = True
        return self

    @property
    def is_fitted(self) -> bool:
        if not self._fitted:  # the buffer may have been set by load_state_dict or an EMA copy
            self._fitted = bool(self.fitted)
        return self._fitted

    def _require_fitted(self) -> None:
        if not self.is_fitted:
            raise NormalizerNotFitted("normalizer used before fit(): call policy.fit_normalizer(obs, actions) "
                                      "on the training data first, or load a checkpoint saved with its stats")

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        """Raw values (..., dim) -> normalized (..., dim), in [-1, 1] over the training range."""
        self._require_fitted()
        return (x - self.centre) * self.scale

    def unnormalize(self, y: torch.Tensor) -> torch.Tensor:
        """Normalized values (..., dim) -> raw (..., dim); exact inverse of ``normalize``."""
        self._require_fitted()
        return y / self.scale + self.centre

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
        # mirror the loaded flag now (one read at load time), so tracing for export sees a constant
        loaded = state_dict.get(prefix + "fitted")
        self._fitted = bool(loaded) if loaded is not None else False

    def extra_repr(self) -> str:
        return f"dim={self.dim}"
