"""Torch-free runtime for exported roboforge policies: numpy + onnxruntime, nothing else.

    from policies.export.runtime import ExportedPolicy   # or, from an export dir alone:
    from roboforge_runtime import ExportedPolicy          # (the same file, copied there)

    policy = ExportedPolicy("exported/stack_blocks")
    policy.reset()                                        # at the start of every episode
    while True:                                           # at policy.control_hz
        action = policy.select_action(obs)                # obs: (obs_dim,) or {"state": (obs_dim,)}

The names are the training policy's (``select_action``, ``predict_action_chunk``, ``reset``);
``policy(obs_history, noise)`` runs the exported graph once, like the torch policy's ``forward``.

The runtime keeps the observation history and the queue of predicted actions itself (a new chunk
is predicted every ``n_action_steps`` calls, as in training), draws the diffusion noise, and checks
every observation against ``manifest.json``. It never imports torch: ONNX exports run on
onnxruntime. TorchScript exports (``model.pt``) need torch and are loaded with it only when asked for.
This file must stay importable on its own (it is copied into every export directory).
"""
from __future__ import annotations

import json
import os
import warnings
from collections import deque
from pathlib import Path

import numpy as np

MANIFEST = "manifest.json"
MANIFEST_FORMAT = "roboforge-export"
MANIFEST_VERSION = 1
OBS_INPUT, NOISE_INPUT, ACTION_OUTPUT = "obs_history", "noise", "action_chunk"


class ObservationError(ValueError):
    """An observation does not match what the exported policy expects (shape, keys, values)."""


def read_manifest(path: str | os.PathLike) -> dict:
    """``manifest.json`` of an export directory, checked for format and version."""
    path = Path(path)
    file = path / MANIFEST if path.is_dir() else path
    if not file.exists():
        raise FileNotFoundError(f"{path} has no {MANIFEST}; an export directory is written by "
                                f"`python -m policies.export <checkpoint> --format onnx --out DIR`")
    m = json.loads(file.read_text())
    if m.get("format") != MANIFEST_FORMAT:
        raise ValueError(f"{file} is not a roboforge export manifest (format={m.get('format')!r})")
    if not isinstance(m.get("format_version"), int) or m["format_version"] > MANIFEST_VERSION:
        raise ValueError(f"{file}: format_version {m.get('format_version')!r} is newer than this runtime "
                         f"reads (<= {MANIFEST_VERSION}); update roboforge_runtime.py")
    return m


class _OnnxGraph:
    def __init__(self, file: Path, threads: int | None, providers):
        import onnxruntime as ort

        opts = ort.SessionOptions()
        if threads:
            opts.intra_op_num_threads = threads
            opts.inter_op_num_threads = 1
        self.session = ort.InferenceSession(str(file), opts, providers=providers or ["CPUExecutionProvider"])
        self.input_names = [i.name for i in self.session.get_inputs()]

    def __call__(self, feeds: dict[str, np.ndarray]) -> np.ndarray:
        return self.session.run([ACTION_OUTPUT], feeds)[0]


class _TorchScriptGraph:
    def __init__(self, file: Path, threads: int | None, input_names: list[str]):
        import torch  # only for TorchScript artifacts; ONNX needs no torch

        if threads:
            torch.set_num_threads(threads)
        self.torch = torch
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # torch deprecates TorchScript; it still runs
            self.module = torch.jit.load(str(file), map_location="cpu").eval()
        self.input_names = input_names

    def __call__(self, feeds: dict[str, np.ndarray]) -> np.ndarray:
        with self.torch.inference_mode():
            out = self.module(*(self.torch.from_numpy(feeds[n]) for n in self.input_names))
        return out.numpy()


