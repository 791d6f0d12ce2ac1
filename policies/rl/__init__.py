"""RL policies: stable-baselines3 PPO / SAC glue and the exported MLP actor.

``policies.rl.config`` holds the run settings (``PPOConfig`` / ``SACConfig``); ``policies.rl.sb3``
turns roboforge tasks into SB3 vector envs and trained SB3 models into an :class:`MLPActorPolicy`
(observation normalizer + actor, ``act`` / ``reset`` / ``save`` / ``load``). The trainer that uses
them is :func:`train.rl.run_rl`.

The names below load lazily (PEP 562): reading the configs (as ``train.py`` does to build its
command-line schema) imports neither torch nor gymnasium.
"""
from policies.common.lazy import lazy_getattr

_WHERE = {"ALGORITHMS": "policies.rl.config", "PPOConfig": "policies.rl.config", "SACConfig": "policies.rl.config",
          "SB3Config": "policies.rl.config", "MLPActor": "policies.rl.mlp_policy",
          "MLPActorConfig": "policies.rl.mlp_policy", "MLPActorPolicy": "policies.rl.mlp_policy",
          "SUPPORTED_TEXT": "policies.rl.sb3", "UnsupportedRLSetup": "policies.rl.sb3",
          "check_supported": "policies.rl.sb3"}
__all__ = sorted(_WHERE)

__getattr__ = lazy_getattr(__name__, _WHERE)
