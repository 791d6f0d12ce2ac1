"""HILP offline training (``python train.py env=builtin policy=hilp obs_mode=slots``): oracle demos
of every task plus exploratory data (noisy oracle and random episodes) -> phi and the latent policy
-> zero-shot goal reaching on unseen seeds; task features (difficulty, novelty) for the curriculum.

Modules: :mod:`train.hilp.data` (goal relabelling), :mod:`train.hilp.trainer` (the loop,
checkpoints, resume), :mod:`train.hilp.goals` (oracle goal states, goal-reaching evaluation),
:mod:`train.hilp.features` (``task_difficulty``, ``task_novelty``, ``task_features``).
"""
from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)


def run_hilp(config, run_dir, tasks: list[str]) -> dict:
    """Demos (+ exploration) of every task in ``tasks`` -> HILP -> goal reaching per task on the
    ``eval`` seeds (goal = the oracle's final state of that seed). Returns train.py's metrics."""
    import torch

    from policies.hilp import HILPConfig, HILPPolicy
    from train.demos import collect_demos_for_tasks, collect_exploration
    from train.hilp.data import GoalDataset, episodes_of
    from train.hilp.goals import reach_goals
    from train.hilp.trainer import checkpoint_dir, train_hilp

    p, data, tr, ev = config.policy, config.data, config.train, config.eval
    run_dir = Path(run_dir)
    sim = data.sim or config.sim.name
    explore = range(data.exploration_seed_start, data.exploration_seed_start + p.explore_episodes)  # checked disjoint
    timings, t = {}, time.time()
    common = dict(sim=sim, obs_mode="slots", control_mode=config.control_mode, progress=config.progress)
    stores = collect_demos_for_tasks(tasks, data.num_demos, data.seed_start, data.store_root, **common)
    explored = [collect_exploration(task, p.explore_episodes, explore.start, data.store_root, action_noise=p.explore_noise,
                                    random_fraction=p.random_fraction, **common)
                for task in tasks] if p.explore_episodes else []
    timings["data_s"] = round(time.time() - t, 2)

    t = time.time()
    dataset = GoalDataset(episodes_of(list(stores.values()) + explored), p.discount, p.p_future_goal, p.p_random_goal)
    torch.manual_seed(config.seed)
    policy = HILPPolicy(HILPConfig.from_params(p, obs_dim=dataset.obs_dim, action_dim=dataset.action_dim))
    policy = policy.to(config.device)
    policy.fit_normalizer(np.concatenate([dataset.obs, dataset.next_obs]))
    log.info("HILP on %d transitions of %d tasks (%d demo + %d exploration episodes)", len(dataset), len(tasks),
             sum(len(s) for s in stores.values()), sum(len(s) for s in explored))
    stats = train_hilp(policy, dataset, run_dir, p.steps, p.batch_size, p.lr, tr.checkpoint_every, tr.log_every,
                       config.seed, config.progress)
    timings["train_s"] = round(time.time() - t, 2)

    t = time.time()
    policy = HILPPolicy.from_pretrained(checkpoint_dir(run_dir), device=config.device)
    seeds = range(ev.seed_start, ev.seed_start + ev.episodes)
    per_task = {task: reach_goals(policy, task, seeds, config.sim.name, config.control_mode, ev.max_episode_steps)
                for task in tasks}
    timings["eval_s"] = round(time.time() - t, 2)
    mean = float(np.mean([r["success_rate"] for r in per_task.values()]))
    return {"success_rate": mean, "tasks": tasks, "evaluation": "zero-shot goal reaching (goal = oracle's final state)",
            "num_episodes": sum(r["num_episodes"] for r in per_task.values()),
            "num_successes": sum(r["num_successes"] for r in per_task.values()),
            "per_task": {task: {k: v for k, v in r.items() if k != "episodes"} | {"episodes": r["num_episodes"]}
                         for task, r in per_task.items()},
            "num_transitions": len(dataset),
            "num_demos": {task: len(s) for task, s in stores.items()},
            "num_exploration": {task: len(s) for task, s in zip(tasks, explored)},
            "train": stats, "timings": timings}
