"""SB3 PPO / SAC with an MLP policy, built from the policy config."""
from __future__ import annotations

from policies.rl.config import ACTIVATIONS
from policies.rl.sb3.support import check_supported


def _activation(name: str):
    import torch.nn as nn

    if name not in ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r}; choose one of {', '.join(ACTIVATIONS)}")
    return {"relu": nn.ReLU, "tanh": nn.Tanh, "elu": nn.ELU, "gelu": nn.GELU}[name]


def algorithm_class(algo: str):
    from stable_baselines3 import PPO, SAC

    check_supported(algo)
    return {"ppo": PPO, "sac": SAC}[algo]


def build_model(algo: str, venv, *, net_arch: list[int], activation: str, sb3_kwargs: dict,
                policy_kwargs: dict | None = None, seed: int = 0, tensorboard_log: str | None = None):
    """A fresh SB3 PPO/SAC with an MLP policy; ``sb3_kwargs`` go to its constructor verbatim."""
    check_supported(algo, venv.observation_space, venv.action_space)
    pk = {"net_arch": list(net_arch), "activation_fn": _activation(activation), **(policy_kwargs or {})}
    return algorithm_class(algo)("MlpPolicy", venv, policy_kwargs=pk, seed=seed, device="cpu",
                                 tensorboard_log=tensorboard_log, verbose=0, **sb3_kwargs)
