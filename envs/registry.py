"""Task registry and Gymnasium registration: every task becomes ``roboforge/<name>-v0``."""
from __future__ import annotations

import difflib
import hashlib
import inspect
from typing import Sequence

import gymnasium as gym

from envs.core.surface import SIMS
from envs.core.task import Task

_TASKS: dict[str, type[Task]] = {}


class UnknownTaskError(ValueError):
    """Raised for a task name that is not registered; the message lists the known ones."""


def env_id(name: str) -> str:
    return f"roboforge/{name}-v0"


def register_task(name: str):
    """Class decorator: ``@register_task("stack_blocks")`` registers the task and its gym id."""

    def deco(cls: type[Task]) -> type[Task]:
        if not (isinstance(cls, type) and issubclass(cls, Task)):
            raise TypeError(f"@register_task({name!r}) must decorate a Task subclass, got {cls!r}")
        cls.name = name
        _TASKS[name] = cls
        gid = env_id(name)
        if gid in gym.registry:  # re-registration (e.g. a reloaded library) replaces the old one
            del gym.registry[gid]
        gym.register(id=gid, entry_point="envs.registry:make_env",
                     kwargs={"task": name}, max_episode_steps=cls.max_episode_steps)
        return cls

    return deco


def list_tasks() -> list[str]:
    return sorted(_TASKS)


def get_task(name: str) -> type[Task]:
    try:
        return _TASKS[name]
    except KeyError:
        close = difflib.get_close_matches(name, _TASKS, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise UnknownTaskError(
            f"unknown task {name!r}.{hint} Known tasks: {', '.join(list_tasks())}") from None


def is_builtin(task: str) -> bool:
    """A task shipped in ``envs/tasks`` (not loaded from a generated library)."""
    return get_task(task).__module__.startswith("envs.tasks.")


def resolve_tasks(env, library_tasks: Sequence[str] = ()) -> list[str]:
    """The task names ``env=`` stands for: a name, a list of names, ``builtin`` (every built-in
    task, then ``library_tasks``) or ``library`` (``library_tasks``). An unknown name raises
    :class:`UnknownTaskError` naming it and listing the known tasks. Training (train.py) and
    export (the run's config.yaml) read a run's task set through this one function."""
    if env == "builtin":
        tasks = [t for t in list_tasks() if is_builtin(t)] + list(library_tasks)
    elif env == "library":
        tasks = list(library_tasks)
    else:
        tasks = list(env) if isinstance(env, (list, tuple)) else [env]
    for task in tasks:
        get_task(task)
    return list(dict.fromkeys(tasks))


def task_source_hash(name: str) -> str:
    """Hash of the task's source file: demo caches keyed on it go stale when the task changes."""
    cls = get_task(name)
    try:
        src = inspect.getsource(inspect.getmodule(cls))
    except (OSError, TypeError):
        src = repr(cls.__dict__)
    return hashlib.sha256(src.encode()).hexdigest()[:16]


def make_env(task: str, sim: str = "mujoco", **kwargs) -> gym.Env:
    """Gymnasium entry point: the task on the chosen simulator backend."""
    task_cls = get_task(task)
    if sim == "mujoco":
        from envs.backends.mujoco.env import MujocoTaskEnv

        return MujocoTaskEnv(task_cls, **kwargs)
    if sim == "maniskill":
        from envs.backends.maniskill import make_env as make_maniskill_env

        return make_maniskill_env(task_cls, **kwargs)
    raise ValueError(f"unknown sim {sim!r}; choose one of {', '.join(SIMS)}")
