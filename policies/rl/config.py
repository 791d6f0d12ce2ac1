"""Settings of an RL run with stable-baselines3: ``policy=ppo`` / ``policy=sac`` of ``train.py``.

One dataclass per algorithm, each with its own defaults; ``sb3`` goes verbatim to the SB3
constructor (``stable_baselines3.PPO(...)`` / ``SAC(...)``), so any of their keyword arguments
can be set (``policy.sb3.gamma=0.97``). The allowed values here are the ones the RL glue
(``policies.rl.sb3``) takes; importing this module needs neither torch nor SB3.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

from envs.core.surface import REWARD_MODES
from policies.common.config import is_int, require

ALGORITHMS = ("ppo", "sac")
VEC_ENVS = ("subproc", "dummy", "batched")   # policies.rl.sb3.vec_env.make_vec_env builds these
ACTIVATIONS = ("relu", "tanh", "elu", "gelu")


@dataclass
class SB3Config:
    """What both algorithms share. Steps are env steps, all env copies together."""

    total_timesteps: int = 100_000   # env steps, all envs together
    num_envs: Optional[int] = None   # None: one env per CPU core
    vec_env: str = "subproc"         # subproc (one process per env) | dummy (in-process) | batched (ManiSkill)
    net_arch: list[int] = field(default_factory=lambda: [256, 256])   # hidden layers of actor and critic(s)
    activation: str = "relu"
    normalize_obs: bool = True       # VecNormalize statistics; baked into the exported policy
    normalize_reward: bool = False   # return-scale normalization
    success_bonus: bool = True       # success step pays gamma/(1-gamma) extra (policies/rl/sb3/vec_env.py)
    reward_mode: str = "dense"
    demos: int = 0                   # successful oracle episodes (HDF5 demo store) put in the replay buffer
    demo_seed_start: int = 1_000_000
    checkpoint_every: int = 20_000   # env steps between resumable checkpoints (0: only at the end)
    log_every: int = 10_000          # env steps between progress lines (0: none)
    save_replay_buffer: bool = True  # in checkpoints (filled part only), so a resumed run keeps its data
    torch_threads: int = 1
    policy_kwargs: dict[str, Any] = field(default_factory=dict)   # to the SB3 policy class
    sb3: dict[str, Any] = field(default_factory=dict)             # to the SB3 algorithm, verbatim

    def __post_init__(self):
        self.validate()

    def validate(self) -> None:
        """Raise :class:`~policies.common.config.ConfigError` naming the first invalid field."""
        for name in ("total_timesteps", "torch_threads"):
            require(is_int(getattr(self, name), 1), self, name, "an integer >= 1")
        for name in ("demos", "demo_seed_start", "checkpoint_every", "log_every"):
            require(is_int(getattr(self, name), 0), self, name, "an integer >= 0")
        require(self.num_envs is None or is_int(self.num_envs, 1), self, "num_envs",
                "null (one per CPU core) or an integer >= 1")
        require(self.vec_env in VEC_ENVS, self, "vec_env", ", ".join(VEC_ENVS))
        require(bool(self.net_arch) and all(is_int(n, 1) for n in self.net_arch), self, "net_arch",
                "a non-empty list of integers >= 1")
        require(self.activation in ACTIVATIONS, self, "activation", ", ".join(ACTIVATIONS))
        require(self.reward_mode in REWARD_MODES, self, "reward_mode", ", ".join(REWARD_MODES))


@dataclass
class PPOConfig(SB3Config):
    """Proximal Policy Optimization on the dense staged reward: separate actor and critic MLPs."""

    total_timesteps: int = 500_000
    activation: str = "tanh"
    normalize_reward: bool = True    # the success bonus is large
    checkpoint_every: int = 50_000
    save_replay_buffer: bool = False
    policy_kwargs: dict[str, Any] = field(default_factory=lambda: {"log_std_init": -0.5})
    sb3: dict[str, Any] = field(default_factory=lambda: {
        "learning_rate": 0.0003, "n_steps": 512,  # n_steps: per env, per rollout
        "batch_size": 256, "n_epochs": 10, "gamma": 0.95, "gae_lambda": 0.95, "clip_range": 0.2,
        "ent_coef": 0.0, "max_grad_norm": 0.5})

    def validate(self) -> None:
        super().validate()
        require(self.demos == 0, self, "demos", "0 (PPO has no replay buffer to put demos in; use policy=sac)")


@dataclass
class SACConfig(SB3Config):
    """Soft Actor-Critic on the dense staged reward, optionally seeded with oracle demos."""

    sb3: dict[str, Any] = field(default_factory=lambda: {
        "learning_rate": 0.001, "gamma": 0.95, "tau": 0.01, "batch_size": 256, "buffer_size": 300000,
        "learning_starts": 2000, "train_freq": 1,  # train_freq: vec-env steps (num_envs transitions) per update
        "gradient_steps": 1, "ent_coef": "auto"})
