#!/usr/bin/env python
"""roboforge main job: demos -> policy training -> evaluation on unseen seeds -> videos.

    python train.py env=stack_blocks                      # the default: diffusion policy on MuJoCo
    python train.py env=place_in_zone data.num_demos=200  # any registered task, any override
    python train.py env=push_to_zone policy=sac           # RL (stable-baselines3)
    python train.py env=builtin policy=hilp obs_mode=slots   # HILP offline on every task (docs/hilp.md)
    python train.py sim=mujoco data.sim=maniskill         # demos from one backend, policy on the other
    python train.py resume=outputs/2026-11-23/22-40-00    # continue a killed run
    python train.py env=[stack_blocks,place_in_zone] obs_mode=slots   # one language-conditioned policy
    python train.py env=builtin obs_mode=slots            # every built-in task (library=DIR adds its tasks)
    python train.py env=stack_blocks obs_mode=rgb         # visuomotor: front + wrist cameras + proprio
    python train.py env=builtin obs_mode=rgb policy=vla   # the tiny OpenVLA-architecture VLA (docs/vla.md)
    python train.py env=builtin obs_mode=pointcloud policy=gravmad subgoals=manual   # GravMAD (docs/gravmad.md)

Outputs go to outputs/<date>/<time>/: config.yaml, metrics.json, checkpoints/, videos/, tb/.
"""
from __future__ import annotations

import json
import logging
import os
import sys
import time
from functools import partial
from pathlib import Path

from train.cpu import choose_wait_policy  # noqa: E402

# Before torch loads OpenMP: threads spin between ops on an idle CPU (2x faster), sleep on a busy one.
BUSY_CORES = choose_wait_policy()

import hydra  # noqa: E402
from hydra.core.hydra_config import HydraConfig  # noqa: E402
from omegaconf import DictConfig, OmegaConf  # noqa: E402

from policies.common.config import ConfigError  # noqa: E402
from train.config import IMITATION_POLICIES, RL_POLICIES, RunConfig, to_run_config, to_yaml  # noqa: E402  (registers the schema)
from train.ddp import is_main, launched, main_first, make_accelerator, shared_run_dir  # noqa: E402

log = logging.getLogger("roboforge")
logging.getLogger("OpenGL").setLevel(logging.WARNING)  # PyOpenGL's "no accelerate module" chatter


def check_runnable(config: RunConfig) -> list[str]:
    """What the config alone cannot tell (its ranges were checked when it was built): the tasks
    are registered (after loading ``library``) and the device exists. Returns the task names."""
    import envs
    import envs.heldout  # noqa: F401  (the held-out variants are nameable in env=, never part of builtin)
    from envs.library import LibraryError
    from train.multitask import resolve_tasks

    library_tasks = []
    if config.library:
        if not Path(config.library).is_dir():
            raise ConfigError("library", config.library, "a task library directory "
                                                         "(python -m generation generate --library DIR)")
        try:
            library_tasks = envs.load_library(config.library)
        except LibraryError as err:   # unreadable manifest, a file edited after admission
            raise ConfigError("library", config.library, f"a loadable task library ({err})") from None
    tasks = resolve_tasks(config.env, library_tasks)  # UnknownTaskError names the task and lists the known ones
    if not tasks:
        raise ConfigError("env", config.env, f"a set with at least one task (library {config.library} has none)")
    if config.subgoals == "llm":   # before any demo or training: the endpoint is needed only at evaluation
        from llm import LLMClient

        LLMClient()   # LLMConfigError names the variables to set
    if config.device == "cuda":
        import torch

        if not torch.cuda.is_available():
            raise ConfigError("device", config.device, "cpu (no CUDA device is visible)")
    return tasks


def goes_multitask(config: RunConfig) -> bool:
    """Several tasks, or inputs the flat state vector cannot carry (slots, cameras, language);
    a single-task state run keeps the original path."""
    return config.multitask or config.obs_mode != "state" or bool(config.policy.use_instruction)


def run_imitation(config: RunConfig, run_dir: Path, accelerator=None) -> dict:
    from train.demos import collect_demos
    from train.scale import run_pool, scale_report

    data = config.data
    timings = {}
    t = time.time()
    # Both backends share one observation/action layout, so demos from either train a policy for the other.
    demo_sim = data.sim or config.sim.name
    # under DDP only the main process fans out over Ray (the others reuse its demos and do not evaluate)
    with run_pool(config, enabled=is_main(accelerator)) as pool:
        with main_first(accelerator):
            store = collect_demos(config.env, data.num_demos, data.seed_start, data.store_root, sim=demo_sim,
                                  obs_mode=config.obs_mode, control_mode=config.control_mode,
                                  progress=config.progress, pool=pool, demo_noise=data.demo_noise)
        timings["demos_s"] = time.time() - t
        metrics = _train_and_evaluate(config, run_dir, store, pool, timings, accelerator)
    return {**metrics, "num_demos": len(store), "demo_sim": demo_sim, "demo_store": str(store.path),
            **scale_report(pool)}


