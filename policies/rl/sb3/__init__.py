"""stable-baselines3 glue, one concern per module; everything works on plain SB3 objects and
:func:`train.rl.run_rl` strings it together.

- :mod:`.support`: which algorithm / observation / action / simulator setups can be trained.
- :mod:`.vec_env`: roboforge tasks as SB3 vector envs (per process, or ManiSkill's batch).
- :mod:`.algorithms`: PPO / SAC with an MLP policy, built from the config.
- :mod:`.demos`: oracle demonstrations into SAC's replay buffer.
- :mod:`.checkpoints`: training state that resumes (model, normalizer, replay buffer).
- :mod:`.to_policy`: the trained actor as the common policy surface (``MLPActorPolicy``).
"""
from policies.rl.sb3.algorithms import ACTIVATIONS, algorithm_class, build_model
from policies.rl.sb3.checkpoints import (find_training_state, load_replay_buffer, load_training_state,
                                         save_replay_buffer, save_training_state)
from policies.rl.sb3.demos import add_demos
from policies.rl.sb3.support import ALGORITHMS, SUPPORTED_TEXT, UnsupportedRLSetup, check_supported
from policies.rl.sb3.to_policy import export_policy
from policies.rl.sb3.vec_env import (VEC_ENVS, BatchEpisodes, SuccessBonus, TaskMixture, make_env, make_vec_env,
                                     success_bonus)

__all__ = ["ACTIVATIONS", "ALGORITHMS", "SUPPORTED_TEXT", "VEC_ENVS", "BatchEpisodes", "SuccessBonus",
           "TaskMixture", "UnsupportedRLSetup", "add_demos", "algorithm_class", "build_model", "check_supported", "export_policy",
           "find_training_state", "load_replay_buffer", "load_training_state", "make_env", "make_vec_env",
           "save_replay_buffer", "save_training_state", "success_bonus"]
