"""roboforge environments: the task API, built-in tasks and simulator backends.

``import envs`` registers every built-in task as the Gymnasium id ``roboforge/<task>-v0``.
"""
import os

# The one place MUJOCO_GL gets its default (headless EGL unless the user chose otherwise). MuJoCo
# reads it when first imported, and every module that imports mujoco lives under this package,
# whose __init__ Python runs first.
os.environ.setdefault("MUJOCO_GL", "egl")

from envs.registry import (SIMS, UnknownTaskError, env_id, get_task, is_builtin, list_tasks,  # noqa: E402
                           make_env, register_task, resolve_tasks, task_source_hash)
from envs import tasks as _tasks  # noqa: E402,F401  (registers the built-in tasks)
from envs.library import load_library  # noqa: E402  (a generated-task library: docs/generation.md)


__all__ = ["SIMS", "UnknownTaskError", "env_id", "get_task", "is_builtin", "list_tasks", "load_library", "make_env",
           "register_task", "resolve_tasks", "task_source_hash"]
