"""``accelerate launch`` for ``train.py``: DDP over N processes (N GPUs with nccl; on CPU gloo).

``accelerate launch --multi_gpu --num_processes N train.py ...`` (torchrun underneath) starts N
copies of the run; each finds ``WORLD_SIZE`` > 1 and makes an :class:`accelerate.Accelerator`
(``cpu=True`` for ``device=cpu``: gloo). They share the main process's run directory; the main
process collects the demos first (the others then read its cache), all train (the trainer
shards the batches and averages gradients), and the main process alone writes checkpoints,
evaluates and writes metrics. A plain ``python train.py`` never imports accelerate.
"""
from __future__ import annotations

import contextlib
import os
from pathlib import Path


def launched() -> bool:
    """Whether this process is one of several started by a distributed launcher."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def make_accelerator(device: str):
    """An Accelerator when launched as one of several processes, else None (one process, as always)."""
    if not launched():
        return None
    from accelerate import Accelerator

    return Accelerator(cpu=device == "cpu")


def is_main(accelerator) -> bool:
    return accelerator is None or accelerator.is_main_process


def shared_run_dir(accelerator, run_dir: Path) -> Path:
    """The main process's run directory, on every process (Hydra names it by the second each
    process started in, which may differ)."""
    if accelerator is None:
        return run_dir
    from accelerate.utils import broadcast_object_list

    box = [str(run_dir)]
    broadcast_object_list(box)
    return Path(box[0])


def main_first(accelerator):
    """A block the main process runs before the others (demo collection: they then reuse its cache)."""
    return contextlib.nullcontext() if accelerator is None else accelerator.main_process_first()
