"""Many ManiSkill episodes at once: one batched GPU simulation on CUDA, worker processes on CPU.

- ``num_envs == 1``: :class:`~.env.ManiSkillTaskEnv` (numpy, the MuJoCo backend's surface).
- ``num_envs > 1`` with CUDA: :class:`~.env.ManiSkillBatchEnv` on ``physx_cuda`` -- torch tensors
  in and out on the GPU, leading batch dimension, partial resets via ``options={"env_idx": ...}``,
  no auto-reset (ManiSkill's convention).
- ``num_envs > 1`` without CUDA: PhysX's CPU backend simulates one scene per process, so the
  batch becomes Gymnasium's ``AsyncVectorEnv`` over single environments (logged once): numpy
  arrays with a leading batch dimension, partial resets via the same ``env_idx`` option.

:func:`make_vec_env` returns a Gymnasium ``VectorEnv`` with same-step auto-reset
(``info["final_obs"]``/``info["final_info"]``) on both. stable-baselines3 vector envs are built by
the RL glue (:func:`policies.rl.sb3.make_vec_env`), not here.
"""
from __future__ import annotations

import functools
import logging

import gymnasium as gym
import numpy as np
import torch

from envs.backends.maniskill.env import ManiSkillBatchEnv, ManiSkillTaskEnv
from envs.core.robot import check_action_finite

log = logging.getLogger("roboforge.maniskill")


def gpu_sim_available() -> bool:
    return torch.cuda.is_available()


def _cpu_fallback_notice(num_envs: int) -> None:
    log.warning("sim='maniskill' num_envs=%d: no CUDA device, so PhysX runs on the CPU (one scene per "
                "process); falling back to gymnasium AsyncVectorEnv over %d worker processes (numpy batches)",
                num_envs, num_envs)


def make_env(task_cls, num_envs: int = 1, sim_backend: str | None = None, **kwargs) -> gym.Env:
    """The environment ``gym.make(..., sim="maniskill", num_envs=N)`` returns."""
    if num_envs < 1:
        raise ValueError(f"num_envs must be >= 1, got {num_envs}")
    if num_envs == 1:
        return ManiSkillTaskEnv(task_cls, sim_backend=sim_backend or "physx_cpu", **kwargs)
    if sim_backend != "physx_cpu" and gpu_sim_available():
        return ManiSkillBatchEnv(task_cls, num_envs=num_envs, sim_backend=sim_backend or "physx_cuda", **kwargs)
    if sim_backend not in (None, "physx_cpu", "auto"):
        raise ValueError(f"sim_backend={sim_backend!r} needs CUDA, which torch does not see on this machine")
    _cpu_fallback_notice(num_envs)
    return AsyncBatchEnv(task_cls.name, num_envs, **kwargs)


def _single(task: str, kwargs: dict) -> gym.Env:
    from envs import env_id  # (importing envs registers the tasks in a fresh worker process)

    return gym.make(env_id(task), sim="maniskill", **kwargs)


def _async(task: str, num_envs: int, kwargs: dict, autoreset_mode) -> gym.vector.AsyncVectorEnv:
    # spawn, not fork: the parent may already hold a Vulkan instance, which must not be forked
    return gym.vector.AsyncVectorEnv([functools.partial(_single, task, kwargs)] * num_envs, context="spawn",
                                     autoreset_mode=autoreset_mode)


class AsyncBatchEnv(gym.Env):
    """``num_envs`` CPU ManiSkill episodes in worker processes, presented like the GPU batch env:
    numpy arrays with a leading batch dimension, no auto-reset, partial resets via
    ``reset(options={"env_idx": [...]})``."""

    def __init__(self, task: str, num_envs: int, **kwargs):
        self.num_envs = num_envs
        self._vec = _async(task, num_envs, kwargs, gym.vector.AutoresetMode.DISABLED)
        self.single_observation_space = self._vec.single_observation_space
        self.single_action_space = self._vec.single_action_space
        self.observation_space, self.action_space = self._vec.observation_space, self._vec.action_space
        self.render_mode = kwargs.get("render_mode")
        self._control_mode = kwargs.get("control_mode", "ee_delta_pose")

    def reset(self, *, seed=None, options=None):
        options = dict(options or {})
        if "env_idx" in options:
            mask = np.zeros(self.num_envs, bool)
            mask[np.asarray(options.pop("env_idx")).reshape(-1)] = True
            options["reset_mask"] = mask
        return self._vec.reset(seed=seed, options=options or None)

    def step(self, action):
        action = np.asarray(action, dtype=np.float32)
        check_action_finite(action, self._control_mode)  # here, before a worker raises and shuts down
        return self._vec.step(action)

    def render(self):
        return np.stack(self._vec.render())

    def close(self):
        self._vec.close()


def make_vec_env(task: str, num_envs: int, auto_reset: bool = True, **kwargs) -> gym.vector.VectorEnv:
    """A Gymnasium ``VectorEnv`` over ``num_envs`` episodes with same-step auto-reset: the GPU batch
    (torch on CUDA) when there is CUDA, else ``AsyncVectorEnv`` workers (numpy)."""
    from envs.registry import get_task

    task_cls = get_task(task)
    if not gpu_sim_available():
        _cpu_fallback_notice(num_envs)
        mode = gym.vector.AutoresetMode.SAME_STEP if auto_reset else gym.vector.AutoresetMode.DISABLED
        return _async(task, num_envs, kwargs, mode)
    from mani_skill.utils.registration import TimeLimitWrapper
    from mani_skill.vector.wrappers.gymnasium import ManiSkillVectorEnv

    class _VectorEnv(ManiSkillVectorEnv):
        """ManiSkill's vector env with Gymnasium 1.x's same-step auto-reset info keys added."""

        def step(self, actions):
            obs, rew, term, trunc, infos = super().step(actions)
            if "final_observation" in infos:
                infos["final_obs"], infos["_final_obs"] = infos["final_observation"], infos["_final_observation"]
            return obs, rew, term, trunc, infos

    base = ManiSkillBatchEnv(task_cls, num_envs=num_envs, sim_backend="physx_cuda", **kwargs)
    return _VectorEnv(TimeLimitWrapper(base, task_cls.max_episode_steps), auto_reset=auto_reset,
                      ignore_terminations=False, record_metrics=True)

