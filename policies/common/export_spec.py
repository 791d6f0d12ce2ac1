"""What a policy hands the exporter: one graph with a fixed signature, plus facts for the manifest.

Every exported graph has the same signature, whatever the policy type, so one runtime serves all:

- input ``obs_history`` (batch, n_obs_steps, obs_dim) float32: raw observations, oldest first;
- input ``noise`` (batch, *noise_shape) float32, standard normal: only for stochastic policies
  (diffusion's initial latent), so exported and torch outputs can be compared exactly;
- output ``action_chunk`` (batch, n_action_steps, action_dim) float32: raw actions, the first one
  to be applied now.

A policy type plugs into ``python -m policies.export`` by implementing ``Policy.export_spec()``.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from torch import nn

OBS_INPUT, NOISE_INPUT, ACTION_OUTPUT = "obs_history", "noise", "action_chunk"


@dataclass
class ExportSpec:
    module: nn.Module                    # forward(obs_history[, noise]) -> action_chunk, normalizers inside
    obs_dim: int
    action_dim: int
    n_obs_steps: int                     # observation history the graph reads
    n_action_steps: int                  # actions per call, executed before the next call
    noise_shape: tuple[int, ...] | None = None   # per-sample shape of the ``noise`` input; None: no noise input
    normalization: dict = field(default_factory=dict)  # manifest section: what is baked into the graph
    extra: dict = field(default_factory=dict)          # policy-specific manifest entries (e.g. the sampler)

    @property
    def input_names(self) -> list[str]:
        return [OBS_INPUT] + ([NOISE_INPUT] if self.noise_shape is not None else [])
