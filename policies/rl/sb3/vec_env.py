"""roboforge tasks as stable-baselines3 vector envs: the training env of one copy (success bonus,
Monitor) and the one builder of SB3 ``VecEnv``s, per process (Subproc/Dummy) or as ManiSkill's
one-simulation batch through its SB3 adapter."""
from __future__ import annotations

import functools
import warnings

import gymnasium as gym
import numpy as np

from policies.rl.config import VEC_ENVS
from policies.rl.sb3.support import SUPPORTED_TEXT, UnsupportedRLSetup


def success_bonus(gamma: float) -> float:
    """What the success step pays on top (see :class:`SuccessBonus`)."""
    return gamma / (1.0 - gamma)


class SuccessBonus(gym.Wrapper):
    """Training-time reward fix for termination on success.

    The dense staged reward pays up to ~0.9 per step just *near* the goal, and the env terminates
    on success: a discounted learner then prefers hovering next to the goal forever
    (~0.9 / (1 - gamma)) to succeeding (reward 1, then nothing). Adding ``gamma / (1 - gamma)`` on
    the success step makes success worth exactly what staying succeeded forever would be
    (1 / (1 - gamma)), so it dominates. Also copies ``info["success"]`` to ``info["is_success"]``,
    which SB3 logs as ``rollout/success_rate``.
    """

    def __init__(self, env: gym.Env, gamma: float):
        super().__init__(env)
        self.bonus = success_bonus(gamma)

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        success = bool(info.get("success", False))
        if terminated and success:
            reward = float(reward) + self.bonus
        return obs, reward, terminated, truncated, {**info, "is_success": success}


class TaskMixture(gym.Env):
    """Several tasks as one env for one RL policy: each episode is a task drawn by its weight
    (:meth:`set_task_weights`, the curriculum's lever, reached through ``VecEnv.env_method``),
    ``info["task"]`` names it. The tasks must share observation and action spaces, which the
    task-independent ``obs_mode=slots`` gives (the flat ``state`` differs per task). Episodes are
    seeded from this env's own RNG, so ``reset(seed=s)`` fixes the whole sequence."""

    metadata = {"render_modes": ["rgb_array"]}

    def __init__(self, tasks, sim: str = "mujoco", env_kwargs: dict | None = None):
        from envs import env_id  # (importing envs registers the tasks in a fresh subprocess)

        if len(tasks) < 1:
            raise ValueError("TaskMixture needs at least one task")
        self.tasks = list(tasks)
        self.envs = {t: gym.make(env_id(t), sim=sim, disable_env_checker=True, **(env_kwargs or {}))
                     for t in self.tasks}
        first = self.envs[self.tasks[0]]
        self.observation_space, self.action_space = first.observation_space, first.action_space
        for t, env in self.envs.items():
            for name in ("observation_space", "action_space"):
                if getattr(env, name) != getattr(first, name):
                    raise ValueError(f"task {t!r} has {name} {getattr(env, name)}, {self.tasks[0]!r} has "
                                     f"{getattr(first, name)}: one policy needs one space (obs_mode=slots is the same "
                                     f"for every task)")
        self.render_mode = first.render_mode
        self.weights = {t: 1.0 for t in self.tasks}
        self.task = self.tasks[0]

    def set_task_weights(self, weights) -> None:
        """Sampling weights for the next episodes (tasks not named keep theirs)."""
        unknown = [t for t in weights if t not in self.weights]
        if unknown:
            raise ValueError(f"set_task_weights names unknown task {unknown[0]!r}; tasks: {', '.join(self.tasks)}")
        self.weights.update({t: float(w) for t, w in weights.items()})

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        w = np.array([self.weights[t] for t in self.tasks])
        self.task = self.tasks[int(self.np_random.choice(len(w), p=w / w.sum()))] if w.sum() > 0 else \
            self.tasks[int(self.np_random.integers(len(self.tasks)))]
        obs, info = self.envs[self.task].reset(seed=int(self.np_random.integers(2**31)), options=options)
        return obs, {**info, "task": self.task}

    def step(self, action):
        obs, reward, terminated, truncated, info = self.envs[self.task].step(action)
        return obs, reward, terminated, truncated, {**info, "task": self.task}

    def render(self):
        return self.envs[self.task].render()

    def close(self):
        for env in self.envs.values():
            env.close()


def make_env(task, sim: str = "mujoco", env_kwargs: dict | None = None, *, seed: int | None = None,
             success_bonus_gamma: float | None = None, monitor: bool = False) -> gym.Env:
    """One roboforge env as SB3 trains it; ``task`` a name, or a list of names for a
    :class:`TaskMixture`. Importable (not a closure) so subprocesses can build it."""
    from envs import env_id  # (importing envs registers the tasks in a fresh subprocess)

    if isinstance(task, str):
        # the full SB3 check_env runs on every task in tests/test_rl.py; no passive checker per step
        env = gym.make(env_id(task), sim=sim, disable_env_checker=True, **(env_kwargs or {}))
    else:
        env = TaskMixture(task, sim, env_kwargs)
    if success_bonus_gamma is not None:
        env = SuccessBonus(env, success_bonus_gamma)
    if monitor:
        from stable_baselines3.common.monitor import Monitor

        env = Monitor(env)
    if seed is not None:
        env.action_space.seed(seed)
    return env


