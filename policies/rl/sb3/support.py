"""Which RL setups the glue can train: the algorithms, and one check with one message that names
the combination asked for and the supported ones."""
from __future__ import annotations

import numpy as np
from gymnasium import spaces

from envs.core.surface import SIMS
from policies.rl.config import ALGORITHMS

SUPPORTED_TEXT = ("supported: policy=ppo or policy=sac, each with obs_mode='state' or 'slots' (a flat "
                  "float Box observation; slots for several tasks) and a continuous Box action space (control_mode 'ee_delta_pose' "
                  "or 'joint_pos'), on sim=mujoco or sim=maniskill; oracle demos (policy.demos > 0) "
                  "with sac only")


class UnsupportedRLSetup(ValueError):
    """An algorithm / observation / action / simulator combination the RL glue cannot train.
    The message names the combination asked for and the supported ones."""


def check_supported(algo: str, observation_space: spaces.Space | None = None,
                    action_space: spaces.Space | None = None, *, obs_mode: str | None = None,
                    sim: str | None = None, demos: int = 0) -> None:
    """Raise :class:`UnsupportedRLSetup` unless ``algo`` can train on these spaces."""
    if algo not in ALGORITHMS:
        raise UnsupportedRLSetup(f"unknown RL algorithm {algo!r}; {SUPPORTED_TEXT}")
    if sim is not None and sim not in SIMS:
        raise UnsupportedRLSetup(f"unknown sim {sim!r} for RL; {SUPPORTED_TEXT}")
    if obs_mode is not None and obs_mode not in ("state", "slots"):
        raise UnsupportedRLSetup(
            f"{algo} with obs_mode={obs_mode!r} is not supported (image / point-cloud observations "
            f"need an encoder the exported MLP policy does not have); {SUPPORTED_TEXT}")
    if observation_space is not None and not (
            isinstance(observation_space, spaces.Box) and len(observation_space.shape) == 1
            and np.issubdtype(observation_space.dtype, np.floating)):
        raise UnsupportedRLSetup(
            f"{algo} needs a flat float Box observation, got {observation_space}; {SUPPORTED_TEXT}")
    if action_space is not None and not (isinstance(action_space, spaces.Box)
                                         and len(action_space.shape) == 1):
        raise UnsupportedRLSetup(
            f"{algo} needs a continuous 1-D Box action space, got {action_space}; {SUPPORTED_TEXT}")
    if demos and algo != "sac":
        raise UnsupportedRLSetup(f"policy.demos={demos} seeds a replay buffer, which {algo} has not; "
                                 f"{SUPPORTED_TEXT}")
