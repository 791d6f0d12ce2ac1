"""Resumable training state: the SB3 model, VecNormalize statistics, the filled part of SAC's
replay buffer and a progress note, swapped in whole."""
from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np

from envs.core.fileio import Artifact, atomic_dir, previous_dir
from policies.rl.sb3.algorithms import algorithm_class

_BUFFER_FIELDS = ("observations", "next_observations", "actions", "rewards", "dones", "timeouts")
# what a save may replace: the previous training state, nothing else
TRAINING_STATE_ARTIFACT = Artifact("RL training state", ("model.zip", "vecnormalize.pkl", "replay_buffer.npz",
                                                         "progress.json"))


def save_replay_buffer(buffer, path: Path) -> None:
    """The filled part of an SB3 ``ReplayBuffer`` as ``.npz`` (SB3's own pickle writes the whole
    preallocated buffer: 240 MB for 1M slots of a 25-D observation, however few are filled)."""
    n = buffer.buffer_size if buffer.full else buffer.pos
    np.savez(path, pos=buffer.pos, full=buffer.full, **{f: getattr(buffer, f)[:n] for f in _BUFFER_FIELDS})


def load_replay_buffer(buffer, path: Path) -> None:
    """Inverse of :func:`save_replay_buffer`. A run resumed with another ``num_envs`` gets the
    same transitions regrouped into rows of its own width (rows need not be one time step)."""
    with np.load(path) as z:
        data = {f: z[f] for f in _BUFFER_FIELDS}
        pos, full = int(z["pos"]), bool(z["full"])
    rows, width = data["observations"].shape[:2]
    if width != buffer.n_envs:
        flat = {f: v.reshape(rows * width, *v.shape[2:]) for f, v in data.items()}
        rows = len(flat["observations"]) // buffer.n_envs
        data = {f: v[:rows * buffer.n_envs].reshape(rows, buffer.n_envs, *v.shape[1:]) for f, v in flat.items()}
        pos, full = rows, False
    if rows > buffer.buffer_size:  # keep the newest rows that fit
        data = {f: v[-buffer.buffer_size:] for f, v in data.items()}
        rows, pos, full = buffer.buffer_size, 0, True
    for f in _BUFFER_FIELDS:
        getattr(buffer, f)[:rows] = data[f]
    buffer.pos, buffer.full = pos % buffer.buffer_size, full or pos >= buffer.buffer_size


def save_training_state(directory: str | Path, model, venv_norm, *, replay_buffer: bool,
                        extra: dict | None = None) -> None:
    """Everything needed to resume: the SB3 model (weights, optimizers, step count), the
    VecNormalize statistics, SAC's replay buffer (optional: it can be large) and a progress note.
    Written to a sibling folder and swapped in, so a run killed mid-save keeps the last good one."""
    with atomic_dir(directory, TRAINING_STATE_ARTIFACT, keep_previous=True) as tmp:
        model.save(tmp / "model.zip")
        venv_norm.save(str(tmp / "vecnormalize.pkl"))
        if replay_buffer and hasattr(model, "replay_buffer") and model.replay_buffer is not None:
            save_replay_buffer(model.replay_buffer, tmp / "replay_buffer.npz")
        (tmp / "progress.json").write_text(json.dumps({"num_timesteps": int(model.num_timesteps), **(extra or {})}))


def find_training_state(directory: str | Path) -> Path | None:
    """The newest complete training state in ``directory`` (or its ``.old`` twin left by a run
    killed mid-swap), or None."""
    directory = Path(directory)
    for d in (directory, previous_dir(directory)):
        if (d / "model.zip").is_file() and (d / "vecnormalize.pkl").is_file() and (d / "progress.json").is_file():
            return d
    return None


def load_training_state(directory: Path, algo: str, venv, *, tensorboard_log: str | None = None):
    """Inverse of :func:`save_training_state`: (model, normalized venv, progress dict)."""
    from stable_baselines3.common.vec_env import VecNormalize

    with open(directory / "vecnormalize.pkl", "rb") as f:
        saved = pickle.load(f).observation_space
    if saved.shape != venv.observation_space.shape:
        raise ValueError(f"cannot resume from {directory}: it was trained on observations of shape {saved.shape}, "
                         f"the env now gives {venv.observation_space.shape} (the task or the observation layout "
                         f"changed since); start a fresh run in a new directory")
    venv_norm = VecNormalize.load(str(directory / "vecnormalize.pkl"), venv)
    venv_norm.training = True
    model = algorithm_class(algo).load(directory / "model.zip", env=venv_norm, device="cpu",
                                       tensorboard_log=tensorboard_log)
    if (directory / "replay_buffer.npz").is_file() and getattr(model, "replay_buffer", None) is not None:
        load_replay_buffer(model.replay_buffer, directory / "replay_buffer.npz")
    progress = json.loads((directory / "progress.json").read_text())
    return model, venv_norm, progress
