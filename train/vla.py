"""Runs of the VLA policy: demos of every task with camera images -> one VLA -> evaluation per task.

    python train.py policy=vla env=builtin obs_mode=rgb                            # tiny VLA, CPU
    python train.py policy=vla policy.decoding=parallel policy.chunk_size=8 env=[stack_blocks,push_to_zone] obs_mode=rgb

The VLA sees its cameras (``policy.cameras``: [front] as OpenVLA, [front,wrist] as OpenVLA-OFT) at its own image size and the episode's instruction;
its action statistics (OpenVLA's BOUNDS_Q99 layout) are fitted on the demos and saved with every
checkpoint (``config.json`` and ``dataset_statistics.json``).
"""
from __future__ import annotations

import logging
import time
from pathlib import Path

from train.config import RunConfig

log = logging.getLogger(__name__)

# The issue that asked for the VLA spelled its settings as a top-level ``vla`` group. Every policy's
# settings live in the ``policy`` group (``policy.image_size``, ``policy.total_timesteps``, ...), and
# ``vla=tiny`` beside ``policy=vla`` would be a second place for the same choice, so that spelling
# is refused with the one to use.
_RENAMED = {"vla": "policy.size", "vla.lora.rank": "policy.lora_rank", "vla.lora_rank": "policy.lora_rank",
            "vla.lora.load_in_4bit": "policy.load_in_4bit", "vla.size": "policy.size"}


def renamed_override(argv: list[str]) -> str | None:
    """The error for a ``vla=...`` / ``vla.KEY=...`` override (the issue's spelling), naming the
    ``policy.*`` key that replaces it; None when there is none."""
    for arg in argv:
        key, eq, value = arg.lstrip("+~").partition("=")
        if key != "vla" and not key.startswith("vla."):
            continue
        new = _RENAMED.get(key, "policy." + key[len("vla."):].replace(".", "_"))
        return (f"{arg} is invalid: the VLA's settings live in the policy group; use {new}{eq}{value} "
                f"(with policy=vla; e.g. policy=vla policy.size=tiny policy.decoding=parallel)")
    return None


def run_vla(config: RunConfig, run_dir: Path, tasks: list[str]) -> dict:
    import torch

    from policies import Policy
    from policies.vla import VLAConfig, VLAPolicy
    from train.datasets.multitask import MultiTaskDataset
    from train.imitation import checkpoint_dir, train_imitation
    from train.multitask import collect_run_demos, evaluate_tasks

    tr = config.train
    image_size = VLAConfig.from_params(config.policy).architecture.image_size
    timings = {}
    t = time.time()
    stores, demo_sim = collect_run_demos(config, tasks, image_size=image_size)
    timings["demos_s"] = time.time() - t

    t = time.time()
    cameras = tuple(f"{c}_rgb" for c in config.policy.cameras)
    inputs = (*cameras, "proprio") if config.policy.use_proprio else cameras
    # the store's slots as training targets (never inputs) for the position loss
    targets = ("slots",) if config.policy.aux_position_loss else ()
    dataset = MultiTaskDataset(stores, n_obs_steps=1, horizon=config.policy.chunk_size, obs_keys=inputs,
                               target_keys=targets)
    proprio = dataset.stacked_obs("proprio") if config.policy.use_proprio else None
    torch.manual_seed(config.seed)
    policy = VLAPolicy(VLAConfig.from_params(config.policy, action_dim=dataset.action_dim,
                                             proprio_dim=0 if proprio is None else proprio.shape[1])).to(config.device)
    policy.fit_statistics(dataset.stacked_actions(), num_trajectories=sum(len(s) for s in stores.values()),
                          proprio=proprio)
    log.info("VLA %s (%s decoding, chunk %d) on %d windows over %s", policy.arch.name, config.policy.decoding,
             config.policy.chunk_size, len(dataset), dataset.windows_per_task())
    stats = train_imitation(policy, dataset, run_dir, tr.steps, tr.batch_size, tr.lr, tr.weight_decay,
                            tr.warmup_steps, tr.checkpoint_every, tr.log_every, config.seed, config.progress,
                            sampler=dataset.sampler(seed=config.seed), num_workers=tr.num_workers)
    timings["train_s"] = time.time() - t

    t = time.time()
    policy = Policy.from_pretrained(checkpoint_dir(run_dir), device=config.device)  # the EMA weights
    evaluated = evaluate_tasks(policy, config, run_dir, tasks, image_size=image_size)
    timings["eval_s"] = time.time() - t
    return {**evaluated, "policy_inputs": [*inputs, "instruction"],
            "num_demos": {task: len(store) for task, store in stores.items()}, "demo_sim": demo_sim,
            "train": stats, "timings": timings}
