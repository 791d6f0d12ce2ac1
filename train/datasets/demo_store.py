"""The one HDF5 demo store: one file per cache key, written atomically, validated on open.

Layout::

    /                      attrs: task, sim, obs_mode, control_mode, seeds, code_hash,
                                  roboforge_version, format_version, created, complete
    /episodes/ep_<seed>/   obs (T, D) float32, actions (T, A) float32, rewards (T,) float32,
                           final_obs (D,) float32 (the observation after the last action)
                           attrs: seed, success, length, instruction
"""
from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from envs.core.fileio import atomic_file

FORMAT_VERSION = 2  # 2: final_obs, so episodes replay as (obs, action, reward, next_obs)


class CorruptDemoStoreError(RuntimeError):
    """The file is truncated, unreadable or inconsistent; regenerate it."""


@dataclass
class Episode:
    obs: np.ndarray       # (T, D)
    actions: np.ndarray   # (T, A)
    rewards: np.ndarray   # (T,)
    seed: int
    success: bool
    instruction: str = ""
    final_obs: np.ndarray | None = None  # (D,): completes the last transition (RL replay buffers)


def _version() -> str:
    try:
        from importlib.metadata import version
        return version("roboforge")
    except Exception:
        return "unknown"


class DemoStore:
    def __init__(self, path: Path, meta: dict, episodes: list[Episode]):
        self.path, self.meta, self.episodes = Path(path), meta, episodes

    @staticmethod
    def cache_path(root, task: str, sim: str, obs_mode: str, control_mode: str, seeds, code_hash: str) -> Path:
        seeds = list(seeds)
        key = json.dumps([task, sim, obs_mode, control_mode, seeds[0], seeds[-1], len(seeds), code_hash])
        digest = hashlib.sha256(key.encode()).hexdigest()[:12]
        return Path(root) / f"{task}_{sim}_{obs_mode}_{control_mode}_n{len(seeds)}_{digest}.h5"

    @classmethod
    def write(cls, path, episodes: list[Episode], **meta) -> "DemoStore":
        """Write atomically: a crash leaves either the old file or none, never half a file."""
        path = Path(path)
        meta = {**meta, "roboforge_version": _version(), "format_version": FORMAT_VERSION,
                "created": time.strftime("%Y-%m-%dT%H:%M:%S")}
        with atomic_file(path) as tmp, h5py.File(tmp, "w") as f:
            for k, v in meta.items():
                f.attrs[k] = v
            g = f.create_group("episodes")
            for ep in episodes:
                e = g.create_group(f"ep_{ep.seed}")
                e.create_dataset("obs", data=ep.obs.astype(np.float32), compression="lzf")
                e.create_dataset("actions", data=ep.actions.astype(np.float32), compression="lzf")
                e.create_dataset("rewards", data=ep.rewards.astype(np.float32))
                if ep.final_obs is not None:
                    e.create_dataset("final_obs", data=np.asarray(ep.final_obs, np.float32))
                e.attrs.update(seed=ep.seed, success=bool(ep.success), length=len(ep.actions),
                               instruction=ep.instruction)
            f.attrs["complete"] = True  # written last: its absence means an interrupted write
        return cls(path, meta, episodes)

    @classmethod
    def open(cls, path) -> "DemoStore":
        path = Path(path)
        try:
            with h5py.File(path, "r") as f:
                if not f.attrs.get("complete", False):
                    raise CorruptDemoStoreError(f"{path}: incomplete (its writer was interrupted)")
                meta = {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in f.attrs.items()}
                episodes = []
                for name, e in f["episodes"].items():
                    ep = Episode(e["obs"][()], e["actions"][()], e["rewards"][()], int(e.attrs["seed"]),
                                 bool(e.attrs["success"]), str(e.attrs.get("instruction", "")),
                                 e["final_obs"][()] if "final_obs" in e else None)
                    if not (len(ep.obs) == len(ep.actions) == len(ep.rewards) == e.attrs["length"]):
                        raise CorruptDemoStoreError(f"{path}: episode {name} has inconsistent lengths")
                    if not (np.isfinite(ep.obs).all() and np.isfinite(ep.actions).all()):
                        raise CorruptDemoStoreError(f"{path}: episode {name} contains NaN/inf")
                    episodes.append(ep)
        except CorruptDemoStoreError:
            raise
        except (OSError, KeyError, ValueError) as err:  # truncated or garbage bytes
            raise CorruptDemoStoreError(f"{path}: unreadable HDF5 demo store ({err})") from err
        if not episodes:
            raise CorruptDemoStoreError(f"{path}: holds no episodes")
        episodes.sort(key=lambda ep: ep.seed)
        return cls(path, meta, episodes)

    @property
    def obs_dim(self) -> int:
        return self.episodes[0].obs.shape[1]

    @property
    def action_dim(self) -> int:
        return self.episodes[0].actions.shape[1]

    def __len__(self) -> int:
        return len(self.episodes)
