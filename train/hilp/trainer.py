"""HILP trainer: one loop that reads top to bottom (sample relabelled goals, value loss, latent
losses, one Adam step, Polyak targets), with checkpoints that resume.

``run_dir/checkpoints/last/`` holds the policy (``config.json`` + ``model.safetensors``, read by
``Policy.from_pretrained``) and ``trainer_state.pt`` (optimizer, step, torch and numpy RNG), so a
killed run continues where it stopped and draws the same batches it would have.
"""
from __future__ import annotations

import logging
import math
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils.tensorboard import SummaryWriter
from tqdm.auto import tqdm

from envs.core.fileio import atomic_dir, previous_dir
from policies.hilp import HILPPolicy
from train.hilp.data import GoalDataset
# one checkpoint layout and one divergence error for every trainer (train.py reports the latter in one line)
from train.imitation import CHECKPOINT_ARTIFACT, TrainingDiverged, checkpoint_dir  # noqa: F401

log = logging.getLogger(__name__)


def _save(run_dir, policy, optimizer, step: int, rng: np.random.Generator) -> None:
    with atomic_dir(checkpoint_dir(run_dir), CHECKPOINT_ARTIFACT, keep_previous=True) as tmp:   # a kill leaves last or last.old whole
        policy.save_pretrained(tmp)
        torch.save({"optimizer": optimizer.state_dict(), "step": step, "torch_rng": torch.get_rng_state(),
                    "numpy_rng": rng.bit_generator.state}, tmp / "trainer_state.pt")


def _find_state(run_dir) -> Path | None:
    for d in (checkpoint_dir(run_dir), previous_dir(checkpoint_dir(run_dir))):
        if (d / "trainer_state.pt").exists():
            return d
    return None


def train_hilp(policy: HILPPolicy, dataset: GoalDataset, run_dir, steps: int, batch_size: int = 256,
               lr: float = 3e-4, checkpoint_every: int = 1000, log_every: int = 100, seed: int = 0,
               progress: bool = True) -> dict:
    """Train ``policy`` (normalizer fitted) on ``dataset`` up to ``steps`` gradient steps in all,
    resuming from ``run_dir``'s checkpoint when there is one. Each step: a batch of relabelled
    goals for the phi value loss and random unit latents for the latent policy's losses, summed
    into one Adam step (as HILP), then the target copies move by ``tau``. Returns loss figures."""
    run_dir = Path(run_dir)
    device = policy.device
    optimizer = torch.optim.Adam(policy.trainable_parameters(), lr=lr)
    rng, start = np.random.default_rng(seed), 0
    found = _find_state(run_dir)
    if found is not None:
        state = torch.load(found / "trainer_state.pt", map_location=device, weights_only=False)
        saved = HILPPolicy.from_pretrained(found, device=device)
        policy.load_state_dict(saved.state_dict())
        optimizer.load_state_dict(state["optimizer"])
        torch.set_rng_state(state["torch_rng"])
        rng.bit_generator.state = state["numpy_rng"]
        start = int(state["step"])
        log.info("resuming HILP training from step %d (%s)", start, found)
    else:
        torch.manual_seed(seed)
    policy.train()
    writer = SummaryWriter(str(run_dir / "tb"))
    figures, t0 = {}, time.perf_counter()
    bar = tqdm(range(start, steps), desc="hilp", unit="step", disable=not progress, initial=start, total=steps)
    for step in bar:
        batch = {k: torch.as_tensor(v, device=device) for k, v in dataset.sample(batch_size, rng).items()}
        value_loss, info = policy.value_loss(batch["obs"], batch["next_obs"], batch["goals"], batch["success"])
        z = torch.randn(batch_size, policy.config.latent_dim, device=device)
        z = z / z.norm(dim=-1, keepdim=True)
        latent_loss, latent_info = policy.latent_losses(batch["obs"], batch["actions"], batch["next_obs"], z)
        loss = value_loss + latent_loss
        if not math.isfinite(loss.item()):
            writer.close()
            raise TrainingDiverged(f"HILP loss became {loss.item()} at step {step}; last good checkpoint kept at "
                                   f"{checkpoint_dir(run_dir)} (lower policy.lr)")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        policy.update_targets()
        figures = {**info, **latent_info}
        if (step + 1) % log_every == 0:
            for k, v in figures.items():
                writer.add_scalar(k, v, step + 1)
            bar.set_postfix(value=f"{info['value/loss']:.3f}", actor=f"{latent_info['latent/actor_loss']:.2f}")
        if (step + 1) % checkpoint_every == 0 or step + 1 == steps:
            _save(run_dir, policy, optimizer, step + 1, rng)
    bar.close()
    writer.close()
    if _find_state(run_dir) is None:   # nothing left to train (steps <= start) and nothing saved yet
        _save(run_dir, policy, optimizer, max(start, steps), rng)
    policy.eval()
    wall = time.perf_counter() - t0
    return {"steps": steps, "steps_this_run": max(steps - start, 0), "resumed_from": start,
            "train_wall_s": round(wall, 2), "final": {k: round(v, 5) for k, v in figures.items()}}
