"""Fixed-length windows over demo episodes for action-chunk policies (diffusion_policy's sampler).

Window start ``s`` runs from ``-(n_obs_steps - 1)`` to ``T - 1``: the observation window is steps
``s .. s + n_obs_steps - 1`` and the action window ``s .. s + horizon - 1``; indices outside the
episode repeat its first/last element, so every real step appears as the "current" step.
"""
from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import Dataset

from train.datasets.demo_store import Episode


class SequenceDataset(Dataset):
    def __init__(self, episodes: list[Episode], n_obs_steps: int, horizon: int):
        self.obs = [torch.from_numpy(np.ascontiguousarray(e.obs, dtype=np.float32)) for e in episodes]
        self.actions = [torch.from_numpy(np.ascontiguousarray(e.actions, dtype=np.float32)) for e in episodes]
        self.n_obs_steps, self.horizon = n_obs_steps, horizon
        self.index = [(i, s) for i, e in enumerate(episodes) for s in range(-(n_obs_steps - 1), len(e.actions))]

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, k: int) -> dict[str, torch.Tensor]:
        i, s = self.index[k]
        T = len(self.actions[i])
        obs_idx = torch.arange(s, s + self.n_obs_steps).clamp(0, T - 1)
        act_idx = torch.arange(s, s + self.horizon).clamp(0, T - 1)
        return {"obs": self.obs[i][obs_idx], "action": self.actions[i][act_idx]}

    def stacked(self) -> tuple[np.ndarray, np.ndarray]:
        """All observations and actions, for fitting normalizers."""
        return torch.cat(self.obs).numpy(), torch.cat(self.actions).numpy()
