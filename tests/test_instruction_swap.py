"""bench/instruction_swap.py's wrapper: the swapped instruction names the roles the other way
round, and success follows the asked-for stacking (checked on the oracle's real stacking)."""
import gymnasium as gym

import envs
from bench.instruction_swap import StackingOutcome
from train.demos import rollout_oracle


def _oracle_episode(swap: bool):
    env = StackingOutcome(gym.make(envs.env_id("stack_blocks"), obs_mode="state", max_episode_steps=120), swap=swap)
    _, info = env.reset(seed=7)
    task = env.unwrapped.task
    episode = rollout_oracle(env, seed=7)
    env.close()
    return info["instruction"], task, episode


def test_swapped_instruction_asks_for_the_other_stacking():
    given, task, ep = _oracle_episode(swap=False)
    assert given == f"stack the {task.top.color} block on the {task.base.color} block"
    assert ep.success                      # the oracle stacks top on base: what was asked
    swapped, task, ep = _oracle_episode(swap=True)
    assert swapped == f"stack the {task.base.color} block on the {task.top.color} block"
    assert not ep.success                  # the same stacking is not what the swapped words ask
    assert len(ep.actions) == 120          # so the episode runs to its limit
