"""OpenVLA's action tokenizer and action statistics, bit for bit.

An action (D,) in the robot's units is first normalized with BOUNDS_Q99 statistics of the training
data (``normalize_actions``), then each dimension is discretized into one of 256 uniform bins over
[-1, 1] and written as one language-model token: ``token = vocab_size - digitize(x, bins)``, so the
action tokens are the last 256 ids of the tokenizer's vocabulary (31744..31999 for Llama-2, whose
least-used tokens OpenVLA overwrote). Decoding maps a token back to one of the 255 bin centres.

Statistics live in ``dataset_statistics.json`` in OpenVLA's layout, one entry per dataset
(``unnorm_key``)::

    {"<unnorm_key>": {"action":  {"mean", "std", "max", "min", "q01", "q99", "mask"},   # (D,) lists
                      "proprio": {"mean", "std", "max", "min", "q01", "q99"},
                      "num_transitions": int, "num_trajectories": int}}

(``prismatic/vla/action_tokenizer.py``, ``prismatic/vla/datasets/rlds/utils/data_utils.py`` and
``OpenVLAForActionPrediction.predict_action`` in openvla/openvla.)
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Mapping

import numpy as np

STATISTICS_FILE = "dataset_statistics.json"
N_BINS = 256
# BOUNDS_Q99's guard against a zero range (OpenVLA adds it to q99 - q01 before dividing)
_EPS = 1e-8


class ActionTokenizer:
    """Continuous normalized actions in [-1, 1] <-> token ids in ``[vocab_size - n_bins, vocab_size)``.

    ``vocab_size`` is the text tokenizer's vocabulary (32000 for Llama-2, without the embedding
    table's padding to a multiple of 64)."""

    def __init__(self, vocab_size: int, n_bins: int = N_BINS, min_action: float = -1.0, max_action: float = 1.0):
        if n_bins < 2 or n_bins > vocab_size:
            raise ValueError(f"n_bins={n_bins} is invalid; allowed: 2 <= n_bins <= vocab_size ({vocab_size})")
        self.vocab_size, self.n_bins = int(vocab_size), int(n_bins)
        self.min_action, self.max_action = float(min_action), float(max_action)
        self.bins = np.linspace(min_action, max_action, n_bins)
        self.bin_centers = (self.bins[:-1] + self.bins[1:]) / 2.0

    @property
    def action_token_begin_idx(self) -> int:
        """Smallest id an action can be written as (31744 for Llama-2); ids above it are actions."""
        return self.vocab_size - self.n_bins

    def encode(self, actions: np.ndarray) -> np.ndarray:
        """Normalized actions (..., D) -> token ids (..., D) int64. Values outside [-1, 1] are clipped."""
        actions = np.clip(np.asarray(actions, dtype=np.float64), self.min_action, self.max_action)
        # digitize gives 1..n_bins inside [min, max] (max itself lands in the last bin, n_bins)
        return (self.vocab_size - np.digitize(actions, self.bins)).astype(np.int64)

    def decode(self, token_ids: np.ndarray) -> np.ndarray:
        """Token ids (..., D) -> normalized actions (..., D) at the bin centres. Ids outside the action
        range decode to the nearest end bin, as OpenVLA's ``predict_action`` does."""
        discretized = self.vocab_size - np.asarray(token_ids, dtype=np.int64)
        discretized = np.clip(discretized - 1, 0, self.bin_centers.shape[0] - 1)
        return self.bin_centers[discretized]

    def is_action_token(self, token_ids: np.ndarray) -> np.ndarray:
        ids = np.asarray(token_ids)
        return (ids >= self.action_token_begin_idx) & (ids < self.vocab_size)


# -- statistics ----------------------------------------------------------------------------
def _moments(x: np.ndarray) -> dict[str, list[float]]:
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2 or len(x) == 0:
        raise ValueError(f"statistics need a non-empty (N, D) array, got shape {x.shape}")
    return {"mean": x.mean(0).tolist(), "std": x.std(0).tolist(), "max": x.max(0).tolist(),
            "min": x.min(0).tolist(), "q01": np.quantile(x, 0.01, axis=0).tolist(),
            "q99": np.quantile(x, 0.99, axis=0).tolist()}


def default_action_mask(action_dim: int) -> list[bool]:
    """OpenVLA's convention for end-effector actions: every dimension normalized but the last, the
    gripper, which is already absolute (open/close)."""
    return [True] * (action_dim - 1) + [False]


