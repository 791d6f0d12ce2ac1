"""Runs of one diffusion policy over several tasks, or over what the state vector cannot carry
(``slots``, cameras, language): which tasks ``env=`` names, their demos, training, and evaluation
per task.

    python train.py env=[stack_blocks,place_in_zone,push_to_zone] obs_mode=slots
    python train.py env=builtin obs_mode=slots          # every built-in task (+ library= tasks)
    python train.py env=stack_blocks obs_mode=rgb       # visuomotor: front + wrist cameras + proprio
    python train.py env=stack_blocks obs_mode=pointcloud   # the point cloud from those cameras + proprio

A single-task ``state`` run without ``policy.use_instruction=true`` does not come here: it keeps
the flat-vector path of ``train.py`` (same config, same numbers as before).
"""
from __future__ import annotations

import logging
import time
from functools import partial
from pathlib import Path
from typing import Mapping, Sequence

from envs.core import CAMERAS
from envs.registry import is_builtin, resolve_tasks  # noqa: F401  (train.py and tests read them here)
from envs.core.observation import IMAGE_OBS_MODES
from train.config import RunConfig
from train.datasets.multitask import IncompatibleTasksError

log = logging.getLogger(__name__)

INSTRUCTION_ENCODER = "all-MiniLM-L6-v2"   # policies.diffusion.configuration.INSTRUCTION_ENCODERS


def check_action_spaces(spaces: Mapping[str, object]) -> None:
    """Refuse tasks whose action spaces (``{task: gym Box}``) differ: one policy emits one kind
    of action. Raises :class:`IncompatibleTasksError` naming the groups and their spaces."""
    import numpy as np

    groups: dict[tuple, list[str]] = {}
    for task, space in spaces.items():
        key = (tuple(space.shape), tuple(np.asarray(space.low).ravel().tolist()),
               tuple(np.asarray(space.high).ravel().tolist()))
        groups.setdefault(key, []).append(task)
    if len(groups) > 1:
        described = "; ".join(f"{', '.join(tasks)}: shape {shape}, low {min(low)}, high {max(high)}"
                              for (shape, low, high), tasks in groups.items())
        raise IncompatibleTasksError(f"these tasks' action spaces differ ({described}); one policy needs one "
                                     f"action space")


def task_action_spaces(tasks: Sequence[str], sim: str, control_mode: str) -> dict[str, object]:
    """Each task's action space, from an env made in state mode (cheap: nothing is rendered)."""
    import gymnasium as gym

    import envs

    spaces = {}
    for task in tasks:
        env = gym.make(envs.env_id(task), sim=sim, obs_mode="state", control_mode=control_mode)
        spaces[task] = env.action_space
        env.close()
    return spaces


def policy_inputs(config: RunConfig, num_tasks: int) -> dict:
    """What the policy reads for this run: ``obs_key``, ``cameras``, ``depth``, ``pointcloud``
    and the ``instruction_encoder`` (language on by default for several tasks and for every
    obs_mode but ``state``: only the flat state vector carries the goal-relative features that say
    which object plays which role; in stack_blocks the colours change per episode, so a policy that
    sees only images or slots must read "stack the red block on the blue block" to know).
    With cameras or a point cloud the vector is ``proprio``: nothing privileged."""
    images = config.obs_mode in ("rgb", "rgbd")
    use_instruction = config.policy.use_instruction
    if use_instruction is None:
        use_instruction = num_tasks > 1 or config.obs_mode != "state"
    return {"obs_key": "proprio" if config.obs_mode in IMAGE_OBS_MODES else config.obs_mode,
            "cameras": tuple(CAMERAS) if images else (),
            "depth": config.obs_mode == "rgbd",
            "pointcloud": config.obs_mode == "pointcloud",
            "instruction_encoder": INSTRUCTION_ENCODER if use_instruction else ""}


def collect_run_demos(config: RunConfig, tasks: list[str], pool=None, **image_kw) -> tuple[dict, str]:
    """Check that ``tasks`` share one action space, then collect (or reuse) each task's demos for
    this run's data settings. Returns ({task: store}, the simulator the demos came from)."""
    from train.demos import collect_demos_for_tasks

    data = config.data
    check_action_spaces(task_action_spaces(tasks, config.sim.name, config.control_mode))
    demo_sim = data.sim or config.sim.name
    stores = collect_demos_for_tasks(tasks, data.num_demos, data.seed_start, data.store_root, sim=demo_sim,
                                     obs_mode=config.obs_mode, control_mode=config.control_mode,
                                     progress=config.progress, pool=pool, demo_noise=data.demo_noise, **image_kw)
    return stores, demo_sim


