"""The exported RL policy: observation normalizer + MLP actor in one torch module.

What SB3 trains (a PPO Gaussian actor or a SAC squashed-Gaussian actor, behind VecNormalize)
becomes, for deployment, one deterministic function ``action = head(mlp(normalize(obs)))``:
no SB3, no pickled statistics. ``save_pretrained(path)`` writes ``config.json`` +
``model.safetensors`` (normalizer buffers included) through the common
:class:`policies.common.policy.Policy`, and ``Policy.from_pretrained(path)`` reads it back as
policy type ``rl_mlp``.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn as nn

from policies.common.config import JSONConfig, is_int, require
from policies.common.policy import Policy, register_policy

_ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh, "elu": nn.ELU, "gelu": nn.GELU}


@dataclass
class MLPActorConfig(JSONConfig):
    """Shape of an exported actor. ``output``: ``"tanh"`` squashes the head into [-1, 1] (SAC),
    ``"clip"`` clips it there (PPO's Gaussian mean); both then map [-1, 1] onto
    [``action_low``, ``action_high``]."""

    obs_dim: int
    action_dim: int
    hidden_sizes: list[int] = field(default_factory=lambda: [256, 256])
    activation: str = "relu"
    output: str = "tanh"
    action_low: list[float] | None = None
    action_high: list[float] | None = None
    obs_clip: float = 10.0        # normalized observations are clipped to +-obs_clip
    obs_eps: float = 1e-8
    algorithm: str = ""           # provenance: "ppo" / "sac"
    task: str = ""
    env_kwargs: dict = field(default_factory=dict)   # obs_mode / control_mode it was trained with

    def __post_init__(self):
        for name in ("obs_dim", "action_dim"):
            require(is_int(getattr(self, name), 1), self, name, "an integer >= 1")
        require(self.activation in _ACTIVATIONS, self, "activation", ", ".join(_ACTIVATIONS))
        require(self.output in ("tanh", "clip"), self, "output", "tanh, clip")
        self.action_low = list(self.action_low) if self.action_low is not None else [-1.0] * self.action_dim
        self.action_high = list(self.action_high) if self.action_high is not None else [1.0] * self.action_dim


class ObsNormalizer(nn.Module):
    """``clip((obs - mean) / sqrt(var + eps), -clip, clip)``: VecNormalize's transform, as buffers."""

    def __init__(self, dim: int, clip: float, eps: float):
        super().__init__()
        self.register_buffer("mean", torch.zeros(dim))
        self.register_buffer("var", torch.ones(dim))
        self.clip, self.eps = float(clip), float(eps)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        z = (obs - self.mean) / torch.sqrt(self.var + self.eps)
        return z.clamp(-self.clip, self.clip) if np.isfinite(self.clip) else z


class MLPActor(nn.Module):
    """Normalizer -> hidden layers -> head -> [-1, 1] -> action bounds. ``forward`` is the whole
    deployed graph (batched: (B, obs_dim) -> (B, action_dim))."""

    def __init__(self, cfg: MLPActorConfig):
        super().__init__()
        self.normalizer = ObsNormalizer(cfg.obs_dim, cfg.obs_clip, cfg.obs_eps)
        sizes = [cfg.obs_dim, *cfg.hidden_sizes]
        self.hidden = nn.ModuleList(nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:]))
        self.activation = _ACTIVATIONS[cfg.activation]()
        self.head = nn.Linear(sizes[-1], cfg.action_dim)
        self.squash = cfg.output == "tanh"
        low = torch.tensor(cfg.action_low, dtype=torch.float32)
        high = torch.tensor(cfg.action_high, dtype=torch.float32)
        self.register_buffer("action_low", low)
        self.register_buffer("action_high", high)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        x = self.normalizer(obs)
        for layer in self.hidden:
            x = self.activation(layer(x))
        a = self.head(x)
        a = torch.tanh(a) if self.squash else a.clamp(-1.0, 1.0)
        return self.action_low + (a + 1.0) * 0.5 * (self.action_high - self.action_low)


class _ChunkSignature(nn.Module):
    """(B, 1, obs_dim) -> (B, 1, action_dim): the memoryless actor in the export signature."""

    def __init__(self, actor: MLPActor):
        super().__init__()
        self.actor = actor

    def forward(self, obs_history: torch.Tensor) -> torch.Tensor:
        return self.actor(obs_history[:, -1]).unsqueeze(1)


@register_policy("rl_mlp")
class MLPActorPolicy(Policy):
    """A trained RL actor on the common policy surface: ``select_action(obs)``,
    ``predict_action_chunk(obs)``, ``reset()``, ``save_pretrained(path)``,
    ``Policy.from_pretrained(path)``. Memoryless and one action per chunk, so ``reset()`` has
    nothing to clear."""

    config_class = MLPActorConfig

    def __init__(self, config: MLPActorConfig):
        super().__init__(config)
        self.actor = MLPActor(config)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        """(B, obs_dim) raw observations -> (B, action_dim) actions: the graph to export."""
        return self.actor(obs)

    def export_spec(self):
        """The actor under the common export signature: history 1, chunk 1, no noise input."""
        from policies.common.export_spec import ExportSpec

        c = self.config
        n = self.actor.normalizer
        return ExportSpec(
            module=_ChunkSignature(self.actor), obs_dim=c.obs_dim, action_dim=c.action_dim, n_obs_steps=1,
            n_action_steps=1,
            normalization={"baked_into_graph": True,
                           "method": "clip((obs - mean) / sqrt(var + eps), -clip, clip) (VecNormalize statistics)",
                           "observation": {"mean": n.mean.tolist(), "var": n.var.tolist(), "eps": c.obs_eps,
                                           "clip": c.obs_clip},
                           "action": {"output": c.output, "low": c.action_low, "high": c.action_high}},
            extra={"algorithm": c.algorithm, "deterministic": True})

    @torch.no_grad()
    def select_action(self, obs) -> np.ndarray:
        """One observation (obs_dim,) -> action (action_dim,) float32; a batch (B, obs_dim) ->
        (B, action_dim). A dict observation (obs_mode other than state) is read through its
        ``state`` entry."""
        if isinstance(obs, dict):
            obs = obs["state"]
        x = torch.as_tensor(np.asarray(obs, dtype=np.float32), device=self.actor.head.weight.device)
        single = x.ndim == 1
        a = self.actor(x[None] if single else x)
        return (a[0] if single else a).cpu().numpy().astype(np.float32)

    def predict_action_chunk(self, obs) -> np.ndarray:
        """A chunk of one action: (obs_dim,) -> (1, action_dim); (B, obs_dim) -> (B, 1, action_dim)."""
        a = self.select_action(obs)
        return a[None] if a.ndim == 1 else a[:, None]

    def reset(self, noise_seeds=None) -> None:
        """Start of an episode: nothing to clear (no observation history or action queue, no noise)."""
