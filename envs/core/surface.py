"""The Gymnasium surface every backend offers (``gym.make("roboforge/<task>-v0", sim=...,
obs_mode=..., control_mode=..., render_mode=..., render_size=..., reward_mode=...)``): the allowed
values, the one check of them that each backend runs when it is made, and what ``env.render()``
shows."""
from __future__ import annotations

from envs.core.observation import OBS_MODES
from envs.core.robot import CONTROL_MODES
from envs.core.scene import OBJECT_KINDS

SIMS = ("mujoco", "maniskill")
RENDER_MODES = ("rgb_array",)
REWARD_MODES = ("dense", "sparse")
FEATURES = OBJECT_KINDS  # what both backends build today; a backend lacking one declares its own set

# env.render() (evaluation videos): the "overview" camera, world frame as FRONT_CAMERA: eye (m), the
# point it looks at (m), vertical field of view (degrees). A 3/4 view facing the robot from the far
# side of the table, to the robot's right and above: 0.85 m from a point above the table centre,
# 38 degrees of elevation, 40 degrees off the y axis. The fingers open along world x and this
# camera looks mostly along +y, into the gap between them, so a grasped or stacked block stays
# visible; the table-top regions, the arm and the hand's home pose fit in a 4:3 frame. Not an
# observation camera: changing it changes no policy's inputs.
RENDER_CAMERA_NAME = "overview"
RENDER_CAMERA = ((0.911, -0.513, 0.643), (0.48, 0.0, 0.12), 45.0)
RENDER_SIZE = (480, 360)  # (width, height) pixels: 4:3, readable on a laptop screen


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


def check_render_size(size) -> tuple[int, int]:
    """``render_size`` as given to an env (an int for a square, or (width, height)) -> (w, h)."""
    if isinstance(size, int) and not isinstance(size, bool):
        size = (size, size)
    try:
        w, h = (int(v) for v in size)
    except (TypeError, ValueError):
        w = h = 0
    if not (16 <= w <= 4096 and 16 <= h <= 4096) or list(size) != [w, h]:
        raise ValueError(f"render_size={size!r} is invalid; allowed: an int or (width, height), "
                         f"each in 16..4096 pixels")
    return w, h