def collect_run_exploration(config: RunConfig, tasks: list[str], sim: str, **image_kw) -> dict:
    """``data.explore_episodes`` exploratory episodes per task (seeds past every demo seed), for
    the perception losses of a camera policy; {} when 0."""
    from train.demos import collect_exploration

    data = config.data
    if not data.explore_episodes:
        return {}
    return {task: collect_exploration(task, data.explore_episodes, data.exploration_seed_start, data.store_root,
                                      sim=sim, obs_mode=config.obs_mode, control_mode=config.control_mode,
                                      action_noise=data.explore_noise, random_fraction=data.explore_random,
                                      progress=config.progress, **image_kw)
            for task in tasks}


def run_multitask(config: RunConfig, run_dir: Path, tasks: list[str], accelerator=None) -> dict:
    """Demos of every task -> one diffusion policy -> evaluation per task (lockstep batches,
    videos under ``videos/<task>/`` when there are several tasks); demos and evaluation on Ray
    workers when ``scale.*`` asks for them."""
    from train.ddp import is_main
    from train.scale import run_pool, scale_report

    with run_pool(config, enabled=is_main(accelerator)) as pool:
        metrics = _run_multitask(config, run_dir, tasks, pool, accelerator)
        return {**metrics, **scale_report(pool)} if metrics else {}


def _run_multitask(config: RunConfig, run_dir: Path, tasks: list[str], pool, accelerator) -> dict:
    import gymnasium as gym
    import torch

    import envs
    from policies import Policy
    from policies.diffusion import DiffusionConfig, DiffusionPolicy
    from policies.diffusion.configuration import observation_keys
    from train.datasets.multitask import MultiTaskDataset
    from train.demos import collect_demos_for_tasks
    from train.imitation import checkpoint_dir, train_imitation

    data, tr, ev = config.data, config.train, config.eval
    image_kw = {"image_size": config.policy.image_size} if config.obs_mode in IMAGE_OBS_MODES else {}
    limit_kw = {"max_episode_steps": ev.max_episode_steps} if ev.max_episode_steps else {}
    timings = {}
    t = time.time()
    from train.ddp import is_main, main_first

    with main_first(accelerator):   # under DDP the others then reuse the main process's demo cache
        stores, demo_sim = collect_run_demos(config, tasks, pool=pool, **image_kw)
    timings["demos_s"] = time.time() - t

    t = time.time()
    inputs = policy_inputs(config, len(tasks))
    pointcloud = inputs.pop("pointcloud")
    obs_keys = observation_keys(inputs["obs_key"], inputs["cameras"], inputs["depth"], pointcloud)
    # the store's slots as training targets (never inputs) when the pointer or position loss grounds the cameras in them
    targets = ("slots", "step") if inputs["cameras"] and (getattr(config.policy, "fusion_pointer_loss", 0)
                                                         or getattr(config.policy, "aux_position_loss", 0)) else ()
    explore = collect_run_exploration(config, tasks, demo_sim, **image_kw)
    dataset = MultiTaskDataset(stores, config.policy.n_obs_steps, config.policy.horizon, obs_keys=obs_keys,
                               target_keys=targets, explore_stores=explore, explore_fraction=data.explore_fraction)
    vectors = dataset.stacked_obs(inputs["obs_key"])
    # columns per point (xyz + rgb today; whatever features the store's clouds carry)
    inputs["pointcloud_dim"] = next(iter(stores.values())).episodes[0].images["pointcloud"].shape[-1] if pointcloud else 0
    policy_config = DiffusionConfig.from_params(config.policy, obs_dim=vectors.shape[1],
                                                action_dim=dataset.action_dim, **inputs)
    torch.manual_seed(config.seed)  # the initial weights; training seeds its own noise and data order
    policy = DiffusionPolicy(policy_config).to(config.device)
    policy.fit_normalizer(vectors, dataset.stacked_actions())
    log.info("policy reads %s%s; %d windows over %s", list(policy_config.obs_keys),
             " + instruction" if policy_config.reads_instruction else "", len(dataset), dataset.windows_per_task())
    hook, slice_samples = None, None
    if config.curriculum.active:   # the curriculum re-weights the tasks between slices (train/curriculum/)
        from train.curriculum.runner import build_hook

        hook = build_hook(config, run_dir, tasks, dataset,
                          lambda task: partial(gym.make, envs.env_id(task), sim=config.sim.name, obs_mode=config.obs_mode,
                                               control_mode=config.control_mode, **image_kw, **limit_kw),
                          collect=lambda new: collect_demos_for_tasks(
                              new, data.num_demos, data.seed_start, data.store_root, sim=demo_sim,
                              obs_mode=config.obs_mode, control_mode=config.control_mode, progress=config.progress,
                              demo_noise=data.demo_noise, **image_kw))
        slice_samples = config.curriculum.slice_steps * tr.batch_size   # one sampler epoch per slice
    stats = train_imitation(policy, dataset, run_dir, tr.steps, tr.batch_size, tr.lr, tr.weight_decay,
                            tr.warmup_steps, tr.checkpoint_every, tr.log_every, config.seed, config.progress,
                            sampler=dataset.sampler(num_samples=slice_samples, seed=config.seed),
                            num_workers=tr.num_workers, hook=hook, accelerator=accelerator)
    timings["train_s"] = time.time() - t
    if not is_main(accelerator):
        return {}   # the main process evaluates

    t = time.time()
    policy = Policy.from_pretrained(checkpoint_dir(run_dir), device=config.device)  # the EMA weights
    if hook is not None:
        tasks = hook.curriculum.tasks   # the pool, with the tasks a refill added
    evaluated = evaluate_tasks(policy, config, run_dir, tasks, pool=pool, **image_kw)
    timings["eval_s"] = time.time() - t
    return {**evaluated, "policy_inputs": list(policy_config.obs_keys)
            + (["instruction"] if policy_config.reads_instruction else []),
            "num_demos": {task: len(store) for task, store in stores.items()}, "demo_sim": demo_sim,
            "demo_stores": {task: str(store.path) for task, store in stores.items()},
            **({"explore_stores": {task: str(store.path) for task, store in explore.items()}} if explore else {}),
            "train": stats, "timings": timings, **({"curriculum": hook.summary()} if hook else {})}


