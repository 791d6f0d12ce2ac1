"""Diffusion policy configuration (defaults follow Chi et al. 2023, scaled down for state tasks)."""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields

BETA_SCHEDULES = ("squaredcos_cap_v2", "linear", "scaled_linear")
PREDICTION_TYPES = ("epsilon", "sample")


@dataclass
class DiffusionConfig:
    """Shapes and schedule of a :class:`~policies.diffusion.modeling.DiffusionPolicy`.

    Time is in control steps (20 Hz in roboforge). The model sees the last ``n_obs_steps``
    observations, denoises a ``horizon``-step action trajectory that starts at the oldest of
    them, and executes ``n_action_steps`` of it starting at the current step before re-planning.
    """

    obs_dim: int
    action_dim: int
    n_obs_steps: int = 2          # observation history fed to the model
    horizon: int = 16             # length of the denoised action trajectory
    n_action_steps: int = 8       # actions executed per prediction (re-planning period)
    down_dims: tuple[int, ...] = (64, 128, 256)   # U-Net channels per resolution
    kernel_size: int = 5
    n_groups: int = 8             # GroupNorm groups
    diffusion_step_embed_dim: int = 128
    num_train_timesteps: int = 100
    num_inference_steps: int = 10  # DDIM steps at inference
    beta_schedule: str = "squaredcos_cap_v2"
    prediction_type: str = "epsilon"
    clip_sample: bool = True       # clip the predicted clean sample to [-1, 1] while sampling
    # Smallest range (raw units: m, rad, quaternion components) an observation dimension is scaled
    # by when normalizing; 0 scales every dimension by its own training range (see Normalizer.fit).
    obs_min_span: float = 0.0

    def __post_init__(self):
        self.down_dims = tuple(self.down_dims)
        self.validate()

    def validate(self) -> None:
        """Raise ``ValueError`` naming the first invalid field and what it allows."""
        def bad(name, allowed):
            raise ValueError(f"DiffusionConfig.{name}={getattr(self, name)!r} is invalid; allowed: {allowed}")

        for name in ("obs_dim", "action_dim", "n_obs_steps", "horizon", "n_action_steps", "kernel_size",
                     "n_groups", "diffusion_step_embed_dim", "num_train_timesteps", "num_inference_steps"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                bad(name, "an integer >= 1")
        if not self.down_dims or any(isinstance(d, bool) or not isinstance(d, int) or d < 1 for d in self.down_dims):
            bad("down_dims", "a non-empty sequence of integers >= 1")
        if self.n_obs_steps > self.horizon:
            bad("n_obs_steps", f"<= horizon ({self.horizon})")
        if self.n_action_steps > self.horizon - self.n_obs_steps + 1:
            bad("n_action_steps", f"<= horizon - n_obs_steps + 1 = {self.horizon - self.n_obs_steps + 1}")
        factor = 2 ** (len(self.down_dims) - 1)
        if self.horizon % factor:
            bad("horizon", f"a multiple of 2 ** (len(down_dims) - 1) = {factor}")
        if self.kernel_size % 2 == 0:
            bad("kernel_size", "an odd integer (the convolutions keep the sequence length)")
        if any(d % self.n_groups for d in self.down_dims):
            bad("n_groups", f"a divisor of every down_dims entry {list(self.down_dims)}")
        if self.diffusion_step_embed_dim % 2 or self.diffusion_step_embed_dim < 4:
            bad("diffusion_step_embed_dim", "an even integer >= 4 (sinusoidal embedding)")
        if self.num_inference_steps > self.num_train_timesteps:
            bad("num_inference_steps", f"<= num_train_timesteps ({self.num_train_timesteps})")
        if self.beta_schedule not in BETA_SCHEDULES:
            bad("beta_schedule", ", ".join(BETA_SCHEDULES))
        if self.prediction_type not in PREDICTION_TYPES:
            bad("prediction_type", ", ".join(PREDICTION_TYPES))
        if not isinstance(self.clip_sample, bool):
            bad("clip_sample", "true or false")
        if isinstance(self.obs_min_span, bool) or not isinstance(self.obs_min_span, (int, float)) or self.obs_min_span < 0:
            bad("obs_min_span", "a number >= 0")

    def to_dict(self) -> dict:
        """JSON-ready dict of every field (``down_dims`` as a list)."""
        d = asdict(self)
        d["down_dims"] = list(self.down_dims)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "DiffusionConfig":
        """Inverse of ``to_dict``; unknown keys are an error rather than silently dropped."""
        names = {f.name for f in fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise ValueError(f"unknown DiffusionConfig fields {sorted(unknown)}; known: {sorted(names)}")
        return cls(**d)
