"""The current sub-goal as part of the observation: what a GravMAD policy reads at test time.

``SubGoalObservation(env, provider)`` asks a :class:`~planners.subgoals.providers.SubGoalTracker`
for the sub-goal after every reset and step and adds it to the Dict observation as ``"subgoal"``:
(4,) float32, x, y, z (m, world frame) and gripper openness in [0, 1]. A sub-goal the tracker
rejects (outside the workspace, an object not in the scene, no plan) keeps the previous one; the
count and the reasons are in ``info["subgoal_fallbacks"]`` / ``info["subgoal_rejections"]``, and
the episode goes on.
"""
from __future__ import annotations

import gymnasium as gym
import numpy as np

from planners.subgoals.providers import SubGoalTracker, make_provider

SUBGOAL_KEY = "subgoal"


class SubGoalObservation(gym.Wrapper):
    """``env`` (a Dict observation space, e.g. obs_mode=pointcloud) with the provider's current
    sub-goal under ``"subgoal"``; ``provider``: a name (manual, offline, llm) or a provider object."""

    def __init__(self, env: gym.Env, provider="manual", **provider_kw):
        super().__init__(env)
        if not isinstance(env.observation_space, gym.spaces.Dict):
            raise ValueError("SubGoalObservation needs a Dict observation (obs_mode=pointcloud, rgb or rgbd); "
                             f"got {type(env.observation_space).__name__}")
        self.tracker = SubGoalTracker(make_provider(provider, **provider_kw) if isinstance(provider, str)
                                      else provider)
        self.observation_space = gym.spaces.Dict({**env.observation_space.spaces, SUBGOAL_KEY: gym.spaces.Box(
            low=np.array([-np.inf] * 3 + [0.0], np.float32), high=np.array([np.inf] * 3 + [1.0], np.float32))})

    def _with_subgoal(self, obs, info):
        goal = self.tracker.update()
        obs = {**obs, SUBGOAL_KEY: np.array([*goal.pos, goal.gripper_open], np.float32)}
        info = {**info, "subgoal_fallbacks": self.tracker.fallbacks,
                "subgoal_rejections": list(self.tracker.rejections)}
        return obs, info

    def reset(self, **kwargs):
        obs, info = self.env.reset(**kwargs)
        self.tracker.reset(self.env)
        return self._with_subgoal(obs, info)

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        obs, info = self._with_subgoal(obs, info)
        return obs, reward, terminated, truncated, info
