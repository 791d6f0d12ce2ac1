"""RL trainer: stable-baselines3 PPO / SAC on a roboforge task, with the same outputs as imitation
runs (metrics.json with the success rate on unseen seeds, rollout videos, TensorBoard curves,
checkpoints that resume, an exported policy on the common surface).

``python train.py env=push_to_zone policy=sac`` ends up in :func:`run_rl`. Run layout::

    run_dir/
      metrics.json               success_rate on eval seeds + training figures
      checkpoints/               exported policy: config.json + model.safetensors (Policy.from_pretrained)
      checkpoints/sb3/           resume state: model.zip, vecnormalize.pkl, replay_buffer.npz, progress.json
      tensorboard/               SB3 curves (rollout/success_rate, rollout/ep_rew_mean, losses, time/*)
      videos/                    eval rollouts (mp4)

Calling :func:`run_rl` again on the same ``run_dir`` resumes from ``checkpoints/sb3`` (weights,
optimizers, normalizer statistics, replay buffer, step count) and trains up to ``total_timesteps``.
"""
from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf

from policies.rl.sb3 import (add_demos, build_model, check_supported, export_policy,
                             find_training_state, load_training_state, make_env, make_vec_env,
                             save_training_state, success_bonus)
from train.demos import collect_demos

# Defaults for keys a policy section may leave out (configs/policy/{ppo,sac}.yaml set them all).
POLICY_DEFAULTS = {
    "num_envs": None,            # None: one per CPU core
    "vec_env": "subproc",
    "total_timesteps": 100_000,
    "net_arch": [256, 256],
    "activation": "relu",
    "normalize_obs": True,
    "normalize_reward": False,
    "success_bonus": True,       # see policies.rl.sb3.SuccessBonus
    "reward_mode": "dense",
    "demos": 0,                  # oracle episodes seeded into SAC's replay buffer
    "demo_seed_start": 1_000_000,
    "checkpoint_every": 20_000,  # env steps
    "log_every": 10_000,         # env steps between progress lines
    "save_replay_buffer": True,
    "torch_threads": 1,
    "policy_kwargs": {},
    "sb3": {},
}
log = logging.getLogger(__name__)
EVAL_DEFAULTS = {"episodes": 50, "seed_start": 100_000, "num_videos": 2}


def _section(cfg: DictConfig, key: str) -> dict:
    node = OmegaConf.select(cfg, key, default=None)
    if node is None:
        return {}
    return OmegaConf.to_container(node, resolve=True) if isinstance(node, DictConfig) else node


def _name(node: Any, *keys: str, default: str | None = None) -> str | None:
    """``env: push_to_zone`` or ``env: {name: push_to_zone, ...}`` both name the task."""
    if node is None or isinstance(node, str):
        return node if node is not None else default
    for k in keys:
        if k in node and node[k] is not None:
            return str(node[k])
    return default


def resolve_config(cfg: Mapping | DictConfig) -> dict:
    """The plain settings an RL run needs, from the run's (Hydra) config."""
    cfg = cfg if isinstance(cfg, DictConfig) else OmegaConf.create(dict(cfg))
    env = OmegaConf.select(cfg, "env", default=None)
    env = OmegaConf.to_container(env, resolve=True) if isinstance(env, DictConfig) else env
    task = _name(env, "name", "task")
    if task is None:
        raise ValueError("the run config names no task: set env=<task> (e.g. env=reach_target)")
    sim = OmegaConf.select(cfg, "sim", default="mujoco")
    sim = _name(OmegaConf.to_container(sim) if isinstance(sim, DictConfig) else sim, "name", "backend",
                default="mujoco")
    policy = {**POLICY_DEFAULTS, **_section(cfg, "policy")}
    algo = str(policy.get("name", "")).lower()
    # obs_mode / control_mode: top-level keys of the run config, or inside an env mapping
    env_kwargs = {k: OmegaConf.select(cfg, k) for k in ("obs_mode", "control_mode")
                  if OmegaConf.select(cfg, k, default=None) is not None}
    env_kwargs.update({k: env[k] for k in ("obs_mode", "control_mode") if isinstance(env, dict) and k in env})
    env_kwargs["reward_mode"] = policy["reward_mode"]
    ev = {**EVAL_DEFAULTS, "progress": bool(OmegaConf.select(cfg, "progress", default=True)),
          **_section(cfg, "eval")}
    # demos (SAC): the run's demo store root, and data.sim to take them from the other backend
    data = {"store_root": OmegaConf.select(cfg, "data.store_root", default=None),
            "sim": OmegaConf.select(cfg, "data.sim", default=None) or sim}
    return {"task": task, "sim": sim, "algo": algo, "seed": int(OmegaConf.select(cfg, "seed", default=0) or 0),
            "env_kwargs": env_kwargs, "policy": policy, "eval": ev, "data": data}