def make_vec_env(task, sim: str, num_envs: int, seed: int, *, env_kwargs: dict | None = None,
                 vec_env: str = "subproc", success_bonus_gamma: float | None = None):
    """``num_envs`` copies of the task (a name, or a list: a :class:`TaskMixture`) as one SB3 ``VecEnv``.

    ``vec_env='subproc'``: one process per copy (the default; with ``sim='maniskill'`` on a CUDA
    machine and ``num_envs > 1`` it becomes ``'batched'``). ``'dummy'``: all in this process.
    ``'batched'`` (``sim='maniskill'``): one ManiSkill simulation holding every copy, on the GPU
    (``physx_cuda``); on a CPU-only machine PhysX holds one scene, so only ``num_envs=1``.
    Episode ``i`` of copy ``k`` is drawn from the RNG stream seeded with ``seed + k`` (subproc,
    dummy) or from the batch's stream seeded with ``seed`` (batched).
    """
    from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv

    if vec_env not in VEC_ENVS:
        raise ValueError(f"unknown vec_env {vec_env!r}; choose one of {', '.join(VEC_ENVS)}")
    if sim == "maniskill" and vec_env == "subproc" and num_envs > 1:
        from envs.backends.maniskill.vector import gpu_sim_available

        if gpu_sim_available():
            vec_env = "batched"
    if vec_env == "batched":
        if not isinstance(task, str):
            raise ValueError("vec_env='batched' simulates one task; several tasks need subproc or dummy")
        if sim != "maniskill":
            raise ValueError(f"vec_env='batched' is ManiSkill's one-simulation batch; sim={sim!r} has none "
                             f"(choose subproc or dummy)")
        venv = _maniskill_batch(task, num_envs, env_kwargs or {}, success_bonus_gamma)
    else:
        fns = [functools.partial(make_env, task, sim, env_kwargs, seed=seed + k,
                                 success_bonus_gamma=success_bonus_gamma, monitor=True)
               for k in range(num_envs)]
        if vec_env == "subproc" and num_envs > 1:
            # spawn for ManiSkill: a Vulkan instance does not survive a fork
            venv = SubprocVecEnv(fns, start_method="spawn" if sim == "maniskill" else None)
        else:
            venv = DummyVecEnv(fns)
    venv.seed(seed)
    return venv


def _maniskill_batch(task: str, num_envs: int, env_kwargs: dict, success_bonus_gamma: float | None):
    from envs.backends.maniskill.vector import gpu_sim_available

    backend = "physx_cuda" if gpu_sim_available() else "physx_cpu"
    if backend == "physx_cpu" and num_envs != 1:
        raise UnsupportedRLSetup(f"vec_env='batched' with num_envs={num_envs} needs CUDA (PhysX's CPU backend "
                                 f"holds one scene); use vec_env=subproc on this machine. {SUPPORTED_TEXT}")
    with warnings.catch_warnings():  # ManiSkill's adapter does not pass render_mode to SB3's VecEnv
        warnings.filterwarnings("ignore", message="The `render_mode` attribute is not defined")
        return BatchEpisodes(_maniskill_sb3_adapter(task, num_envs, backend, env_kwargs), success_bonus_gamma)


def _maniskill_sb3_adapter(task: str, num_envs: int, sim_backend: str, env_kwargs: dict):
    """ManiSkill's own SB3 ``VecEnv`` adapter over one batched simulation of ``num_envs`` episodes
    (``physx_cuda``; ``physx_cpu`` holds a single scene), with the task's time limit."""
    from mani_skill.utils.registration import TimeLimitWrapper
    from mani_skill.vector.wrappers.sb3 import ManiSkillSB3VectorEnv

    from envs import get_task
    from envs.backends.maniskill.env import ManiSkillBatchEnv

    class _Timed(TimeLimitWrapper):  # Gymnasium 1.x wrappers no longer forward these attributes
        num_envs = property(lambda self: self.base_env.num_envs)
        single_observation_space = property(lambda self: self.base_env.single_observation_space)
        single_action_space = property(lambda self: self.base_env.single_action_space)

    task_cls = get_task(task)
    base = ManiSkillBatchEnv(task_cls, num_envs=num_envs, sim_backend=sim_backend, **env_kwargs)
    return ManiSkillSB3VectorEnv(_Timed(base, task_cls.max_episode_steps))


def _vec_env_wrapper_base():
    from stable_baselines3.common.vec_env import VecEnvWrapper

    return VecEnvWrapper


class BatchEpisodes(_vec_env_wrapper_base()):
    """What :func:`make_env`'s wrappers give each copy, for ManiSkill's batched SB3 adapter: its
    ``info["episode"]`` carries whole-batch arrays on every step, so it is replaced by Monitor's
    per-episode scalars on the step an episode ends; ``is_success`` and ``TimeLimit.truncated`` as
    plain bools; the :class:`SuccessBonus` added to a successful final step."""

    def __init__(self, venv, success_bonus_gamma: float | None = None):
        super().__init__(venv)
        self.bonus = 0.0 if success_bonus_gamma is None else success_bonus(success_bonus_gamma)
        self.returns = np.zeros(self.num_envs)
        self.lengths = np.zeros(self.num_envs, np.int64)

    def reset(self):
        self.returns[:], self.lengths[:] = 0.0, 0
        return self.venv.reset()

    def step_wait(self):
        obs, reward, done, infos = self.venv.step_wait()
        reward = np.asarray(reward, np.float32).copy()
        for i, info in enumerate(infos):
            info.pop("episode", None)
            truncated = bool(info.get("TimeLimit.truncated", False))
            info["TimeLimit.truncated"] = truncated
            if not done[i]:
                info["is_success"] = False
            else:  # the adapter reads success on done steps; success terminates the episode
                success = bool(info.get("is_success", False))
                info["is_success"] = success
                if success and not truncated:
                    reward[i] += self.bonus
            self.returns[i] += reward[i]
            self.lengths[i] += 1
            if done[i]:
                info["episode"] = {"r": float(self.returns[i]), "l": int(self.lengths[i])}
                self.returns[i], self.lengths[i] = 0.0, 0
        return obs, reward, done, infos
