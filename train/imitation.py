"""Imitation trainer: a loop that reads top to bottom (AdamW, cosine LR, EMA, checkpoints).

Checkpoints go to ``run_dir/checkpoints/last/``: the EMA policy (``model.safetensors`` +
``config.json``, loadable with ``Policy.from_pretrained``) and ``trainer_state.pt`` (optimizer, LR schedule,
EMA, step, RNG) so a killed run resumes where it stopped.

Under ``accelerate launch`` (an :class:`accelerate.Accelerator` passed in) the same loop runs as
DDP: each process draws its own share of every step's batches (``batch_size`` per process, so the
effective batch is ``batch_size x processes``), gradients are averaged across processes, and the
main process alone writes checkpoints and TensorBoard; every process resumes from the same one.
"""
from __future__ import annotations

import logging
import math
from pathlib import Path

import torch
from diffusers.optimization import get_scheduler
from torch.utils.data import DataLoader
from torch.utils.tensorboard import SummaryWriter
from tqdm.auto import tqdm

from envs.core.fileio import Artifact, atomic_dir, previous_dir
from policies.common.ema import EMAModel
from policies.common.policy import CheckpointDamagedError

log = logging.getLogger(__name__)


class TrainingDiverged(RuntimeError):
    """The loss became NaN/inf; the last good checkpoint is kept."""


# what a save may replace: the previous checkpoint (what a policy's save_pretrained writes, e.g. the
# VLA's dataset_statistics.json beside config.json and model.safetensors, and the trainer state)
CHECKPOINT_ARTIFACT = Artifact("training checkpoint", ("config.json", "model.safetensors", "*.json",
                                                       "trainer_state.pt"))


def checkpoint_dir(run_dir) -> Path:
    return Path(run_dir) / "checkpoints" / "last"


def _save_checkpoint(run_dir, policy, ema, optimizer, lr_sched, step, hook=None) -> None:
    # swapped in whole: a kill leaves either `last` or `last.old` complete
    with atomic_dir(checkpoint_dir(run_dir), CHECKPOINT_ARTIFACT, keep_previous=True) as tmp:
        ema.averaged_model.save_pretrained(tmp)
        extra = {"hook": hook.state_dict()} if hook is not None else {}
        torch.save({"model": policy.state_dict(), "optimizer": optimizer.state_dict(),
                    "lr_scheduler": lr_sched.state_dict(), "ema": ema.state_dict(), "step": step,
                    "torch_rng": torch.get_rng_state(), **extra}, tmp / "trainer_state.pt")


class _Loss(torch.nn.Module):
    """The policy's training loss as ``forward``: DDP averages gradients only for what runs
    through its wrapper's forward, and a policy's own ``forward`` is its inference graph."""

    def __init__(self, policy):
        super().__init__()
        self.policy = policy

    def forward(self, batch):
        return self.policy.compute_loss(batch)


def _infinite(loader):
    while True:
        yield from loader


