"""Diffusion policy configuration (defaults follow Chi et al. 2023, scaled down for state tasks).

``DiffusionParams`` holds what a person chooses (the ``policy=diffusion`` group of ``train.py``);
``DiffusionConfig`` adds the observation and action sizes, which the demonstrations fix at run
time, and is what a :class:`~policies.diffusion.modeling.DiffusionPolicy` is built from and saves.
"""
from __future__ import annotations

from dataclasses import dataclass, field, fields

from policies.common.config import JSONConfig, is_int, require

BETA_SCHEDULES = ("squaredcos_cap_v2", "linear", "scaled_linear")
PREDICTION_TYPES = ("epsilon", "sample")


@dataclass
class DiffusionParams:
    """Hyper-parameters of a diffusion policy: everything but the data's shapes.

    Time is in control steps (20 Hz in roboforge). The model sees the last ``n_obs_steps``
    observations, denoises a ``horizon``-step action trajectory that starts at the oldest of
    them, and executes ``n_action_steps`` of it starting at the current step before re-planning.
    """

    n_obs_steps: int = 2          # observation history fed to the model
    horizon: int = 16             # length of the denoised action trajectory
    n_action_steps: int = 8       # actions executed per prediction (re-planning period)
    down_dims: tuple[int, ...] = (32, 64, 128)   # U-Net channels per resolution
    kernel_size: int = 5
    n_groups: int = 8             # GroupNorm groups
    diffusion_step_embed_dim: int = 64
    num_train_timesteps: int = 100
    num_inference_steps: int = 10  # DDIM steps at inference
    beta_schedule: str = "squaredcos_cap_v2"
    prediction_type: str = "epsilon"
    clip_sample: bool = True       # clip the predicted clean sample to [-1, 1] while sampling

    def __post_init__(self):
        self.down_dims = tuple(self.down_dims)
        self.validate()

    def validate(self) -> None:
        """Raise :class:`~policies.common.config.ConfigError` naming the first invalid field and
        what it allows."""
        for name in ("n_obs_steps", "horizon", "n_action_steps", "kernel_size", "n_groups",
                     "diffusion_step_embed_dim", "num_train_timesteps", "num_inference_steps"):
            require(is_int(getattr(self, name), 1), self, name, "an integer >= 1")
        require(bool(self.down_dims) and all(is_int(d, 1) for d in self.down_dims), self, "down_dims",
                "a non-empty sequence of integers >= 1")
        require(self.n_obs_steps <= self.horizon, self, "n_obs_steps", f"<= horizon ({self.horizon})")
        require(self.n_action_steps <= self.horizon - self.n_obs_steps + 1, self, "n_action_steps",
                f"<= horizon - n_obs_steps + 1 = {self.horizon - self.n_obs_steps + 1}")
        factor = 2 ** (len(self.down_dims) - 1)
        require(self.horizon % factor == 0, self, "horizon", f"a multiple of 2 ** (len(down_dims) - 1) = {factor}")
        require(self.kernel_size % 2 == 1, self, "kernel_size",
                "an odd integer (the convolutions keep the sequence length)")
        require(all(d % self.n_groups == 0 for d in self.down_dims), self, "n_groups",
                f"a divisor of every down_dims entry {list(self.down_dims)}")
        require(self.diffusion_step_embed_dim % 2 == 0 and self.diffusion_step_embed_dim >= 4, self,
                "diffusion_step_embed_dim", "an even integer >= 4 (sinusoidal embedding)")
        require(self.num_inference_steps <= self.num_train_timesteps, self, "num_inference_steps",
                f"<= num_train_timesteps ({self.num_train_timesteps})")
        require(self.beta_schedule in BETA_SCHEDULES, self, "beta_schedule", ", ".join(BETA_SCHEDULES))
        require(self.prediction_type in PREDICTION_TYPES, self, "prediction_type", ", ".join(PREDICTION_TYPES))
        require(isinstance(self.clip_sample, bool), self, "clip_sample", "true or false")


@dataclass
class DiffusionConfig(DiffusionParams, JSONConfig):
    """Shapes and schedule of a :class:`~policies.diffusion.modeling.DiffusionPolicy`:
    :class:`DiffusionParams` plus ``obs_dim`` and ``action_dim`` (keyword-only). Saved in the
    policy's ``config.json`` (``to_dict`` / ``from_dict``)."""

    obs_dim: int = field(kw_only=True)      # flat state observation size
    action_dim: int = field(kw_only=True)

    def validate(self) -> None:
        for name in ("obs_dim", "action_dim"):
            require(is_int(getattr(self, name), 1), self, name, "an integer >= 1")
        super().validate()

    @classmethod
    def from_params(cls, params: DiffusionParams, obs_dim: int, action_dim: int) -> "DiffusionConfig":
        """The config of a policy with hyper-parameters ``params`` for data of these sizes."""
        return cls(**{f.name: getattr(params, f.name) for f in fields(DiffusionParams)},
                   obs_dim=obs_dim, action_dim=action_dim)
