"""A trained SB3 actor as the common policy surface (:class:`policies.rl.mlp_policy.MLPActorPolicy`)."""
from __future__ import annotations

from typing import Any

import numpy as np

from policies.rl.sb3.support import check_supported


def _linear_stack(seq) -> tuple[list[Any], str | None]:
    import torch.nn as nn

    linears = [m for m in seq if isinstance(m, nn.Linear)]
    acts = {type(m).__name__.lower() for m in seq if not isinstance(m, nn.Linear)}
    if len(acts) > 1:
        raise ValueError(f"mixed activations in the actor: {acts}")
    return linears, (acts.pop() if acts else None)


def export_policy(model, venv_norm, *, task: str = "", env_kwargs: dict | None = None):
    """The trained actor as an :class:`MLPActorPolicy`: VecNormalize's observation statistics and
    the deterministic action head (PPO: Gaussian mean, clipped; SAC: tanh of the mean) in one
    torch module, so what is exported is one artifact."""
    import torch

    from policies.rl.mlp_policy import MLPActorConfig, MLPActorPolicy

    algo = type(model).__name__.lower()
    check_supported(algo)
    pol = model.policy
    if algo == "ppo":
        hidden, act = _linear_stack(pol.mlp_extractor.policy_net)
        head, output = pol.action_net, "clip"
    else:
        hidden, act = _linear_stack(pol.actor.latent_pi)
        head, output = pol.actor.mu, "tanh"
    act = {"relu": "relu", "tanh": "tanh", "elu": "elu", "gelu": "gelu", None: "relu"}[act]
    space = model.action_space
    rms = venv_norm.obs_rms if venv_norm is not None and venv_norm.norm_obs else None
    obs_dim = int(np.prod(model.observation_space.shape))
    config = MLPActorConfig(
        obs_dim=obs_dim, action_dim=int(space.shape[0]), hidden_sizes=[int(l.out_features) for l in hidden],
        activation=act, output=output, action_low=space.low.astype(float).tolist(),
        action_high=space.high.astype(float).tolist(),
        obs_clip=float(venv_norm.clip_obs) if rms is not None else float("inf"),
        obs_eps=float(venv_norm.epsilon) if rms is not None else 0.0,
        algorithm=algo, task=task, env_kwargs=dict(env_kwargs or {}))
    policy = MLPActorPolicy(config)
    with torch.no_grad():
        for dst, src in zip(policy.actor.hidden, hidden):
            dst.weight.copy_(src.weight)
            dst.bias.copy_(src.bias)
        policy.actor.head.weight.copy_(head.weight)
        policy.actor.head.bias.copy_(head.bias)
        if rms is not None:
            policy.actor.normalizer.mean.copy_(torch.as_tensor(rms.mean, dtype=torch.float32))
            policy.actor.normalizer.var.copy_(torch.as_tensor(rms.var, dtype=torch.float32))
    return policy.eval()