class ExportedPolicy:
    """An exported policy behind the same surface as in training: ``reset()``,
    ``select_action(obs)``, ``predict_action_chunk(obs)``.

    ``select_action`` takes one observation (obs_dim,) -> action (action_dim,), or a batch
    (B, obs_dim) -> (B, action_dim) for B robots/envs stepped in lockstep. Dict observations are read through the
    manifest's observation keys (``state``). ``seed`` seeds the diffusion noise.
    """

    def __init__(self, path: str | os.PathLike, seed: int | None = None, threads: int | None = None,
                 providers: list[str] | None = None, graph=None):
        """``graph`` (a callable {input name: array} -> action chunk) replaces the model file; verify
        uses it to run the source torch module under this same control loop and noise stream."""
        self.path = Path(path)
        self.manifest = m = read_manifest(self.path)
        model = m["model"]
        file = self.path / model["file"]
        if not file.exists():
            raise FileNotFoundError(f"{self.path}: the manifest names model file {model['file']!r}, which is missing")
        self.input_names = [i["name"] for i in model["inputs"]]
        if graph is not None:
            self._graph = graph
        elif model["format"] == "onnx":
            self._graph = _OnnxGraph(file, threads, providers)
            if sorted(self._graph.input_names) != sorted(self.input_names):
                raise ValueError(f"{file} has inputs {self._graph.input_names}; the manifest says {self.input_names}")
        elif model["format"] == "torchscript":
            self._graph = _TorchScriptGraph(file, threads, self.input_names)
        else:
            raise ValueError(f"{self.path}: unknown model format {model['format']!r}; this runtime runs onnx, torchscript")
        obs = m["observation"]
        self.obs_keys = [k["name"] for k in obs["keys"]]
        self.obs_dim = int(sum(int(np.prod(k["shape"])) for k in obs["keys"]))
        self.n_obs_steps = int(obs["history"])
        self.action_dim = int(m["action"]["shape"][0])
        self.n_action_steps = int(m["control"]["n_action_steps"])
        self.control_hz = float(m["control"]["frequency_hz"])
        self.action_low = np.asarray(m["action"]["low"], np.float32)
        self.action_high = np.asarray(m["action"]["high"], np.float32)
        noise = next((i for i in model["inputs"] if i["name"] == NOISE_INPUT), None)
        self.noise_shape = tuple(noise["shape"][1:]) if noise else None
        self._rng = np.random.default_rng(seed)
        self.reset()

    # -- the control loop --------------------------------------------------------------------
    def reset(self, seed: int | None = None, noise_seeds: list[int] | None = None) -> None:
        """Start of an episode: forget the observation history and queued actions. ``seed``
        reseeds the noise stream; ``noise_seeds`` (one per batch row) gives each row its own."""
        if seed is not None:
            self._rng = np.random.default_rng(seed)
        self._row_rngs = None if noise_seeds is None else [np.random.default_rng(int(s)) for s in noise_seeds]
        self._history: deque[np.ndarray] = deque(maxlen=self.n_obs_steps)
        self._queue: deque[np.ndarray] = deque()

    def select_action(self, obs) -> np.ndarray:
        """Observation now -> action to apply now (float32, within the manifest's action bounds).
        A new chunk is predicted when the queued one is used up."""
        if not self._queue:
            self._queue.extend(np.moveaxis(self.predict_action_chunk(obs), -2, 0))  # n x (B?, action_dim)
        else:
            self._observe(obs)
        return self._queue.popleft()

    def predict_action_chunk(self, obs) -> np.ndarray:
        """Observation now (obs_dim,) -> the whole chunk (n_action_steps, action_dim) predicted from
        the observation history, first action to apply now; a batch -> (B, n_action_steps,
        action_dim). ``obs`` joins the history; the queue ``select_action`` executes is left alone."""
        single = self._observe(obs)
        chunk = self(np.stack(self._history, axis=1))
        return chunk[0] if single else chunk

    def __call__(self, obs_history: np.ndarray, noise: np.ndarray | None = None) -> np.ndarray:
        """One call of the exported graph: raw obs history (B, n_obs_steps, obs_dim), oldest first
        [, noise (B, *noise_shape)] -> raw actions (B, n_action_steps, action_dim)."""
        obs_history = np.ascontiguousarray(obs_history, dtype=np.float32)
        want = (self.n_obs_steps, self.obs_dim)
        if obs_history.ndim != 3 or obs_history.shape[1:] != want or obs_history.shape[0] == 0:
            raise ObservationError(f"obs_history has shape {obs_history.shape}; expected (batch, {want[0]}, {want[1]})")
        feeds = {OBS_INPUT: obs_history}
        if self.noise_shape is not None:
            shape = (obs_history.shape[0], *self.noise_shape)
            if noise is None and self._row_rngs is not None:
                if len(self._row_rngs) != shape[0]:
                    raise ValueError(f"reset(noise_seeds=...) gave {len(self._row_rngs)} seeds for a batch of {shape[0]}")
                noise = np.stack([r.standard_normal(shape[1:], dtype=np.float32) for r in self._row_rngs])
            elif noise is None:
                noise = self._rng.standard_normal(shape, dtype=np.float32)
            elif noise.shape != shape:
                raise ValueError(f"noise has shape {noise.shape}; expected {shape}")
            feeds[NOISE_INPUT] = np.ascontiguousarray(noise, dtype=np.float32)
        return self._graph(feeds).astype(np.float32, copy=False)

    def _observe(self, obs) -> bool:
        """Append one observation (or a lockstep batch) to the history; whether it was a single one."""
        batch, single = self._flatten(obs)
        if self._history and self._history[-1].shape[0] != batch.shape[0]:
            raise ObservationError(f"batch size changed from {self._history[-1].shape[0]} to {batch.shape[0]} "
                                   f"within an episode; call reset() first")
        if not self._history:  # as in training: the history starts padded with the first observation
            self._history.extend([batch] * self.n_obs_steps)
        else:
            self._history.append(batch)
        return single

    # -- checks ------------------------------------------------------------------------------
    def _flatten(self, obs) -> tuple[np.ndarray, bool]:
        """(B, obs_dim) float32 from one observation or a batch, flat or a dict; whether it was one."""
        if isinstance(obs, dict):
            missing = [k for k in self.obs_keys if k not in obs]
            if missing:
                raise ObservationError(f"observation dict lacks {missing}; this policy reads keys {self.obs_keys} "
                                       f"(got {sorted(obs)})")
            parts = [np.asarray(obs[k], dtype=np.float32) for k in self.obs_keys]
            obs = parts[0] if len(parts) == 1 else np.concatenate(parts, axis=-1)
        x = np.array(obs, dtype=np.float32)  # a copy: callers may reuse their buffer in place
        single = x.ndim == 1
        if single:
            x = x[None]
        if x.ndim != 2 or x.shape[1] != self.obs_dim or x.shape[0] == 0:
            raise ObservationError(
                f"observation has shape {np.shape(obs)}; this policy expects ({self.obs_dim},) or "
                f"(batch >= 1, {self.obs_dim}): {self.describe_observation()}")
        if not np.isfinite(x).all():
            raise ObservationError("observation contains NaN or inf at indices "
                                   f"{np.argwhere(~np.isfinite(x))[:5, -1].tolist()}")
        return x, single

    def describe_observation(self) -> str:
        """The expected observation layout, e.g. ``state[45] = qpos[0:7] qvel[7:14] ...``."""
        out = []
        for k in self.manifest["observation"]["keys"]:
            fields = " ".join(f"{f['name']}[{f['slice'][0]}:{f['slice'][1]}]" for f in k.get("fields", []))
            out.append(f"{k['name']}{k['shape']}" + (f" = {fields}" if fields else ""))
        return "; ".join(out)

    def __repr__(self) -> str:
        m = self.manifest
        return (f"ExportedPolicy({str(self.path)!r}: {m['policy']['type']} on {m['task']['name']}, "
                f"{m['model']['format']}, obs {self.obs_dim} x{self.n_obs_steps}, action {self.action_dim} "
                f"x{self.n_action_steps} at {self.control_hz:g} Hz)")
