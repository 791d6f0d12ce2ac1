"""ManiSkill3 backend: compiles scene specs into ManiSkill ``BaseEnv`` environments (SAPIEN/PhysX).

An optional extra (``pip install -e .[maniskill]``); nothing here imports ManiSkill or SAPIEN until
an environment is made, so the MuJoCo-only install never needs them. ``make_env`` checks first
that ManiSkill imports and that SAPIEN finds a Vulkan device, and otherwise raises one
:class:`ManiSkillUnavailable` with the exact fix.
"""
from envs.backends.maniskill.availability import ManiSkillUnavailable, problem, require

__all__ = ["ManiSkillUnavailable", "make_env", "make_vec_env", "problem", "require"]


def make_env(task_cls, num_envs: int = 1, **kwargs):
    """What ``gym.make("roboforge/<task>-v0", sim="maniskill", ...)`` returns (see ``docs/maniskill.md``)."""
    require()
    from envs.backends.maniskill.vector import make_env as _make

    try:
        return _make(task_cls, num_envs=num_envs, **kwargs)
    except RuntimeError as err:  # a Vulkan device that exists but can't serve SAPIEN
        if any(k in str(err) for k in ("vk::", "Vulkan", "rendering device")):
            from envs.backends.maniskill.availability import VULKAN_FIX

            raise ManiSkillUnavailable(f"SAPIEN could not use the Vulkan device ({err}). {VULKAN_FIX}") from err
        raise


def make_vec_env(task: str, num_envs: int, **kwargs):
    """A Gymnasium ``VectorEnv`` of ``num_envs`` episodes of ``task`` with same-step auto-reset."""
    require()
    from envs.backends.maniskill.vector import make_vec_env as _make

    return _make(task, num_envs=num_envs, **kwargs)