def save_checkpoint(model, state_dir: Path, policy_dir: Path, save_buffer: bool, export_kw: dict,
                    progress: dict | None = None) -> None:
    """Resume state (checkpoints/sb3) and the exported policy (checkpoints/), kept in step."""
    norm = model.get_vec_normalize_env()
    save_training_state(state_dir, model, norm, replay_buffer=save_buffer, extra=progress)
    export_policy(model, norm, **export_kw).save_pretrained(policy_dir)


class TrainingMonitor:
    """SB3 callback: periodic resumable checkpoints + how fast env steps go, split into
    collection (env stepping + policy inference) and the whole loop (including gradient updates)."""

    def __new__(cls, *args, **kwargs):  # built lazily so importing train.rl doesn't import SB3 callbacks
        from stable_baselines3.common.callbacks import BaseCallback

        class _Monitor(BaseCallback):
            def __init__(self, state_dir, policy_dir, every, save_buffer, export_kw, log_every, total,
                         wall_before=0.0, carried=None):
                super().__init__()
                self.wall_before = wall_before  # training wall time of earlier (resumed) runs
                self.carried = carried or {}  # facts of the first run a resume reports too (demo counts)
                self.state_dir, self.policy_dir, self.every = state_dir, policy_dir, every
                self.log_every, self.total = log_every, total
                self.save_buffer, self.export_kw = save_buffer, export_kw
                self.collect_s = 0.0
                self.collect_steps = 0

            def _on_training_start(self):
                self.t_start, self.steps_start = time.perf_counter(), self.num_timesteps
                self.next_save = (self.num_timesteps // self.every + 1) * self.every if self.every else None
                self.next_log = (self.num_timesteps // self.log_every + 1) * self.log_every if self.log_every else None

            def _on_rollout_start(self):
                self._t, self._n = time.perf_counter(), self.num_timesteps

            def _on_rollout_end(self):
                self.collect_s += time.perf_counter() - self._t
                self.collect_steps += self.num_timesteps - self._n
                self.logger.record("time/collect_steps_per_s", self.collect_steps / max(self.collect_s, 1e-9))

            def _on_step(self):
                if self.next_save is not None and self.num_timesteps >= self.next_save:
                    self.save()
                    self.next_save += self.every
                if self.next_log is not None and self.num_timesteps >= self.next_log:
                    self.next_log += self.log_every
                    succ = self.model.ep_success_buffer
                    rate = f"{np.mean(succ):.2f}" if len(succ) else "n/a"
                    elapsed = time.perf_counter() - self.t_start
                    log.info("step %d/%d  success(last %d episodes) %s  %.0f steps/s", self.num_timesteps,
                             self.total, len(succ), rate, (self.num_timesteps - self.steps_start) / elapsed)
                return True

            def save(self):
                save_checkpoint(self.model, self.state_dir, self.policy_dir, self.save_buffer, self.export_kw,
                                {"train_wall_s_total": self.wall_total(), **self.carried})

            def wall_total(self) -> float:
                started = getattr(self, "t_start", None)
                return round(self.wall_before + (time.perf_counter() - started if started else 0.0), 2)

            def summary(self) -> dict:
                wall = time.perf_counter() - self.t_start
                steps = self.num_timesteps - self.steps_start
                return {"train_steps_this_run": int(steps), "train_wall_s": round(wall, 2),
                        "train_wall_s_total": self.wall_total(),
                        "train_steps_per_s": round(steps / max(wall, 1e-9), 1),
                        "collect_steps_per_s": round(self.collect_steps / max(self.collect_s, 1e-9), 1)}

        return _Monitor(*args, **kwargs)


def _evaluate(policy, task: str, sim: str, env_kwargs: dict, ev: dict, video_dir: Path) -> dict:
    """Success rate on unseen seeds (``eval.seed_start`` ...) with the shared evaluator, on the
    raw env (no training-time bonus), so ``success`` is the task's own success."""
    from train.evaluate import evaluate

    seeds = range(int(ev["seed_start"]), int(ev["seed_start"]) + int(ev["episodes"]))

    def make_eval_env(render_mode=None, **render):  # render: render_size for the videos
        return make_env(task, sim, {**env_kwargs, "render_mode": render_mode, **render})

    video = {"video_size": tuple(ev["video_size"])} if ev.get("video_size") else {}
    return evaluate(policy, make_eval_env, seeds=seeds, video_dir=video_dir, num_videos=int(ev["num_videos"]),
                    progress=bool(ev.get("progress", True)), **video)


def run_rl(cfg: Mapping | DictConfig, run_dir: str | Path) -> dict:
    """Train PPO or SAC on the configured task, evaluate it on unseen seeds, write the run's
    outputs under ``run_dir`` and return the metrics (``success_rate`` first-class).

    Reads: ``env`` (task name), ``obs_mode`` / ``control_mode``, ``sim``, ``seed``, ``policy``
    (``name: ppo|sac`` + the keys of :data:`POLICY_DEFAULTS`; ``policy.sb3`` goes verbatim to the
    SB3 constructor) and ``eval`` (episodes, seed_start, num_videos, video_size).
    """
    from stable_baselines3.common.vec_env import VecNormalize

    s = resolve_config(cfg)
    task, sim, algo, seed, p = s["task"], s["sim"], s["algo"], s["seed"], s["policy"]
    check_supported(algo, obs_mode=s["env_kwargs"].get("obs_mode", "state"), sim=sim, demos=p["demos"])
    run_dir = Path(run_dir)
    policy_dir, state_dir = run_dir / "checkpoints", run_dir / "checkpoints" / "sb3"
    tb_dir = run_dir / "tensorboard"
    run_dir.mkdir(parents=True, exist_ok=True)
    gamma = float(p["sb3"].get("gamma", 0.99))
    num_envs = int(p["num_envs"] or os.cpu_count() or 1)
    threads = torch.get_num_threads()
    torch.set_num_threads(int(p["torch_threads"]))

    # 1. environments: num_envs copies in subprocesses, observations normalized
    venv = make_vec_env(task, sim, num_envs, seed, env_kwargs=s["env_kwargs"], vec_env=p["vec_env"],
                        success_bonus_gamma=gamma if p["success_bonus"] else None)
    try:
        # 2. the learner: resumed from the last checkpoint in run_dir, or fresh (+ oracle demos)
        found = find_training_state(state_dir)
        info: dict[str, Any] = {}
        wall_before = 0.0
        if found is not None:
            # hyper-parameters come back with the model; only total_timesteps is read anew
            model, venv_norm, progress = load_training_state(found, algo, venv, tensorboard_log=str(tb_dir))
            wall_before = float(progress.get("train_wall_s_total", 0.0))
            info.update({k: v for k, v in progress.items() if k.startswith("demo_")})  # seeded in the first run
            info["resumed_from_step"] = int(model.num_timesteps)
            venv_norm.seed(seed + int(model.num_timesteps))  # fresh episodes, not a replay of the first run's
        else:
            venv_norm = VecNormalize(venv, norm_obs=p["normalize_obs"], norm_reward=p["normalize_reward"],
                                     gamma=gamma)
            model = build_model(algo, venv_norm, net_arch=p["net_arch"], activation=p["activation"],
                                sb3_kwargs=p["sb3"], policy_kwargs=p["policy_kwargs"], seed=seed,
                                tensorboard_log=str(tb_dir))
            if p["demos"]:  # oracle episodes from the HDF5 demo store (cached, shared with imitation runs)
                kw = {k: v for k, v in s["env_kwargs"].items() if k in ("obs_mode", "control_mode")}
                store = collect_demos(task, int(p["demos"]), int(p["demo_seed_start"]), s["data"]["store_root"],
                                      sim=s["data"]["sim"], progress=s["eval"]["progress"], **kw)
                info.update(add_demos(model, store.episodes, success_bonus=success_bonus(gamma) if p["success_bonus"] else None,
                                      sparse=s["env_kwargs"]["reward_mode"] == "sparse",
                                      normalizer=venv_norm if p["normalize_obs"] else None))
                info["demo_store"] = str(store.path)

        # 3. learn up to total_timesteps env steps, checkpointing on the way
        export_kw = {"task": task, "env_kwargs": {k: v for k, v in s["env_kwargs"].items() if k != "reward_mode"}}
        demo_info = {k: v for k, v in info.items() if k.startswith("demo_")}
        monitor = TrainingMonitor(state_dir, policy_dir, int(p["checkpoint_every"] or 0),
                                  bool(p["save_replay_buffer"]), export_kw, int(p["log_every"] or 0),
                                  int(p["total_timesteps"]), wall_before, demo_info)
        remaining = int(p["total_timesteps"]) - int(model.num_timesteps)
        if remaining > 0:
            model.learn(remaining, callback=monitor, tb_log_name=algo, reset_num_timesteps=found is None,
                        progress_bar=False)
            info.update(monitor.summary())
        else:
            info["train_wall_s_total"] = wall_before
        save_checkpoint(model, state_dir, policy_dir, bool(p["save_replay_buffer"]), export_kw,
                        {"train_wall_s_total": info["train_wall_s_total"], **demo_info})
    finally:
        venv.close()
        torch.set_num_threads(threads)

    # 4. evaluate the exported policy (what users deploy) on unseen seeds
    policy = export_policy(model, venv_norm, **export_kw)
    results = _evaluate(policy, task, sim, s["env_kwargs"], s["eval"], run_dir / "videos")
    metrics = {"success_rate": float(results["success_rate"]), "task": task, "sim": sim, "algorithm": algo,
               "env_steps": int(model.num_timesteps), "eval_episodes": int(s["eval"]["episodes"]),
               "eval_seed_start": int(s["eval"]["seed_start"]), "num_envs": num_envs,
               **{k: v for k, v in results.items() if k not in ("success_rate", "episodes")}, **info}
    (run_dir / "metrics.json").write_text(json.dumps(metrics, indent=2))
    return metrics