def evaluate_tasks(policy, config: RunConfig, run_dir: Path, tasks: Sequence[str], pool=None, make_env=None,
                   **env_kw) -> dict:
    """Evaluate ``policy`` on every task over the same unseen seeds (``config.eval``), videos under
    ``videos/<task>/`` (one task: ``videos/``); TensorBoard gets the per-task and mean success.
    Returns ``success_rate`` (the mean over tasks), ``tasks``, ``num_episodes``, ``num_successes``
    and ``per_task``. ``pool``: a :class:`fanout.Pool` to fan seed chunks out on (``scale.*``);
    ``env_kw`` go to ``gym.make`` (e.g. ``image_size``); ``make_env(task)``, when given, makes each
    task's env factory instead (GravMAD's adds the sub-goal to the observation)."""
    import gymnasium as gym

    import envs
    from train.evaluate import evaluate

    ev = config.eval
    limit_kw = {"max_episode_steps": ev.max_episode_steps} if ev.max_episode_steps else {}
    seeds = list(range(ev.seed_start, ev.seed_start + ev.episodes))
    per_task, results = {}, {}
    for task in tasks:
        task_env = make_env(task) if make_env is not None else partial(
            gym.make, envs.env_id(task), sim=config.sim.name, obs_mode=config.obs_mode,
            control_mode=config.control_mode, **env_kw, **limit_kw)
        video_dir = run_dir / "videos" / task if len(tasks) > 1 else run_dir / "videos"
        r = evaluate(policy, task_env, seeds, video_dir, ev.num_videos, progress=config.progress,
                     video_size=tuple(ev.video_size), run_seed=config.seed, pool=pool)
        results[task] = r
        per_task[task] = {"success_rate": r["success_rate"], "episodes": r["num_episodes"], "seeds": seeds,
                          "num_successes": r["num_successes"], "mean_return": r["mean_return"],
                          "mean_length": r["mean_length"], "videos": r["videos"]}
    _log_per_task(run_dir, per_task, config.train.steps)
    return {"success_rate": sum(p["success_rate"] for p in per_task.values()) / len(per_task), "tasks": list(tasks),
            "num_episodes": sum(r["num_episodes"] for r in results.values()),
            "num_successes": sum(r["num_successes"] for r in results.values()), "per_task": per_task}


def _log_per_task(run_dir: Path, per_task: dict, step: int) -> None:
    """Per-task and mean success as TensorBoard scalars (``eval/success_rate/<task>``)."""
    from torch.utils.tensorboard import SummaryWriter

    writer = SummaryWriter(str(run_dir / "tb"))
    for task, p in per_task.items():
        writer.add_scalar(f"eval/success_rate/{task}", p["success_rate"], step)
    writer.add_scalar("eval/success_rate_mean", sum(p["success_rate"] for p in per_task.values()) / len(per_task),
                      step)
    writer.close()


def print_task_table(per_task: dict, mean: float) -> None:
    """The per-task success table the run prints at the end (rich)."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title="success on unseen seeds, per task")
    for name, justify in (("task", "left"), ("success", "right"), ("episodes", "right")):
        table.add_column(name, justify=justify)
    for task, p in per_task.items():
        table.add_row(task, f"{p['success_rate']:.2f}", f"{p['num_successes']}/{p['episodes']}")
    table.add_section()
    table.add_row("mean", f"{mean:.2f}", f"{sum(p['episodes'] for p in per_task.values())}")
    Console().print(table)