def train_imitation(policy, dataset, run_dir, steps: int, batch_size: int = 64, lr: float = 1e-4,
                    weight_decay: float = 1e-6, warmup_steps: int = 500, checkpoint_every: int = 1000,
                    log_every: int = 50, seed: int = 0, progress: bool = True, sampler=None,
                    num_workers: int = 0, hook=None, accelerator=None) -> dict:
    """Train ``policy`` (normalizer already fitted) for ``steps`` optimizer steps in total,
    resuming from ``run_dir``'s checkpoint when there is one. Returns loss statistics.

    ``sampler``: how windows are drawn (a multitask dataset's per-task weighted sampler);
    default: shuffled. ``num_workers``: DataLoader worker processes; each opens the HDF5 demo store
    through its own handle (``StoreFile``), and the sampler runs in this process, so per-task
    weights changed between epochs still apply. ``hook``: called as
    ``hook(step, ema_policy)`` after every ``hook.every`` steps (the curriculum,
    :class:`train.curriculum.runner.CurriculumHook`); when it returns True a checkpoint follows,
    and ``hook.state_dict()`` rides in every checkpoint and is restored on resume.
    ``accelerator``: train as one of its processes (DDP, see above); None: this process alone,
    accelerate not imported. Not both: the curriculum re-weights and refills the dataset in one process."""
    if hook is not None and accelerator is not None:
        raise ValueError("a curriculum hook cannot run under accelerate launch (the curriculum runs in one process)")
    run_dir = Path(run_dir)
    main = accelerator is None or accelerator.is_main_process
    processes = 1 if accelerator is None else accelerator.num_processes
    optimizer = torch.optim.AdamW(policy.parameters(), lr=lr, betas=(0.95, 0.999), weight_decay=weight_decay)
    lr_sched = get_scheduler("cosine", optimizer, num_warmup_steps=warmup_steps, num_training_steps=steps)
    ema = EMAModel(policy)
    start = 0
    state_file = checkpoint_dir(run_dir) / "trainer_state.pt"
    if not state_file.exists() and previous_dir(checkpoint_dir(run_dir)).exists():
        state_file = previous_dir(checkpoint_dir(run_dir)) / "trainer_state.pt"  # killed mid-swap
    if state_file.exists():
        try:
            state = torch.load(state_file, weights_only=False)
        except Exception as err:  # noqa: BLE001  (truncated zip, bad pickle: torch raises several kinds)
            raise CheckpointDamagedError(f"{state_file} cannot be read ({type(err).__name__}: {err}); the run "
                                         f"cannot resume from it (delete {state_file.parent} to retrain from "
                                         f"scratch)") from None
        policy.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        lr_sched.load_state_dict(state["lr_scheduler"])
        ema.load_state_dict(state["ema"])
        torch.set_rng_state(state["torch_rng"])
        start = state["step"]
        if hook is not None and "hook" in state:
            hook.load_state_dict(state["hook"])
        log.info("resuming from step %d (%s)", start, state_file.parent)
    else:
        torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed + start)
    # Workers persist (the loader is read epoch after epoch; new workers every epoch would reopen
    # the store), except with a hook: the curriculum may add stores to the dataset mid-run
    # (MultiTaskDataset.add_stores), which only workers started at the next epoch see.
    workers = {"num_workers": num_workers, "persistent_workers": num_workers > 0 and hook is None}
    if sampler is None:
        loader = DataLoader(dataset, batch_size=batch_size, shuffle=True, drop_last=len(dataset) > batch_size,
                            generator=g, **workers)
    else:
        if hasattr(sampler, "epoch"):   # a resumed run continues the epoch sequence, not the first epoch again
            sampler.epoch = start
        loader = DataLoader(dataset, batch_size=batch_size, sampler=sampler, drop_last=len(sampler) > batch_size,
                            **workers)
    loss_of, backward = policy.compute_loss, torch.Tensor.backward
    if accelerator is not None:
        # the scheduler stays unwrapped: it steps once per optimizer step, not once per process
        loss_of, optimizer, loader = accelerator.prepare(_Loss(policy), optimizer, loader)
        backward = accelerator.backward
        torch.manual_seed(seed + 7919 * accelerator.process_index + start)   # each process its own diffusion noise
    log.info("batch size %d per process x %d process%s = %d per optimizer step", batch_size, processes,
             "es" if processes > 1 else "", batch_size * processes)
    batches = _infinite(loader)
    writer = SummaryWriter(str(run_dir / "tb")) if main else None
    policy.train()
    losses, first_losses = [], []
    bar = tqdm(range(start, steps), initial=start, total=steps, desc="train", unit="step",
               disable=not (progress and main))
    for step in bar:
        batch = next(batches)
        loss = loss_of(batch)
        if not math.isfinite(loss.item()):
            if writer is not None:
                writer.close()
            kept = (f"last good checkpoint kept at {checkpoint_dir(run_dir)}" if checkpoint_dir(run_dir).is_dir()
                    else "no checkpoint was saved before it")
            raise TrainingDiverged(f"loss became {loss.item()} at step {step}; {kept} (lower train.lr or check the demos)")
        optimizer.zero_grad(set_to_none=True)
        backward(loss)
        optimizer.step()
        lr_sched.step()
        ema.step(policy)
        losses.append(loss.item())
        if len(first_losses) < 50:
            first_losses.append(loss.item())
        if (step + 1) % log_every == 0 and main:
            avg = sum(losses[-log_every:]) / len(losses[-log_every:])
            writer.add_scalar("train/loss", avg, step + 1)
            writer.add_scalar("train/lr", lr_sched.get_last_lr()[0], step + 1)
            bar.set_postfix(loss=f"{avg:.4f}")
        changed = hook is not None and (step + 1) % hook.every == 0 and hook(step + 1, ema.averaged_model)
        if changed or (step + 1) % checkpoint_every == 0 or step + 1 == steps:
            if main:
                _save_checkpoint(run_dir, policy, ema, optimizer, lr_sched, step + 1, hook)
            if accelerator is not None:
                accelerator.wait_for_everyone()   # no process runs ahead of a checkpoint it may resume from
    if writer is not None:
        writer.close()
    if start >= steps and not checkpoint_dir(run_dir).exists() and main:
        _save_checkpoint(run_dir, policy, ema, optimizer, lr_sched, steps, hook)
    tail = losses[-min(len(losses), 200):]
    return {"start_step": start, "steps": steps, "processes": processes, "effective_batch_size": batch_size * processes,
            "first_loss": (sum(first_losses) / len(first_losses)) if first_losses else None,
            "final_loss": (sum(tail) / len(tail)) if tail else None}
