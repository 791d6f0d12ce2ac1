"""The Gymnasium surface every backend offers (``gym.make("roboforge/<task>-v0", sim=...,
obs_mode=..., control_mode=..., render_mode=..., reward_mode=...)``): the allowed values and the
one check of them that each backend runs when it is made."""
from __future__ import annotations

from envs.core.observation import OBS_MODES
from envs.core.robot import CONTROL_MODES
from envs.core.scene import OBJECT_KINDS

SIMS = ("mujoco", "maniskill")
RENDER_MODES = ("rgb_array",)
REWARD_MODES = ("dense", "sparse")
FEATURES = OBJECT_KINDS  # what both backends build today; a backend lacking one declares its own set


def check_modes(backend: str, obs_mode: str, control_mode: str, render_mode: str | None, reward_mode: str) -> None:
    """Raise ``ValueError`` naming the bad argument and the allowed values (``backend`` as users
    call it, e.g. "MuJoCo")."""
    if obs_mode not in OBS_MODES:
        raise ValueError(f"unknown obs_mode {obs_mode!r}; choose one of {', '.join(OBS_MODES)}")
    if control_mode not in CONTROL_MODES:
        raise ValueError(f"unknown control_mode {control_mode!r}; choose one of {', '.join(CONTROL_MODES)}")
    if render_mode is not None and render_mode not in RENDER_MODES:
        raise ValueError(f"unknown render_mode {render_mode!r}; the {backend} backend supports "
                         f"{', '.join(map(repr, RENDER_MODES))}")
    if reward_mode not in REWARD_MODES:
        raise ValueError(f"unknown reward_mode {reward_mode!r}; choose {' or '.join(map(repr, REWARD_MODES))}")


def check_features(task_cls, features: frozenset[str], backend: str) -> None:
    """Reject at load a task that needs an object kind the backend lacks, naming it."""
    missing = set(task_cls.features) - features
    if missing:
        raise ValueError(f"task {task_cls.name!r} needs {sorted(missing)}, which the {backend} backend lacks")
