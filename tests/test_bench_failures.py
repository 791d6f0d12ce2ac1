"""bench.failures names why an episode failed from the recorded scene state."""
import gymnasium as gym
import numpy as np

import envs
from bench.failures import classify, rollout
from planners import make_oracle


def test_oracle_succeeds_and_an_idle_arm_is_a_missed_grasp():
    seeds = [100000, 100001]
    idle = rollout(lambda obs: np.tile([0, 0, 0, 0, 0, 0, 1.0], (len(obs), 1)), lambda: None, "stack_blocks", seeds)
    assert [classify(r)["kind"] for r in idle] == ["missed_grasp", "missed_grasp"]
    assert all(classify(r)["tcp_moved_last40"] < 0.01 for r in idle)

    # the oracle reads its own env's privileged state, so it cannot drive rollout's envs: replay its actions instead
    actions = []
    for s in seeds:
        env = gym.make(envs.env_id("stack_blocks"))
        obs, _ = env.reset(seed=s)
        o = make_oracle(env)
        o.reset()
        acts, done = [], False
        while not done:
            a = o.act(obs)
            acts.append(a)
            obs, _, term, trunc, _ = env.step(a)
            done = term or trunc
        actions.append(acts)
    t = {"i": 0}
    def replay(obs):
        i = t["i"]
        t["i"] += 1
        return np.stack([a[min(i, len(a) - 1)] for a in actions])
    recs = rollout(replay, lambda: None, "stack_blocks", seeds)
    facts = [classify(r) for r in recs]
    assert [f["kind"] for f in facts] == ["success", "success"]
    assert all(f["first_lift"] is not None and f["final_xy_err"] < 0.02 for f in facts)

    # the same actions, but the gripper opens 5 steps after the lift: dropped on the way
    lift = facts[0]["first_lift"]
    drop = [[a if i < lift + 5 else np.append(a[:6], 1.0) for i, a in enumerate(acts)] for acts in actions[:1]]
    t["i"] = 0
    actions[:] = drop
    assert classify(rollout(replay, lambda: None, "stack_blocks", seeds[:1])[0])["kind"] == "grasp_lost"
