"""Oracle demonstrations, cached in the HDF5 demo store.

Serial on purpose: an episode takes ~0.1 s on MuJoCo, so a few hundred demos take well under a
minute; fanning out over a cluster (Ray) is for the large generated-task libraries.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path

import gymnasium as gym
import numpy as np
from tqdm.auto import tqdm

import envs
from planners import make_oracle
from train.datasets.demo_store import CorruptDemoStoreError, DemoStore, Episode

log = logging.getLogger(__name__)


def default_store_root() -> Path:
    """Where demo stores are cached when a run names no ``data.store_root`` (as configs/config.yaml)."""
    return Path(os.environ.get("ROBOFORGE_CACHE", Path.home() / ".cache" / "roboforge")) / "demos"


def rollout_oracle(env: gym.Env, seed: int) -> Episode:
    oracle = make_oracle(env)
    obs, info = env.reset(seed=seed)
    oracle.reset()
    observations, actions, rewards = [], [], []
    while True:
        action = oracle.act(obs)
        observations.append(obs)
        actions.append(action)
        obs, reward, terminated, truncated, info = env.step(action)
        rewards.append(reward)
        if terminated or truncated:
            break
    return Episode(np.array(observations, np.float32), np.array(actions, np.float32),
                   np.array(rewards, np.float32), seed, bool(info["success"]), info["instruction"],
                   np.asarray(obs, np.float32))


def collect_demos(task: str, num_demos: int, seed_start: int = 0, store_root=None, sim: str = "mujoco",
                  obs_mode: str = "state", control_mode: str = "ee_delta_pose",
                  max_attempts_factor: float = 2.0, progress: bool = True) -> DemoStore:
    """``num_demos`` successful oracle episodes from seeds ``seed_start, seed_start + 1, ...``.

    Reuses a valid cached store; a corrupt one is reported, deleted and regenerated.
    """
    if obs_mode != "state":
        raise ValueError(f"demo collection stores flat vectors; obs_mode={obs_mode!r} is not supported yet, use 'state'")
    env = gym.make(envs.env_id(task), sim=sim, obs_mode=obs_mode, control_mode=control_mode)
    # The key covers the task's code and the backend's observation/action layout, so a change to
    # either (not just to the task file) invalidates the cache.
    layout = json.dumps([list(env.unwrapped.state_layout()), list(env.action_space.shape)])
    code_hash = envs.task_source_hash(task) + hashlib.sha256(layout.encode()).hexdigest()[:8]
    seeds_key = range(seed_start, seed_start + num_demos)
    path = DemoStore.cache_path(store_root or default_store_root(), task, sim, obs_mode, control_mode, seeds_key, code_hash)
    if path.exists():
        try:
            store = DemoStore.open(path)
            if any(ep.final_obs is None for ep in store.episodes):
                raise CorruptDemoStoreError(f"{path}: written by an older roboforge without final observations")
            if store.obs_dim != env.observation_space.shape[0] or store.action_dim != env.action_space.shape[0]:
                raise CorruptDemoStoreError(f"{path}: obs/action dims {store.obs_dim}/{store.action_dim} do not match "
                                            f"the env's {env.observation_space.shape[0]}/{env.action_space.shape[0]}")
            log.info("reusing %d cached demos from %s", len(store), path)
            env.close()
            return store
        except CorruptDemoStoreError as err:
            log.warning("demo cache is unusable and will be regenerated: %s", err)
            path.unlink()
    episodes, attempts = [], int(np.ceil(num_demos * max_attempts_factor))
    bar = tqdm(total=num_demos, desc=f"demos {task}", unit="demo", disable=not progress)
    seed = seed_start
    for seed in range(seed_start, seed_start + attempts):
        ep = rollout_oracle(env, seed)
        if ep.success:
            episodes.append(ep)
            bar.update(1)
        bar.set_postfix(tried=seed - seed_start + 1)
        if len(episodes) == num_demos:
            break
    bar.close()
    env.close()
    if len(episodes) < num_demos:
        raise RuntimeError(f"the oracle solved only {len(episodes)} of {attempts} episodes of {task!r} "
                           f"(seeds {seed_start}..{seed}); needed {num_demos}. Check the task's oracle.")
    return DemoStore.write(path, episodes, task=task, sim=sim, obs_mode=obs_mode, control_mode=control_mode,
                           seeds=[e.seed for e in episodes], code_hash=code_hash)
