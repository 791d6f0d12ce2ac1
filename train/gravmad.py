"""GravMAD runs (``policy=gravmad``, docs/gravmad.md): point-cloud demos of every task, their
sub-goals discovered as keyposes, one GravMAD policy, evaluation per task with test-time sub-goals
from ``subgoals=manual|offline|llm``.

    python train.py policy=gravmad env=[stack_blocks,place_in_zone] obs_mode=pointcloud
    python train.py policy=gravmad env=builtin obs_mode=pointcloud subgoals=offline

Training sub-goals: each demonstration is replayed on a ``state`` env (same seed and actions; the
replay is checked against the stored proprio) to read the finger contacts, its keyposes are
discovered (:func:`planners.subgoals.discover_keyposes`) and every step is labelled with the
keypose it heads for (:func:`planners.subgoals.subgoal_array`).
"""
from __future__ import annotations

import logging
import time
from functools import partial
from pathlib import Path

import numpy as np

from train.config import RunConfig
from train.datasets.multitask import MultiTaskDataset

log = logging.getLogger(__name__)


class SubGoalDataset(MultiTaskDataset):
    """:class:`MultiTaskDataset` windows plus ``obs["subgoal"]`` (n_obs_steps, 4): the sub-goal
    label of each observation step. ``subgoals``: one (T, 4) array per episode, in the order of
    the stores' episodes."""

    def __init__(self, stores, n_obs_steps: int, horizon: int, obs_keys, subgoals: list[np.ndarray]):
        super().__init__(stores, n_obs_steps, horizon, obs_keys=obs_keys)
        import torch

        lengths = [len(a) for a in self.sequences.actions]
        if [len(s) for s in subgoals] != lengths:
            raise ValueError(f"sub-goal labels have {[len(s) for s in subgoals]} steps; the episodes have {lengths}")
        self.subgoals = [torch.from_numpy(np.asarray(s, np.float32)) for s in subgoals]

    def __getitem__(self, k: int) -> dict:
        sample = super().__getitem__(k)
        i, obs_idx, _ = self.sequences.window(k)
        sample["obs"]["subgoal"] = self.subgoals[i][obs_idx]
        return sample


def label_subgoals(stores: dict, sim: str, control_mode: str) -> list[np.ndarray]:
    """Per episode of ``stores`` ({task: DemoStore}, in order), (T, 4) sub-goal labels from its
    discovered keyposes (replayed on a ``state`` env of its task for the contact signal)."""
    import gymnasium as gym

    import envs
    from envs.core import observation as ob
    from planners.subgoals import discover_keyposes, replay_signals, subgoal_array

    labels = []
    for task, store in stores.items():
        env = gym.make(envs.env_id(task), sim=sim, obs_mode="state", control_mode=control_mode)
        for ep in store.episodes:
            proprio = ep.proprio if ep.proprio is not None else np.asarray(ep.obs)[:, :ob.AGENT_DIM]
            signals = replay_signals(env, ep.seed, np.asarray(ep.actions), proprio, ep.instruction)
            labels.append(subgoal_array(discover_keyposes(signals), len(ep.actions)))
        env.close()
    return labels


def gravmad_env(task: str, config: RunConfig, provider=None, **env_kw):
    """A ``make_env(**kw)`` for evaluation: the task's env on ``obs_mode=pointcloud`` with the
    current sub-goal of ``provider`` (default ``config.subgoals``) in its observation."""
    import gymnasium as gym

    import envs
    from planners.subgoals import SubGoalObservation

    def make(**kw):
        env = gym.make(envs.env_id(task), sim=config.sim.name, obs_mode=config.obs_mode,
                       control_mode=config.control_mode, **env_kw, **kw)
        return SubGoalObservation(env, provider or config.subgoals)
    return make


def run_gravmad(config: RunConfig, run_dir: Path, tasks: list[str], accelerator=None) -> dict:
    """Demos -> keypose sub-goal labels -> GravMAD training -> evaluation per task (lockstep
    batches, sub-goals from ``config.subgoals``)."""
    import torch

    from policies import Policy
    from policies.gravmad import GravMADConfig, GravMADPolicy
    from train.imitation import checkpoint_dir, train_imitation
    from train.multitask import collect_run_demos, evaluate_tasks, policy_inputs

    tr, ev = config.train, config.eval
    limit_kw = {"max_episode_steps": ev.max_episode_steps} if ev.max_episode_steps else {}
    timings = {}
    t = time.time()
    stores, demo_sim = collect_run_demos(config, tasks)
    timings["demos_s"] = time.time() - t
    t = time.time()
    labels = label_subgoals(stores, demo_sim, config.control_mode)
    timings["keyposes_s"] = time.time() - t

    t = time.time()
    inputs = policy_inputs(config, len(tasks))
    inputs.pop("pointcloud")
    obs_keys = ("pointcloud", inputs["obs_key"])
    dataset = SubGoalDataset(stores, config.policy.n_obs_steps, config.policy.horizon, obs_keys, labels)
    vectors = dataset.stacked_obs(inputs["obs_key"])
    inputs["pointcloud_dim"] = next(iter(stores.values())).episodes[0].images["pointcloud"].shape[-1]
    policy_config = GravMADConfig.from_params(config.policy, obs_dim=vectors.shape[1],
                                              action_dim=dataset.action_dim, **inputs)
    torch.manual_seed(config.seed)
    policy = GravMADPolicy(policy_config).to(config.device)
    policy.fit_normalizer(vectors, dataset.stacked_actions())
    log.info("GravMAD reads %s + subgoal%s; %d windows over %s", list(policy_config.obs_keys),
             " + instruction" if policy_config.reads_instruction else "", len(dataset), dataset.windows_per_task())
    stats = train_imitation(policy, dataset, run_dir, tr.steps, tr.batch_size, tr.lr, tr.weight_decay,
                            tr.warmup_steps, tr.checkpoint_every, tr.log_every, config.seed, config.progress,
                            sampler=dataset.sampler(seed=config.seed), num_workers=tr.num_workers,
                            accelerator=accelerator)
    timings["train_s"] = time.time() - t

    t = time.time()
    policy = Policy.from_pretrained(checkpoint_dir(run_dir), device=config.device)
    evaluated = evaluate_tasks(policy, config, run_dir, tasks,
                               make_env=lambda task: gravmad_env(task, config, **limit_kw))
    timings["eval_s"] = time.time() - t
    return {**evaluated, "subgoals": config.subgoals,
            "policy_inputs": list(policy_config.obs_keys) + ["subgoal"]
            + (["instruction"] if policy_config.reads_instruction else []),
            "num_demos": {task: len(store) for task, store in stores.items()}, "demo_sim": demo_sim,
            "demo_stores": {task: str(store.path) for task, store in stores.items()},
            "train": stats, "timings": timings}
