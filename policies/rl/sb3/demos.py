"""Oracle demonstrations into an off-policy model's replay buffer."""
from __future__ import annotations

import numpy as np

from policies.rl.sb3.support import UnsupportedRLSetup


def add_demos(model, episodes, *, success_bonus: float | None = None, sparse: bool = False,
              normalizer=None) -> dict:
    """Put demo-store episodes (``train.datasets.demo_store.Episode``) into the off-policy
    ``model``'s replay buffer as the transitions the training env would have produced: the stored
    dense reward (or the sparse one: 1 on the success step), the training env's success bonus on
    that step, terminated on success and truncated otherwise. Raw observations: SB3 normalizes at
    sampling time; ``normalizer`` (a VecNormalize) has its statistics seeded from them."""
    if getattr(model.replay_buffer, "optimize_memory_usage", False):
        raise UnsupportedRLSetup("demos need the replay buffer's optimize_memory_usage=False")
    rows = {"obs": [], "next_obs": [], "action": [], "reward": [], "done": [], "timeout": []}
    for ep in episodes:
        if ep.final_obs is None:
            raise ValueError(f"demo episode (seed {ep.seed}) has no final observation; regenerate its store")
        n = len(ep.actions)
        reward = np.zeros(n, np.float32) if sparse else ep.rewards.astype(np.float32)
        end = np.arange(n) == n - 1
        if ep.success:  # the dense reward already pays 1 on the success step
            if sparse:
                reward[-1] = 1.0
            reward[-1] += success_bonus or 0.0
        rows["obs"].append(ep.obs)
        rows["next_obs"].append(np.concatenate([ep.obs[1:], ep.final_obs[None]]))
        rows["action"].append(np.clip(ep.actions, -1.0, 1.0))
        rows["reward"].append(reward)
        rows["done"].append(end)
        rows["timeout"].append(end & (not ep.success))
    data = {k: np.concatenate(v) for k, v in rows.items()}
    if normalizer is not None:
        normalizer.obs_rms.update(data["obs"])
    # the buffer takes one row of n_envs transitions per add(); rows need not be one time step
    n = model.replay_buffer.n_envs
    usable = len(data["obs"]) - len(data["obs"]) % n
    for i in range(0, usable, n):
        sl = slice(i, i + n)
        model.replay_buffer.add(data["obs"][sl], data["next_obs"][sl], data["action"][sl], data["reward"][sl],
                                data["done"][sl], [{"TimeLimit.truncated": bool(t)} for t in data["timeout"][sl]])
    return {"demo_episodes": len(episodes), "demo_steps": usable,
            "demo_successes": sum(bool(ep.success) for ep in episodes)}
