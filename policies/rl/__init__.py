"""RL policies: stable-baselines3 PPO / SAC glue and the exported MLP actor.

``policies.rl.sb3`` turns roboforge tasks into SB3 vector envs and trained SB3 models into an
:class:`MLPActorPolicy` (observation normalizer + actor, ``act`` / ``reset`` / ``save`` / ``load``).
The trainer that uses them is :func:`train.rl.run_rl`.
"""
from policies.rl.mlp_policy import MLPActor, MLPActorConfig, MLPActorPolicy
from policies.rl.sb3 import ALGORITHMS, SUPPORTED_TEXT, UnsupportedRLSetup, check_supported

__all__ = ["ALGORITHMS", "SUPPORTED_TEXT", "MLPActor", "MLPActorConfig", "MLPActorPolicy",
           "UnsupportedRLSetup", "check_supported"]
