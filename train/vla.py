"""Runs of the VLA policy: demos of every task with camera images -> one VLA -> evaluation per task.

    python train.py policy=vla env=builtin obs_mode=rgb                            # tiny VLA, CPU
    python train.py policy=vla policy.decoding=parallel policy.chunk_size=8 env=[stack_blocks,push_to_zone] obs_mode=rgb

The VLA sees one camera (``policy.camera``) at its own image size and the episode's instruction;
its action statistics (OpenVLA's BOUNDS_Q99 layout) are fitted on the demos and saved with every
checkpoint (``config.json`` and ``dataset_statistics.json``).
"""
from __future__ import annotations

import logging
import time
from functools import partial
from pathlib import Path

from train.config import RunConfig

log = logging.getLogger(__name__)


def run_vla(config: RunConfig, run_dir: Path, tasks: list[str]) -> dict:
    import gymnasium as gym
    import torch

    import envs
    from policies import Policy
    from policies.vla import VLAConfig, VLAPolicy
    from train.datasets.multitask import MultiTaskDataset
    from train.demos import collect_demos_for_tasks
    from train.evaluate import evaluate
    from train.imitation import checkpoint_dir, train_imitation
    from train.multitask import _log_per_task, check_action_spaces, task_action_spaces

    data, tr, ev = config.data, config.train, config.eval
    image_size = VLAConfig.from_params(config.policy).architecture.image_size
    limit_kw = {"max_episode_steps": ev.max_episode_steps} if ev.max_episode_steps else {}
    timings = {}
    t = time.time()
    check_action_spaces(task_action_spaces(tasks, config.sim.name, config.control_mode))
    demo_sim = data.sim or config.sim.name
    stores = collect_demos_for_tasks(tasks, data.num_demos, data.seed_start, data.store_root, sim=demo_sim,
                                     obs_mode=config.obs_mode, control_mode=config.control_mode,
                                     progress=config.progress, image_size=image_size)
    timings["demos_s"] = time.time() - t

    t = time.time()
    camera = f"{config.policy.camera}_rgb"
    dataset = MultiTaskDataset(stores, n_obs_steps=1, horizon=config.policy.chunk_size, obs_keys=(camera,))
    torch.manual_seed(config.seed)
    policy = VLAPolicy(VLAConfig.from_params(config.policy, action_dim=dataset.action_dim)).to(config.device)
    policy.fit_statistics(dataset.stacked_actions(), num_trajectories=sum(len(s) for s in stores.values()))
    log.info("VLA %s (%s decoding, chunk %d) on %d windows over %s", policy.arch.name, config.policy.decoding,
             config.policy.chunk_size, len(dataset), dataset.windows_per_task())
    stats = train_imitation(policy, dataset, run_dir, tr.steps, tr.batch_size, tr.lr, tr.weight_decay,
                            tr.warmup_steps, tr.checkpoint_every, tr.log_every, config.seed, config.progress,
                            sampler=dataset.sampler(seed=config.seed), num_workers=tr.num_workers)
    timings["train_s"] = time.time() - t

    t = time.time()
    policy = Policy.from_pretrained(checkpoint_dir(run_dir), device=config.device)  # the EMA weights
    seeds = list(range(ev.seed_start, ev.seed_start + ev.episodes))
    per_task, results = {}, {}
    for task in tasks:
        make_env = partial(gym.make, envs.env_id(task), sim=config.sim.name, obs_mode=config.obs_mode,
                           control_mode=config.control_mode, image_size=image_size, **limit_kw)
        video_dir = run_dir / "videos" / task if len(tasks) > 1 else run_dir / "videos"
        r = evaluate(policy, make_env, seeds, video_dir, ev.num_videos, progress=config.progress,
                     video_size=tuple(ev.video_size), run_seed=config.seed)
        results[task] = r
        per_task[task] = {"success_rate": r["success_rate"], "episodes": r["num_episodes"], "seeds": seeds,
                          "num_successes": r["num_successes"], "mean_return": r["mean_return"],
                          "mean_length": r["mean_length"], "videos": r["videos"]}
    timings["eval_s"] = time.time() - t
    _log_per_task(run_dir, per_task, tr.steps)
    mean = sum(p["success_rate"] for p in per_task.values()) / len(per_task)
    return {"success_rate": mean, "tasks": tasks,
            "num_episodes": sum(r["num_episodes"] for r in results.values()),
            "num_successes": sum(r["num_successes"] for r in results.values()),
            "per_task": per_task, "policy_inputs": [camera, "instruction"],
            "num_demos": {task: len(store) for task, store in stores.items()}, "demo_sim": demo_sim,
            "train": stats, "timings": timings}
