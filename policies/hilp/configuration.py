"""HILP configuration (Park et al. 2024, "Foundation Policies with Hilbert Representations").

``HILPParams`` is what a person chooses (the ``policy=hilp`` group of ``train.py``); ``HILPConfig``
adds the sizes the data fixes and is what a :class:`~policies.hilp.modeling.HILPPolicy` saves.
Defaults follow the paper (seohongpark/HILP ``hilp_gcrl``: expectile 0.95, discount 0.99, target
rate 0.005, latent 32, LayerNorm MLPs, goals 62.5% geometric future / 37.5% random state, skill
expectile 0.9, AWR temperature 10) with smaller networks (256x2 instead of 512x3) for a CPU.
"""
from __future__ import annotations

from dataclasses import dataclass, field, fields

from policies.common.config import JSONConfig, is_int, is_number, require


def _unit(x) -> bool:
    return is_number(x) and 0.0 <= x <= 1.0


@dataclass
class HILPParams:
    """Hyper-parameters of HILP: the Hilbert representation phi, the latent-conditioned policy and
    the offline data mix. Time is in control steps (20 Hz)."""

    latent_dim: int = 32                    # size of phi(s) and of the latent (skill) z
    hidden_dims: tuple[int, ...] = (256, 256)   # every MLP (phi, skill value, critics, actor)
    layer_norm: bool = True
    discount: float = 0.99                  # of the goal-reaching value V(s, g) = -||phi(s) - phi(g)||
    expectile: float = 0.95                 # of the value loss (IQL-style, optimistic)
    tau: float = 0.005                      # target-network Polyak rate
    skill_discount: float = 0.99            # of the latent policy's intrinsic return
    skill_expectile: float = 0.9
    skill_temperature: float = 10.0         # AWR: weight exp(temperature * advantage), capped at 100
    p_future_goal: float = 0.625            # goal = a geometric-future state of the same episode
    p_random_goal: float = 0.375            # goal = any state of the dataset
    lr: float = 3.0e-4
    batch_size: int = 256
    steps: int = 20_000                     # gradient steps (phi, skill value, critics, actor together)
    obs_min_span: float = 0.1               # normalizer range floor (see policies.common.normalizer)
    drop_goal_features: bool = True         # zero the slots' has_goal / goal_delta: phi sees states, not tasks
    # -- exploratory data beside the oracle demos (train.demos.collect_exploration), per task --
    explore_episodes: int = 50
    explore_noise: float = 0.3              # noisy-oracle action std, in action units
    random_fraction: float = 0.25           # of explore_episodes: uniformly random actions

    def __post_init__(self):
        self.hidden_dims = tuple(self.hidden_dims)
        self.validate()

    def validate(self) -> None:
        """Raise :class:`~policies.common.config.ConfigError` naming the first invalid field."""
        for name in ("latent_dim", "batch_size", "steps"):
            require(is_int(getattr(self, name), 1), self, name, "an integer >= 1")
        require(is_int(self.explore_episodes, 0), self, "explore_episodes", "an integer >= 0")
        require(bool(self.hidden_dims) and all(is_int(d, 1) for d in self.hidden_dims), self, "hidden_dims",
                "a non-empty list of integers >= 1")
        for name in ("discount", "skill_discount"):
            require(is_number(getattr(self, name)) and 0 < getattr(self, name) < 1, self, name, "a number in (0, 1)")
        for name in ("expectile", "skill_expectile"):
            require(is_number(getattr(self, name)) and 0 < getattr(self, name) < 1, self, name, "a number in (0, 1)")
        require(is_number(self.tau) and 0 < self.tau <= 1, self, "tau", "a number in (0, 1]")
        for name in ("p_future_goal", "p_random_goal", "random_fraction"):
            require(_unit(getattr(self, name)), self, name, "a number in [0, 1]")
        require(abs(self.p_future_goal + self.p_random_goal - 1.0) < 1e-6, self, "p_random_goal",
                f"1 - p_future_goal = {1 - self.p_future_goal:g} (the two goal sources add up to 1)")
        require(is_number(self.skill_temperature) and self.skill_temperature >= 0, self, "skill_temperature",
                "a number >= 0")
        require(is_number(self.lr) and self.lr > 0, self, "lr", "a number > 0")
        require(is_number(self.explore_noise) and self.explore_noise >= 0, self, "explore_noise", "a number >= 0")
        require(is_number(self.obs_min_span) and self.obs_min_span >= 0, self, "obs_min_span", "a number >= 0")
        require(isinstance(self.layer_norm, bool), self, "layer_norm", "true or false")
        require(isinstance(self.drop_goal_features, bool), self, "drop_goal_features", "true or false")


@dataclass
class HILPConfig(HILPParams, JSONConfig):
    """:class:`HILPParams` plus the data's sizes (keyword-only); saved in ``config.json``.
    ``obs_key`` is the observation the policy reads: ``slots`` (task-independent, the default)
    or a single task's ``state`` vector."""

    obs_dim: int = field(kw_only=True)
    action_dim: int = field(kw_only=True)
    obs_key: str = field(default="slots", kw_only=True)

    def validate(self) -> None:
        for name in ("obs_dim", "action_dim"):
            require(is_int(getattr(self, name), 1), self, name, "an integer >= 1")
        require(self.obs_key in ("slots", "state"), self, "obs_key", "slots, state")
        if self.drop_goal_features:
            from envs.core.observation import SLOTS_DIM

            require(self.obs_key == "slots" and self.obs_dim == SLOTS_DIM, self, "drop_goal_features",
                    f"false unless the policy reads slots (obs_dim {SLOTS_DIM})")
        super().validate()

    @classmethod
    def from_params(cls, params: HILPParams, obs_dim: int, action_dim: int, **shapes) -> "HILPConfig":
        return cls(**{f.name: getattr(params, f.name) for f in fields(HILPParams)}, obs_dim=obs_dim,
                   action_dim=action_dim, **shapes)
