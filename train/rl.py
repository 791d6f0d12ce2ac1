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

import functools
import json
import logging
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from envs.core.fileio import write_atomic
from policies.rl.sb3 import (add_demos, build_model, check_supported, export_policy, find_training_state,
                             load_training_state, make_env, make_vec_env, save_training_state, success_bonus)
from train.config import RunConfig
from train.demos import collect_demos

log = logging.getLogger(__name__)


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


def _evaluate(policy, config: RunConfig, env_kwargs: dict, video_dir: Path) -> dict:
    """Success rate on unseen seeds (``eval.seed_start`` ...) with the shared evaluator, on the
    raw env (no training-time bonus), so ``success`` is the task's own success."""
    from train.evaluate import evaluate

    ev = config.eval
    seeds = range(ev.seed_start, ev.seed_start + ev.episodes)

    def make_eval_env(render_mode=None, **render):  # render: render_size for the videos
        return make_env(config.env, config.sim.name, {**env_kwargs, "render_mode": render_mode, **render})

    return evaluate(policy, make_eval_env, seeds=seeds, video_dir=video_dir, num_videos=ev.num_videos,
                    progress=config.progress, video_size=tuple(ev.video_size))


class CurriculumCallback:
    """SB3 callback for ``curriculum=uniform|lp|omni`` with an RL learner: every
    ``curriculum.slice_steps`` env steps (one slice) it hands the exported policy to the
    curriculum hook (:class:`train.curriculum.runner.CurriculumHook`), which evaluates every
    ``eval_every`` slices and sends the new task weights to every env copy; a changed curriculum
    is checkpointed with the learner, so ``resume`` continues both."""

    def __new__(cls, *args, **kwargs):  # built lazily so importing train.rl doesn't import SB3 callbacks
        from stable_baselines3.common.callbacks import BaseCallback

        class _Curriculum(BaseCallback):
            def __init__(self, hook, export, save):
                super().__init__()
                self.hook, self.export, self.save = hook, export, save

            def _on_training_start(self):
                every = self.hook.every
                self.next = (self.num_timesteps // every + 1) * every

            def _on_step(self):
                if self.num_timesteps >= self.next:
                    if self.hook(self.next, self.export(self.model)):
                        self.save(self.model)
                    self.next += self.hook.every
                return True

        return _Curriculum(*args, **kwargs)


class MixtureWeights:
    """What the curriculum hook takes for a dataset, for an RL learner: the task weights of
    every :class:`~policies.rl.sb3.vec_env.TaskMixture` copy in ``venv``."""

    def __init__(self, venv, tasks, action_dim: int):
        self.venv, self.tasks, self.action_dim = venv, list(tasks), int(action_dim)
        self._weights = {t: 1.0 for t in self.tasks}

    @property
    def task_weights(self) -> dict[str, float]:
        return dict(self._weights)

    def set_task_weights(self, weights) -> None:
        self._weights.update({t: float(w) for t, w in weights.items()})
        self.venv.env_method("set_task_weights", self._weights)


def run_rl(config: RunConfig, run_dir: str | Path, tasks=None) -> dict:
    """Train PPO or SAC on the configured task, evaluate it on unseen seeds, write the run's
    outputs under ``run_dir`` and return the metrics (``success_rate`` first-class). With several
    ``tasks`` (``env=[a,b]``, builtin or a library; ``obs_mode=slots``) one policy learns them
    all, each episode a task drawn by its weight, which ``curriculum=`` sets; the metrics then
    hold the per-task table.

    Reads ``env``, ``sim``, ``obs_mode`` / ``control_mode``, ``seed``, ``policy`` (a
    :class:`~policies.rl.config.PPOConfig` / ``SACConfig`` named ``ppo`` | ``sac``; ``policy.sb3``
    goes verbatim to the SB3 constructor), ``data`` (demo store root and backend) and ``eval``
    (episodes, seed_start, num_videos, video_size). ``train.config.compose(...)`` builds one as ``train.py``
    would.
    """
    from stable_baselines3.common.vec_env import VecNormalize

    sim, algo, seed, p = config.sim.name, config.policy.name, config.seed, config.policy
    tasks = list(tasks) if tasks is not None and config.multitask else [config.env]
    task = tasks[0] if len(tasks) == 1 else tasks
    label = ",".join(tasks)
    env_kwargs = {"obs_mode": config.obs_mode, "control_mode": config.control_mode, "reward_mode": p.reward_mode}
    check_supported(algo, obs_mode=config.obs_mode, sim=sim, demos=p.demos)
    run_dir = Path(run_dir)
    policy_dir, state_dir = run_dir / "checkpoints", run_dir / "checkpoints" / "sb3"
    tb_dir = run_dir / "tensorboard"
    run_dir.mkdir(parents=True, exist_ok=True)
    gamma = float(p.sb3.get("gamma", 0.99))
    num_envs = int(p.num_envs or os.cpu_count() or 1)
    threads = torch.get_num_threads()
    torch.set_num_threads(p.torch_threads)

    # 1. environments: num_envs copies in subprocesses, observations normalized
    venv = make_vec_env(task, sim, num_envs, seed, env_kwargs=env_kwargs, vec_env=p.vec_env,
                        success_bonus_gamma=gamma if p.success_bonus else None)
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
            venv_norm = VecNormalize(venv, norm_obs=p.normalize_obs, norm_reward=p.normalize_reward, gamma=gamma)
            model = build_model(algo, venv_norm, net_arch=p.net_arch, activation=p.activation, sb3_kwargs=p.sb3,
                                policy_kwargs=p.policy_kwargs, seed=seed, tensorboard_log=str(tb_dir))
            if p.demos:  # oracle episodes from the HDF5 demo store (cached, shared with imitation runs)
                stores = [collect_demos(t, p.demos, p.demo_seed_start, config.data.store_root,
                                        sim=config.data.sim or sim, progress=config.progress,
                                        obs_mode=config.obs_mode, control_mode=config.control_mode) for t in tasks]
                bonus = success_bonus(gamma) if p.success_bonus else None
                info.update(add_demos(model, [ep for store in stores for ep in store.episodes], success_bonus=bonus,
                                      sparse=p.reward_mode == "sparse",
                                      normalizer=venv_norm if p.normalize_obs else None))
                info["demo_store"] = str(stores[0].path) if len(stores) == 1 else [str(st.path) for st in stores]

        # 3. learn up to total_timesteps env steps, checkpointing on the way
        export_kw = {"task": label, "env_kwargs": {k: v for k, v in env_kwargs.items() if k != "reward_mode"}}
        demo_info = {k: v for k, v in info.items() if k.startswith("demo_")}
        monitor = TrainingMonitor(state_dir, policy_dir, p.checkpoint_every, p.save_replay_buffer, export_kw,
                                  p.log_every, p.total_timesteps, wall_before, demo_info)
        callbacks, hook = [monitor], None
        if config.curriculum.active:
            hook = _curriculum_hook(config, run_dir, tasks, venv_norm, export_kw, found is not None)
            callbacks.append(CurriculumCallback(hook, lambda m: export_policy(m, m.get_vec_normalize_env(), **export_kw),
                                                lambda m: monitor.save()))
        remaining = p.total_timesteps - int(model.num_timesteps)
        if remaining > 0:
            model.learn(remaining, callback=callbacks, tb_log_name=algo, reset_num_timesteps=found is None,
                        progress_bar=False)
            info.update(monitor.summary())
        else:
            info["train_wall_s_total"] = wall_before
        save_checkpoint(model, state_dir, policy_dir, p.save_replay_buffer, export_kw,
                        {"train_wall_s_total": info["train_wall_s_total"], **demo_info})
    finally:
        venv.close()
        torch.set_num_threads(threads)

    # 4. evaluate the exported policy (what users deploy) on unseen seeds
    policy = export_policy(model, venv_norm, **export_kw)
    if len(tasks) > 1:
        from train.multitask import evaluate_tasks

        results = evaluate_tasks(policy, config, run_dir, tasks)
        if hook is not None:
            info["curriculum"] = hook.summary()
    else:
        results = _evaluate(policy, config, env_kwargs, run_dir / "videos")
    metrics = {"success_rate": float(results["success_rate"]), "task": label, "sim": sim, "algorithm": algo,
               "env_steps": int(model.num_timesteps), "eval_episodes": config.eval.episodes,
               "eval_seed_start": config.eval.seed_start, "num_envs": num_envs,
               **{k: v for k, v in results.items() if k not in ("success_rate", "episodes")}, **info}
    write_atomic(run_dir / "metrics.json", json.dumps(metrics, indent=2))
    return metrics


def _curriculum_hook(config: RunConfig, run_dir: Path, tasks: list[str], venv_norm, export_kw: dict, resumed: bool):
    """The curriculum hook over the env copies' task weights; a resumed run reloads the
    curriculum's saved state (``curriculum/state.json``) and re-sends its weights."""
    import gymnasium as gym

    import envs
    from train.curriculum.runner import build_hook

    weights = MixtureWeights(venv_norm, tasks, venv_norm.action_space.shape[0])
    eval_kw = export_kw["env_kwargs"]
    hook = build_hook(config, run_dir, tasks, weights,
                      lambda t: functools.partial(gym.make, envs.env_id(t), sim=config.sim.name, **eval_kw))
    state = Path(run_dir) / "curriculum" / "state.json"
    if resumed and state.is_file():
        hook.load_state_dict({"curriculum": state.read_text(encoding="utf-8")})
    return hook
