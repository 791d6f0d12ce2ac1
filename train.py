#!/usr/bin/env python
"""roboforge main job: demos -> policy training -> evaluation on unseen seeds -> videos.

    python train.py env=stack_blocks                      # the default: diffusion policy on MuJoCo
    python train.py env=place_in_zone data.num_demos=200  # any registered task, any override
    python train.py env=push_to_zone policy=sac           # RL (stable-baselines3)
    python train.py sim=mujoco data.sim=maniskill         # demos from one backend, policy on the other
    python train.py resume=outputs/2026-11-23/22-40-00    # continue a killed run

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

os.environ.setdefault("MUJOCO_GL", "egl")
# Idle OpenMP threads sleep instead of spinning: on small or shared CPUs spinning threads starve
# each other (measured 10x slower training with 2 threads on a loaded 2-core machine).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import hydra  # noqa: E402
from hydra.core.hydra_config import HydraConfig  # noqa: E402
from omegaconf import DictConfig, OmegaConf  # noqa: E402

OmegaConf.register_new_resolver("run_dir", lambda resume, default: resume or default, replace=True)
log = logging.getLogger("roboforge")
logging.getLogger("OpenGL").setLevel(logging.WARNING)  # PyOpenGL's "no accelerate module" chatter

OBS_MODES = ("state", "rgb", "rgbd", "pointcloud")
CONTROL_MODES = ("ee_delta_pose", "joint_pos")
IMITATION_POLICIES = ("diffusion",)
RL_POLICIES = ("ppo", "sac")


class ConfigError(ValueError):
    """An override has a value the job cannot use; the message names the key and what is allowed."""


def validate(cfg: DictConfig) -> None:
    import envs

    if cfg.get("library"):
        if not Path(cfg.library).is_dir():
            raise ConfigError(f"library={cfg.library!r} is invalid; allowed: a task library directory "
                              f"(python -m envs.generation generate --library DIR)")
        envs.load_library(cfg.library)
    envs.get_task(cfg.env)  # UnknownTaskError lists the known tasks

    def need(ok: bool, key: str, allowed: str):
        if not ok:
            raise ConfigError(f"{key}={OmegaConf.select(cfg, key)!r} is invalid; allowed: {allowed}")

    need(cfg.obs_mode in OBS_MODES, "obs_mode", ", ".join(OBS_MODES))
    need(cfg.control_mode in CONTROL_MODES, "control_mode", ", ".join(CONTROL_MODES))
    need(cfg.policy.name in IMITATION_POLICIES + RL_POLICIES, "policy.name", ", ".join(IMITATION_POLICIES + RL_POLICIES))
    need(cfg.device in ("cpu", "cuda"), "device", "cpu, cuda")
    need(cfg.data.get("sim") in (None, "mujoco", "maniskill"), "data.sim", "null (the training sim), mujoco, maniskill")
    for key in ("train.steps", "train.batch_size", "train.checkpoint_every", "train.log_every",
                "train.num_threads", "data.num_demos", "eval.episodes"):
        v = OmegaConf.select(cfg, key)
        need(isinstance(v, int) and v >= 1, key, "an integer >= 1")
    need(isinstance(cfg.eval.num_videos, int) and 0 <= cfg.eval.num_videos <= cfg.eval.episodes,
         "eval.num_videos", f"an integer in [0, eval.episodes={cfg.eval.episodes}]")
    need(isinstance(cfg.train.lr, (int, float)) and cfg.train.lr > 0, "train.lr", "a number > 0")
    demo_seeds = range(cfg.data.seed_start, cfg.data.seed_start + 2 * cfg.data.num_demos)
    need(cfg.eval.seed_start >= demo_seeds.stop or cfg.eval.seed_start + cfg.eval.episodes <= demo_seeds.start,
         "eval.seed_start", f"a seed range disjoint from the demo seeds {demo_seeds.start}..{demo_seeds.stop - 1} "
                            f"(evaluation must use unseen seeds)")
    if cfg.policy.name == "diffusion":
        from policies.diffusion import DiffusionConfig

        fields = {k: v for k, v in OmegaConf.to_container(cfg.policy).items() if k != "name"}
        try:
            DiffusionConfig(obs_dim=1, action_dim=1, **fields)
        except (TypeError, ValueError) as err:
            raise ConfigError(f"policy: {err}") from None
        need(cfg.obs_mode == "state", "obs_mode", "state (the diffusion policy here is state-based)")
    if cfg.device == "cuda":
        import torch

        need(torch.cuda.is_available(), "device", "cpu (no CUDA device is visible)")


def run_imitation(cfg: DictConfig, run_dir: Path) -> dict:
    import gymnasium as gym
    import torch

    import envs
    from policies import load_policy
    from policies.diffusion import DiffusionConfig, DiffusionPolicy
    from train.datasets.sequence import SequenceDataset
    from train.demos import collect_demos
    from train.evaluate import evaluate
    from train.imitation import checkpoint_dir, train_imitation

    timings = {}
    t = time.time()
    # Both backends share one observation/action layout, so demos from either train a policy for the other.
    demo_sim = cfg.data.get("sim") or cfg.sim.name
    store = collect_demos(cfg.env, cfg.data.num_demos, cfg.data.seed_start, cfg.data.store_root, sim=demo_sim,
                          obs_mode=cfg.obs_mode, control_mode=cfg.control_mode, progress=cfg.progress)
    timings["demos_s"] = time.time() - t

    t = time.time()
    pcfg = {k: v for k, v in OmegaConf.to_container(cfg.policy).items() if k != "name"}
    torch.manual_seed(cfg.seed)  # the initial weights; training seeds its own noise and data order
    policy = DiffusionPolicy(DiffusionConfig(obs_dim=store.obs_dim, action_dim=store.action_dim, **pcfg)).to(cfg.device)
    dataset = SequenceDataset(store.episodes, policy.config.n_obs_steps, policy.config.horizon)
    policy.fit_normalizer(*dataset.stacked())
    stats = train_imitation(policy, dataset, run_dir, cfg.train.steps, cfg.train.batch_size, cfg.train.lr,
                            cfg.train.weight_decay, cfg.train.warmup_steps, cfg.train.checkpoint_every,
                            cfg.train.log_every, cfg.seed, cfg.progress)
    timings["train_s"] = time.time() - t

    t = time.time()
    policy = load_policy(checkpoint_dir(run_dir), device=cfg.device)  # the EMA weights
    make_env = partial(gym.make, envs.env_id(cfg.env), sim=cfg.sim.name, obs_mode=cfg.obs_mode,
                       control_mode=cfg.control_mode)
    seeds = range(cfg.eval.seed_start, cfg.eval.seed_start + cfg.eval.episodes)
    ev = evaluate(policy, make_env, seeds, run_dir / "videos", cfg.eval.num_videos, progress=cfg.progress,
                  run_seed=cfg.seed)
    timings["eval_s"] = time.time() - t
    return {**ev, "num_demos": len(store), "demo_sim": demo_sim, "demo_store": str(store.path), "train": stats, "timings": timings}


def run(cfg: DictConfig) -> dict:
    import torch

    t0 = time.time()
    run_dir = Path(HydraConfig.get().runtime.output_dir)
    if cfg.resume:
        saved = run_dir / "config.yaml"
        if not saved.exists():
            raise ConfigError(f"resume={cfg.resume!r} is invalid; allowed: a run directory holding config.yaml")
        cfg = OmegaConf.merge(OmegaConf.load(saved), {"resume": str(cfg.resume)})
        log.info("resuming %s with its saved config", run_dir)
    validate(cfg)
    torch.set_num_threads(cfg.train.num_threads)
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "config.yaml").write_text(OmegaConf.to_yaml(cfg, resolve=True))
    if cfg.policy.name in RL_POLICIES:
        from train.rl import run_rl

        metrics = run_rl(cfg, run_dir)
    else:
        metrics = run_imitation(cfg, run_dir)
    wall = time.time() - t0
    metrics = {"success_rate": metrics["success_rate"], "task": cfg.env, "sim": cfg.sim.name,
               "policy": cfg.policy.name, "wall_time_s": wall, **metrics}
    (run_dir / "metrics.json").write_text(json.dumps(metrics, indent=2))
    n, k = metrics.get("num_episodes", 0), metrics.get("num_successes", 0)
    print(f"success_rate={metrics['success_rate']:.2f} ({k}/{n} unseen seeds) | wall "
          f"{int(wall // 60)}m{int(wall % 60):02d}s | outputs: {run_dir}")
    return metrics


@hydra.main(config_path="configs", config_name="config", version_base="1.3")
def main(cfg: DictConfig) -> None:
    import envs
    from train.imitation import TrainingDiverged

    try:
        run(cfg)
    except (envs.UnknownTaskError, ConfigError) as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
    except TrainingDiverged as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