def _train_and_evaluate(config: RunConfig, run_dir: Path, store, pool, timings: dict, accelerator=None) -> dict:
    import gymnasium as gym
    import torch

    import envs
    from policies import Policy
    from policies.diffusion import DiffusionConfig, DiffusionPolicy
    from train.datasets.sequence import SequenceDataset
    from train.evaluate import evaluate
    from train.imitation import checkpoint_dir, train_imitation

    tr, ev = config.train, config.eval

    t = time.time()
    policy_config = DiffusionConfig.from_params(config.policy, obs_dim=store.obs_dim, action_dim=store.action_dim)
    torch.manual_seed(config.seed)  # the initial weights; training seeds its own noise and data order
    policy = DiffusionPolicy(policy_config).to(config.device)
    dataset = SequenceDataset(store.episodes, policy.config.n_obs_steps, policy.config.horizon)
    policy.fit_normalizer(*dataset.stacked())
    stats = train_imitation(policy, dataset, run_dir, tr.steps, tr.batch_size, tr.lr, tr.weight_decay,
                            tr.warmup_steps, tr.checkpoint_every, tr.log_every, config.seed, config.progress,
                            accelerator=accelerator)
    timings["train_s"] = time.time() - t
    if not is_main(accelerator):
        return {}

    t = time.time()
    policy = Policy.from_pretrained(checkpoint_dir(run_dir), device=config.device)  # the EMA weights
    limit_kw = {"max_episode_steps": ev.max_episode_steps} if ev.max_episode_steps else {}
    make_env = partial(gym.make, envs.env_id(config.env), sim=config.sim.name, obs_mode=config.obs_mode,
                       control_mode=config.control_mode, **limit_kw)
    seeds = range(ev.seed_start, ev.seed_start + ev.episodes)
    results = evaluate(policy, make_env, seeds, run_dir / "videos", ev.num_videos, progress=config.progress,
                       video_size=tuple(ev.video_size), run_seed=config.seed, pool=pool)
    timings["eval_s"] = time.time() - t
    return {**results, "train": stats, "timings": timings}


def run(cfg: DictConfig) -> dict:
    import torch

    from envs.core.fileio import write_atomic

    t0 = time.time()
    run_dir = Path(HydraConfig.get().runtime.output_dir)
    if cfg.resume:
        from train.run_checks import check_resume_dir, resume_config

        saved = check_resume_dir(cfg.resume) / "config.yaml"
        cfg = resume_config(OmegaConf.load(saved), cfg, list(HydraConfig.get().overrides.task))
        log.info("resuming %s with its saved config", run_dir)
    config = to_run_config(cfg)
    tasks = check_runnable(config)
    torch.set_num_threads(config.train.num_threads)
    if BUSY_CORES >= 0.5:
        log.warning("other processes keep %.1f cores busy: torch threads sleep between ops (OMP_WAIT_POLICY=PASSIVE), "
                    "so training runs ~2x slower than on an idle CPU", BUSY_CORES)
    if launched() and config.policy.name not in IMITATION_POLICIES:
        raise ConfigError("policy", config.policy.name, f"{', '.join(IMITATION_POLICIES)} under accelerate launch "
                                                        "(RL, HILP and the VLA run one process)")
    if launched() and config.curriculum.active:
        raise ConfigError("curriculum", config.curriculum.name, "none under accelerate launch "
                                                                "(the curriculum runs in one process)")
    accelerator = make_accelerator(config.device)   # None unless started by accelerate launch / torchrun
    run_dir = shared_run_dir(accelerator, run_dir)
    if is_main(accelerator):
        run_dir.mkdir(parents=True, exist_ok=True)
        write_atomic(run_dir / "config.yaml", to_yaml(config))
    if config.policy.name == "hilp":
        from train.hilp import run_hilp

        metrics = run_hilp(config, run_dir, tasks)
    elif config.policy.name in RL_POLICIES:
        from train.rl import run_rl

        metrics = run_rl(config, run_dir, tasks)
    elif config.policy.name == "vla":
        from train.vla import run_vla

        metrics = run_vla(config, run_dir, tasks)
    elif config.policy.name == "gravmad":
        from train.gravmad import run_gravmad

        metrics = run_gravmad(config, run_dir, tasks, accelerator)
    elif goes_multitask(config):
        from train.multitask import run_multitask

        metrics = run_multitask(config, run_dir, tasks, accelerator)
    else:
        metrics = run_imitation(config, run_dir, accelerator)
    if not is_main(accelerator):
        return {}   # the main process evaluates and reports
    wall = time.time() - t0
    metrics = {"success_rate": metrics["success_rate"], "task": config.env, "sim": config.sim.name,
               "policy": config.policy.name, "wall_time_s": wall, **metrics}
    write_atomic(run_dir / "metrics.json", json.dumps(metrics, indent=2))
    n, k = metrics.get("num_episodes", 0), metrics.get("num_successes", 0)
    if "per_task" in metrics:
        from train.multitask import print_task_table

        print_task_table(metrics["per_task"], metrics["success_rate"])
    mean = " (mean over tasks)" if len(metrics.get("per_task", ())) > 1 else ""
    print(f"success_rate={metrics['success_rate']:.2f}{mean} ({k}/{n} unseen seeds) | wall "
          f"{int(wall // 60)}m{int(wall % 60):02d}s | outputs: {run_dir}")
    return metrics


@hydra.main(config_path="configs", config_name="config", version_base="1.3")
def main(cfg: DictConfig) -> None:
    from train.imitation import TrainingDiverged
    from train.run_checks import remove_unused_run_dir, user_errors

    try:
        run(cfg)
    except user_errors() as err:
        remove_unused_run_dir(Path(HydraConfig.get().runtime.output_dir))
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
    except TrainingDiverged as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    from train.run_checks import preflight

    problem = preflight(sys.argv[1:], check_runnable)  # before Hydra creates a run directory
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        sys.exit(2)
    main()