def compute_statistics(actions: np.ndarray, proprio: np.ndarray | None = None, num_trajectories: int = 1,
                       mask: list[bool] | None = None) -> dict:
    """One dataset's entry of ``dataset_statistics.json``: actions (N, D) and proprio (N, P) over all
    N transitions of ``num_trajectories`` episodes. ``mask`` (D,) says which action dimensions are
    normalized (default: all but the gripper, the last)."""
    actions = np.asarray(actions, dtype=np.float64)
    stats = {"action": _moments(actions)}
    stats["action"]["mask"] = list(map(bool, mask if mask is not None else default_action_mask(actions.shape[1])))
    if len(stats["action"]["mask"]) != actions.shape[1]:
        raise ValueError(f"mask has {len(stats['action']['mask'])} entries; the actions have {actions.shape[1]} dimensions")
    # OpenVLA writes zeros for proprio when a dataset has none
    stats["proprio"] = _moments(proprio if proprio is not None else np.zeros((len(actions), actions.shape[1])))
    stats["num_transitions"] = int(len(actions))
    stats["num_trajectories"] = int(num_trajectories)
    return stats


def check_unnorm_key(norm_stats: Mapping[str, dict], unnorm_key: str | None) -> str:
    """The dataset whose statistics un-normalize actions; ``None`` is allowed when there is only one."""
    if not norm_stats:
        raise ValueError("the model has no action statistics (norm_stats is empty)")
    if unnorm_key is None:
        if len(norm_stats) != 1:
            raise ValueError(f"the model was trained on {len(norm_stats)} datasets; pass unnorm_key= one of: "
                             f"{', '.join(sorted(norm_stats))}")
        return next(iter(norm_stats))
    if unnorm_key not in norm_stats:
        raise ValueError(f"unnorm_key={unnorm_key!r} is invalid; allowed: {', '.join(sorted(norm_stats))}")
    return unnorm_key


def _action_arrays(action_stats: Mapping) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    low, high = np.asarray(action_stats["q01"], np.float64), np.asarray(action_stats["q99"], np.float64)
    mask = np.asarray(action_stats.get("mask", np.ones_like(low, dtype=bool)), dtype=bool)
    constant = np.asarray(action_stats["min"], np.float64) == np.asarray(action_stats["max"], np.float64)
    return low, high, mask, constant


def normalize_actions(actions: np.ndarray, action_stats: Mapping) -> np.ndarray:
    """BOUNDS_Q99: masked dimensions -> ``clip(2 (x - q01) / (q99 - q01 + 1e-8) - 1, -1, 1)``, the
    others unchanged; dimensions that never vary in the data (min == max) -> 0."""
    x = np.asarray(actions, dtype=np.float64)
    low, high, mask, constant = _action_arrays(action_stats)
    x = np.where(mask, np.clip(2 * (x - low) / (high - low + _EPS) - 1, -1, 1), x)
    return np.where(constant, 0.0, x)


def unnormalize_actions(normalized: np.ndarray, action_stats: Mapping) -> np.ndarray:
    """Inverse of BOUNDS_Q99 on masked dimensions (``0.5 (x + 1) (q99 - q01) + q01``); the others are
    returned as they are, as in OpenVLA's ``predict_action``."""
    x = np.asarray(normalized, dtype=np.float64)
    low, high, mask, _ = _action_arrays(action_stats)
    return np.where(mask, 0.5 * (x + 1) * (high - low) + low, x)


def save_statistics(norm_stats: Mapping[str, dict], directory: str | os.PathLike) -> Path:
    """Write ``directory/dataset_statistics.json`` (OpenVLA's layout)."""
    path = Path(directory) / STATISTICS_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(norm_stats, indent=2) + "\n")
    return path


def load_statistics(path: str | os.PathLike) -> dict:
    """Read ``dataset_statistics.json`` (a file, or a directory holding one) and check its layout."""
    path = Path(path)
    if path.is_dir():
        path = path / STATISTICS_FILE
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist; a VLA checkpoint keeps its action statistics there")
    stats = json.loads(path.read_text())
    for key, entry in stats.items():
        missing = [f for f in ("q01", "q99", "min", "max") if f not in entry.get("action", {})]
        if missing:
            raise ValueError(f"{path}: entry {key!r} has no action statistics {missing}")
    return stats
