"""Fixed-length windows over demo episodes for action-chunk policies (diffusion_policy's sampler).

Window start ``s`` runs from ``-(n_obs_steps - 1)`` to ``T - 1``: the observation window is steps
``s .. s + n_obs_steps - 1`` and the action window ``s .. s + horizon - 1``; indices outside the
episode repeat its first/last element, so every real step appears as the "current" step.

Observations come one of two ways. Without ``obs_keys``, ``sample["obs"]`` is the window of the
store's flat vector (n_obs_steps, D), as single-task state policies read it. With ``obs_keys``
(the policy's own observation keys, :data:`VECTOR_KEYS`, camera keys such as ``front_rgb``, or
``pointcloud``),
``sample["obs"]`` is ``{key: window}`` holding those keys and nothing else: a visuomotor policy
asks for cameras + ``proprio`` and never receives the privileged state its store also holds.
``target_keys`` (vector keys, or ``step``: the current step's index in its episode) come apart,
as ``sample["targets"]``: what a training loss may supervise (e.g. where the named objects are)
without the policy ever reading it.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from train.datasets.demo_store import Episode

# vector observation keys an episode can hand out (camera keys are the store's image names)
VECTOR_KEYS = ("state", "slots", "proprio")
STEP_TARGET = "step"   # a target key: the window's current step in its episode (0 = the first observation)


class MissingObservationError(ValueError):
    """A policy asked for an observation key its demo episodes do not hold."""


def episode_observation(ep: Episode, key: str):
    """Episode ``ep``'s observation ``key`` over time: ``state`` (the task's flat state vector),
    ``slots``, ``proprio`` (T, D) float32, or a camera key (``front_rgb`` (T, H, W, 3) uint8,
    ``front_depth`` (T, H, W, 1) float32 m), or ``pointcloud`` ((T, N, 6) float32; images and
    the cloud are arrays or lazy ``Frames`` views). A key the
    episode lacks raises :class:`MissingObservationError` saying why, never a wrong array."""
    where = f"episode seed {ep.seed} of {ep.task or 'a store'} (obs_mode={ep.obs_mode!r})"
    if key == "state":
        if ep.obs_mode == "slots":
            raise MissingObservationError(f"{where} holds no 'state' vector; collect with obs_mode='state'")
        return ep.obs
    if key in ("slots", "proprio"):
        value = getattr(ep, key)
        if value is None:
            raise MissingObservationError(f"{where} holds no {key!r} (a format 2 store, or more objects than "
                                          f"slots); regenerate it with train.demos.collect_demos")
        return value
    if key not in ep.images:
        have = list(VECTOR_KEYS if ep.obs_mode != "slots" else VECTOR_KEYS[1:]) + sorted(ep.images)
        need = "obs_mode='pointcloud'" if key == "pointcloud" else "obs_mode='rgb' or 'rgbd'"
        raise MissingObservationError(f"{where} holds no {key!r}; it has {have}. It needs a store collected "
                                      f"with {need}")
    return ep.images[key]


class SequenceDataset(Dataset):
    def __init__(self, episodes: list[Episode], n_obs_steps: int, horizon: int,
                 obs_keys: Sequence[str] | None = None, target_keys: Sequence[str] = ()):
        self.obs_keys = None if obs_keys is None else tuple(obs_keys)
        self.target_keys = tuple(target_keys)
        bad = [k for k in self.target_keys if k not in VECTOR_KEYS + (STEP_TARGET,)]
        if bad:
            raise ValueError(f"target key {bad[0]!r} is invalid; allowed: {', '.join(VECTOR_KEYS + (STEP_TARGET,))}")
        visual = sorted({e.obs_mode for e in episodes if e.images})
        if self.obs_keys is None and visual:
            # their flat vector is the privileged state: a policy must ask for it by name
            raise MissingObservationError(
                f"episodes of obs_mode={visual[0]!r} hold camera images or point clouds; name the observation keys "
                f"the policy reads, e.g. obs_keys=('front_rgb', 'wrist_rgb', 'proprio') or ('pointcloud', 'proprio') "
                f"(or ('state',) for the privileged state)")
        if self.obs_keys is None:
            self.obs = [torch.from_numpy(np.ascontiguousarray(e.obs, dtype=np.float32)) for e in episodes]
        else:  # vectors as tensors now; images stay where they are (Frames decode on indexing)
            self.obs = [{k: _as_tensor(episode_observation(e, k)) if k in VECTOR_KEYS else episode_observation(e, k)
                         for k in self.obs_keys} for e in episodes]
        self.targets = [{k: _as_tensor(episode_observation(e, k)) for k in self.target_keys if k != STEP_TARGET}
                        for e in episodes]
        self.actions = [torch.from_numpy(np.ascontiguousarray(e.actions, dtype=np.float32)) for e in episodes]
        self.n_obs_steps, self.horizon = n_obs_steps, horizon
        self.index = [(i, s) for i, e in enumerate(episodes) for s in range(-(n_obs_steps - 1), len(e.actions))]

    def __len__(self) -> int:
        return len(self.index)

    def window(self, k: int) -> tuple[int, torch.Tensor, torch.Tensor]:
        """Sample ``k``'s (episode index, observation step indices, action step indices)."""
        i, s = self.index[k]
        T = len(self.actions[i])
        return (i, torch.arange(s, s + self.n_obs_steps).clamp(0, T - 1),
                torch.arange(s, s + self.horizon).clamp(0, T - 1))

    def __getitem__(self, k: int) -> dict:
        i, obs_idx, act_idx = self.window(k)
        if self.obs_keys is None:
            obs = self.obs[i][obs_idx]
        else:
            obs = {key: v[obs_idx] if isinstance(v, torch.Tensor) else torch.from_numpy(v[obs_idx.numpy()])
                   for key, v in self.obs[i].items()}
        sample = {"obs": obs, "action": self.actions[i][act_idx]}
        if self.target_keys:
            sample["targets"] = {key: v[obs_idx] for key, v in self.targets[i].items()}
            if STEP_TARGET in self.target_keys:
                sample["targets"][STEP_TARGET] = obs_idx[-1].clone()
        return sample

    def stacked(self) -> tuple[np.ndarray, np.ndarray]:
        """All flat observations and actions, for fitting normalizers (datasets made without
        ``obs_keys``; otherwise :meth:`stacked_obs` and :meth:`stacked_actions`)."""
        if self.obs_keys is not None:
            raise TypeError(f"this dataset hands out obs_keys={self.obs_keys}; use stacked_obs(key) and "
                            f"stacked_actions()")
        return torch.cat(self.obs).numpy(), self.stacked_actions()

    def stacked_obs(self, key: str, episodes=None) -> np.ndarray:
        """All steps of the vector observation ``key`` (one of the dataset's ``obs_keys``), of
        every episode or of the ``episodes`` indices."""
        if self.obs_keys is None or key not in self.obs_keys or key not in VECTOR_KEYS:
            raise KeyError(f"{key!r} is not a vector observation key of this dataset (obs_keys={self.obs_keys})")
        return torch.cat([self.obs[i][key] for i in (range(len(self.obs)) if episodes is None else episodes)]).numpy()

    def stacked_actions(self, episodes=None) -> np.ndarray:
        return torch.cat([self.actions[i] for i in (range(len(self.actions)) if episodes is None else episodes)]).numpy()


def _as_tensor(x: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
