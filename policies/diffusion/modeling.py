"""Diffusion policy (Chi et al., RSS 2023): denoise an action trajectory conditioned on recent states.

Training noises normalized action trajectories with diffusers' ``DDPMScheduler`` and learns to
predict the noise. Acting samples with the DDIM schedule of diffusers' ``DDIMScheduler`` (same
betas) in ``num_inference_steps`` steps and executes ``n_action_steps`` actions before re-planning.

Time indexing (diffusion_policy's): with ``To = n_obs_steps``, the observation window is steps
``t-To+1 .. t`` and the trajectory covers ``horizon`` steps from ``t-To+1``; the executed chunk is
``traj[:, To-1 : To-1+n_action_steps]``, i.e. it starts at the current step ``t``.
"""
from __future__ import annotations

from collections import deque

import numpy as np
import torch
import torch.nn.functional as F
from diffusers import DDIMScheduler, DDPMScheduler

from policies.common.normalizer import Normalizer
from policies.common.policy import Policy, register_policy
from policies.diffusion.configuration import DiffusionConfig
from policies.diffusion.unet1d import ConditionalUnet1D


@register_policy("diffusion")
class DiffusionPolicy(Policy):
    """State-based diffusion policy on the common surface (``act``, ``reset``, ``save``, ``load``).

    Modules: ``obs_normalizer`` (obs_dim), ``action_normalizer`` (action_dim), ``model`` (the U-Net).
    Observations and actions are raw (unnormalized) everywhere in the public API.
    """

    config_class = DiffusionConfig

    def __init__(self, config: DiffusionConfig):
        super().__init__(config)
        c = config
        self.obs_normalizer = Normalizer(c.obs_dim)
        self.action_normalizer = Normalizer(c.action_dim)
        self.model = ConditionalUnet1D(c.action_dim, c.n_obs_steps * c.obs_dim, c.down_dims, c.kernel_size,
                                       c.n_groups, c.diffusion_step_embed_dim)
        schedule = dict(num_train_timesteps=c.num_train_timesteps, beta_schedule=c.beta_schedule,
                        clip_sample=c.clip_sample, prediction_type=c.prediction_type)
        self.noise_scheduler = DDPMScheduler(**schedule)
        # diffusion_policy's inference settings: the last step lands on the clean sample (alpha=1).
        self.inference_scheduler = DDIMScheduler(**schedule, set_alpha_to_one=True, steps_offset=0)
        self.inference_scheduler.set_timesteps(c.num_inference_steps)
        self._register_ddim_schedule()
        self.reset()

    def _register_ddim_schedule(self) -> None:
        """Per-step DDIM constants as (non-persistent) buffers: the sampling loop is then plain
        tensor arithmetic with a fixed length, traceable for export and on the policy's device.
        Matches ``DDIMScheduler.step`` with eta=0 (checked in the tests)."""
        sched = self.inference_scheduler
        timesteps = sched.timesteps.long()
        prev = timesteps - sched.config.num_train_timesteps // sched.num_inference_steps
        alphas = sched.alphas_cumprod
        alpha_prev = torch.where(prev >= 0, alphas[prev.clamp_min(0)], sched.final_alpha_cumprod)
        self.register_buffer("ddim_timesteps", timesteps, persistent=False)
        self.register_buffer("ddim_alpha", alphas[timesteps].float(), persistent=False)
        self.register_buffer("ddim_alpha_prev", alpha_prev.float(), persistent=False)

    # -- training --------------------------------------------------------------------------
    def fit_normalizer(self, obs: np.ndarray, actions: np.ndarray) -> None:
        """Fit both normalizers on raw training data: obs (N, obs_dim), actions (N, action_dim)."""
        self.obs_normalizer.fit(obs, min_span=self.config.obs_min_span)
        self.action_normalizer.fit(actions)

    def compute_loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Denoising loss (scalar). ``batch["obs"]`` (B, n_obs_steps, obs_dim) and ``batch["action"]``
        (B, horizon, action_dim), raw float values on the policy's device (moved if not)."""
        c = self.config
        obs, actions = batch["obs"].to(self.device), batch["action"].to(self.device)
        self._check_shape("batch['obs']", obs, (c.n_obs_steps, c.obs_dim))
        self._check_shape("batch['action']", actions, (c.horizon, c.action_dim))
        cond = self.obs_normalizer.normalize(obs).flatten(1)
        clean = self.action_normalizer.normalize(actions)
        noise = torch.randn_like(clean)
        t = torch.randint(0, c.num_train_timesteps, (clean.shape[0],), device=clean.device)
        noisy = self.noise_scheduler.add_noise(clean, noise, t)
        pred = self.model(noisy, t, cond)
        target = noise if c.prediction_type == "epsilon" else clean
        return F.mse_loss(pred, target)

    # -- sampling --------------------------------------------------------------------------
    def _ddim_step(self, k: int, model_output: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """x_t -> x_{t_prev} for step ``k`` of the DDIM schedule (deterministic, eta = 0)."""
        a_t, a_prev = self.ddim_alpha[k], self.ddim_alpha_prev[k]
        if self.config.prediction_type == "epsilon":
            eps = model_output
            x0 = (x - (1 - a_t) ** 0.5 * eps) / a_t ** 0.5
        else:  # "sample"
            x0 = model_output
            eps = (x - a_t ** 0.5 * x0) / (1 - a_t) ** 0.5
        if self.config.clip_sample:
            x0 = x0.clamp(-1.0, 1.0)  # normalized actions live in [-1, 1]
        return a_prev ** 0.5 * x0 + (1 - a_prev) ** 0.5 * eps

    @torch.no_grad()
    def sample_trajectory(self, cond: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """DDIM from ``noise`` (B, horizon, action_dim) given the flattened normalized observation
        history ``cond`` (B, n_obs_steps * obs_dim) -> normalized trajectory (B, horizon, action_dim)."""
        x = noise
        for k in range(self.config.num_inference_steps):  # a fixed python count: unrolls when traced
            x = self._ddim_step(k, self.model(x, self.ddim_timesteps[k], cond), x)
        return x

    @torch.no_grad()
    def predict_action_chunk(self, obs_hist: torch.Tensor, noise: torch.Tensor | None = None) -> torch.Tensor:
        """Raw observations (B, n_obs_steps, obs_dim), oldest first -> raw actions
        (B, n_action_steps, action_dim), the first to be applied now.

        ``noise`` (B, horizon, action_dim) is the initial latent; giving it makes the result
        deterministic (no other randomness), e.g. to compare an exported graph with this one.
        """
        c = self.config
        obs_hist = obs_hist.to(device=self.device, dtype=torch.float32)
        self._check_shape("obs_hist", obs_hist, (c.n_obs_steps, c.obs_dim))
        shape = (obs_hist.shape[0], c.horizon, c.action_dim)
        if noise is None and self._noise_generators is not None:
            if len(self._noise_generators) != shape[0]:
                raise ValueError(f"reset(noise_seeds=...) gave {len(self._noise_generators)} seeds for a batch of {shape[0]}")
            noise = torch.stack([torch.randn(shape[1:], generator=g) for g in self._noise_generators])
        elif noise is None:
            noise = torch.randn(shape, device=obs_hist.device)
        elif not torch.jit.is_tracing() and tuple(noise.shape) != shape:
            raise ValueError(f"noise has shape {tuple(noise.shape)}; expected {shape} = (batch, horizon, action_dim)")
        cond = self.obs_normalizer.normalize(obs_hist).flatten(1)
        traj = self.sample_trajectory(cond, noise.to(obs_hist))
        start = c.n_obs_steps - 1  # the trajectory starts at the oldest observation; act from the current one
        return self.action_normalizer.unnormalize(traj[:, start:start + c.n_action_steps])

    def forward(self, obs_hist: torch.Tensor, noise: torch.Tensor | None = None) -> torch.Tensor:
        """Same as :meth:`predict_action_chunk` (the graph an exporter traces)."""
        return self.predict_action_chunk(obs_hist, noise)

    def export_spec(self):
        """The whole sampler as one graph: normalize -> ``num_inference_steps`` DDIM steps ->
        unnormalize, with the initial noise as an input (see :mod:`policies.export`)."""
        from policies.common.export_spec import ExportSpec

        c = self.config
        minmax = lambda n: {"low": n.low.tolist(), "high": n.high.tolist()}  # noqa: E731
        return ExportSpec(
            module=self, obs_dim=c.obs_dim, action_dim=c.action_dim, n_obs_steps=c.n_obs_steps,
            n_action_steps=c.n_action_steps, noise_shape=(c.horizon, c.action_dim),
            normalization={"baked_into_graph": True,
                           "method": "per-dimension min/max of the training data -> [-1, 1]; a dimension "
                                     "whose range was < 1e-4 is only centred",
                           "observation": minmax(self.obs_normalizer), "action": minmax(self.action_normalizer)},
            extra={"sampler": {"type": "DDIM", "eta": 0.0, "num_inference_steps": c.num_inference_steps,
                               "num_train_timesteps": c.num_train_timesteps, "beta_schedule": c.beta_schedule,
                               "prediction_type": c.prediction_type, "clip_sample": c.clip_sample,
                               "horizon": c.horizon, "noise": "standard normal (batch, horizon, action_dim); "
                                                             "draw fresh noise for every call",
                               "chunk_offset": c.n_obs_steps - 1}})

    # -- acting ----------------------------------------------------------------------------
    def reset(self, noise_seeds: list[int] | None = None) -> None:
        """Start of an episode: clear the observation history and the queued actions.

        ``noise_seeds`` (one int per batch row) gives each row its own sampler noise stream (a CPU
        ``torch.Generator``), so an episode's actions depend on its seed only, not on the global
        RNG or on the other rows of the batch. Without it the sampler draws from the global RNG.
        """
        self._obs_history: deque[np.ndarray] = deque(maxlen=self.config.n_obs_steps)
        self._action_queue: deque[np.ndarray] = deque()
        self._noise_generators = (None if noise_seeds is None else
                                  [torch.Generator().manual_seed(int(s)) for s in noise_seeds])

    def act(self, obs: np.ndarray) -> np.ndarray:
        """Raw observation (obs_dim,) -> action (action_dim,) float32 to apply now.

        A batch (B, obs_dim) -> (B, action_dim) is accepted too, for B environments stepped in
        lockstep (they share the re-planning schedule). A dict observation is read through its
        ``"state"`` entry. A new chunk is predicted every ``n_action_steps`` calls; after
        ``reset()`` the history is padded with the first observation.
        """
        if isinstance(obs, dict):
            obs = obs["state"]
        obs = np.array(obs, dtype=np.float32)  # a copy: callers may reuse their buffer in place
        single = obs.ndim == 1
        batch = obs[None] if single else obs
        if batch.ndim != 2 or batch.shape[1] != self.config.obs_dim:
            raise ValueError(f"observation has shape {obs.shape}; this policy expects ({self.config.obs_dim},) "
                             f"or (batch, {self.config.obs_dim}), the flat state observation it was trained on")
        if self._obs_history and self._obs_history[-1].shape[0] != batch.shape[0]:
            raise ValueError(f"batch size changed from {self._obs_history[-1].shape[0]} to {batch.shape[0]} "
                             f"within an episode; call policy.reset() first")
        if not self._obs_history:
            self._obs_history.extend([batch] * self.config.n_obs_steps)
        else:
            self._obs_history.append(batch)
        if not self._action_queue:
            hist = torch.from_numpy(np.stack(self._obs_history, axis=1))           # (B, To, obs_dim)
            chunk = self.predict_action_chunk(hist).cpu().numpy()                   # (B, n, action_dim)
            self._action_queue.extend(chunk.transpose(1, 0, 2).astype(np.float32))  # n x (B, action_dim)
        action = self._action_queue.popleft()
        return action[0] if single else action

    @staticmethod
    def _check_shape(name: str, x: torch.Tensor, tail: tuple[int, ...]) -> None:
        if torch.jit.is_tracing():  # shapes are fixed by the example inputs there
            return
        if x.ndim != len(tail) + 1 or tuple(x.shape[1:]) != tail:
            raise ValueError(f"{name} has shape {tuple(x.shape)}; expected (batch, {', '.join(map(str, tail))})")
