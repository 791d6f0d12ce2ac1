"""Torch-free runtime for exported roboforge policies: numpy + onnxruntime, nothing else.

    from policies.export.runtime import ExportedPolicy   # or, from an export dir alone:
    from roboforge_runtime import ExportedPolicy          # (the same file, copied there)

    policy = ExportedPolicy("exported/stack_blocks")
    policy.reset()                                        # at the start of every episode
    while True:                                           # at policy.control_hz
        action = policy.select_action(obs)                # obs: (obs_dim,) or the env's dict

A policy that reads an instruction takes it per episode, as a string or as its embedding:
``policy.reset(instruction="stack the red block on the blue block")`` (embedded here by the text
encoder exported beside the graph: ``tokenizer.json`` through the ``tokenizers`` package, then
``text_encoder.onnx``) or ``policy.reset(instruction_embedding=vec)``; ``policy.instruction_input``
says which it was given.

A GravMAD policy also reads the current sub-goal, ``obs["subgoal"]`` (4,): x, y, z (m, robot base
frame) and gripper openness in [0, 1], as ``planners.subgoals.SubGoalObservation`` puts it into the
env's observation (on a robot: your sub-goal planner's current target); the graph builds its GravMap.

The names are the training policy's (``select_action``, ``predict_action_chunk``, ``reset``);
``policy(obs_history, noise)`` runs the exported graph once, like the torch policy's ``forward``.

The runtime keeps the observation history (every input: vector, camera images) and the queue of predicted actions itself (a new chunk
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
MANIFEST_VERSION = 3   # 3: point cloud and sub-goal inputs, inputs without history; 2: camera, instruction
                       # and slots inputs; 1: one flat observation
OBS_INPUT, NOISE_INPUT, ACTION_OUTPUT = "obs_history", "noise", "action_chunk"
INSTRUCTION_INPUT = "instruction_embedding"


class ObservationError(ValueError):
    """An observation does not match what the exported policy expects (shape, keys, values)."""


class InstructionTruncatedWarning(UserWarning):
    """An instruction was longer than the text encoder reads; its tail was cut off."""


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


class TextEncoder:
    """Instruction strings -> (N, dim) unit embeddings, torch-free: ``tokenizer.json`` (the
    ``tokenizers`` package) then ``text_encoder.onnx`` (token embeddings, mean-pooled over the
    attention mask, L2-normalized, inside the graph). Each distinct string is embedded once.
    With ``tokens`` (a token-fusion policy): (N, tokens, dim), each instruction's first ``tokens``
    word-piece embeddings, zero rows after them (as the policy was trained)."""

    def __init__(self, path: Path, spec: dict, threads: int | None = None, providers=None,
                 tokens: int | None = None):
        self.tokens = tokens
        import onnxruntime as ort
        from tokenizers import Tokenizer

        self.max_tokens = int(spec["max_tokens"])
        self.tokenizer = Tokenizer.from_file(str(path / spec["tokenizer"]))
        self.tokenizer.enable_truncation(self.max_tokens)
        self.tokenizer.enable_padding(pad_id=int(spec.get("pad_id", 0)), pad_token=spec.get("pad_token", "[PAD]"))
        opts = ort.SessionOptions()
        if threads:
            opts.intra_op_num_threads = threads
        self.session = ort.InferenceSession(str(path / spec["file"]), opts,
                                            providers=providers or ["CPUExecutionProvider"])
        self.name = spec.get("model", "text encoder")
        self._cache: dict[str, np.ndarray] = {}

    def __call__(self, texts: list[str]) -> np.ndarray:
        todo = [t for t in dict.fromkeys(texts) if t not in self._cache]
        if todo:
            encodings = self.tokenizer.encode_batch(todo)
            for text, enc in zip(todo, encodings):
                if enc.overflowing:
                    warnings.warn(f"instruction longer than {self.name}'s {self.max_tokens} word pieces; its tail "
                                  f"was cut off: {text[:60]!r}...", InstructionTruncatedWarning, stacklevel=4)
            feeds = {"input_ids": np.array([e.ids for e in encodings], np.int64),
                     "attention_mask": np.array([e.attention_mask for e in encodings], np.int64)}
            outputs = self.session.run(None, feeds)
            pooled, pieces = outputs[0], outputs[1] if len(outputs) > 1 else [None] * len(todo)
            if self.tokens and len(outputs) < 2:
                raise ValueError(f"{self.name}'s exported encoder gives no token_embeddings (exported before "
                                 f"token-fusion policies were): export the policy again")
            for text, enc, vec, rows in zip(todo, encodings, pooled, pieces):
                if self.tokens:
                    rows = rows[:sum(enc.attention_mask)]
                    if len(rows) > self.tokens:
                        warnings.warn(f"instruction of {len(rows)} word pieces cut to the policy's {self.tokens}: "
                                      f"{text[:60]!r}", InstructionTruncatedWarning, stacklevel=4)
                    vec = np.zeros((self.tokens, rows.shape[1]), np.float32)
                    vec[:min(len(rows), self.tokens)] = rows[:self.tokens]
                self._cache[text] = vec.astype(np.float32)
        return np.stack([self._cache[t] for t in texts])


class BytePrompt:
    """The tiny VLA's text side (``text_encoder.kind = "byte_prompt"``): instruction strings ->
    (N, max_tokens) float32 token ids of OpenVLA's prompt, UTF-8 bytes + ``byte_offset``, BOS left
    out, left-padded with ``pad_id``. No files, no model: the rule is the tokenizer."""

    def __init__(self, spec: dict):
        self.spec = spec
        self.max_tokens = int(spec["max_tokens"])

    def __call__(self, texts: list[str]) -> np.ndarray:
        s, rows = self.spec, []
        for text in texts:
            prompt = s["template"].format(instruction=text.lower().strip().rstrip(".")) + s["suffix"]
            ids = [int(s["byte_offset"]) + b for b in prompt.encode("utf-8")]
            if len(ids) > self.max_tokens:
                raise ValueError(f"instruction {text[:60]!r} makes a prompt of {len(ids)} tokens; this policy reads "
                                 f"at most {self.max_tokens} (shorten it)")
            rows.append([int(s["pad_id"])] * (self.max_tokens - len(ids)) + ids)
        return np.asarray(rows, dtype=np.float32)


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

    ``select_action`` takes one observation -> action (action_dim,), or a batch -> (B, action_dim)
    for B robots/envs stepped in lockstep. An observation is the flat vector (obs_dim,) of a policy
    that reads one vector, or the env's dict (its keys named in the manifest; ``proprio`` may come
    as the first numbers of ``state``, as the env gives it). ``seed`` seeds the diffusion noise.
    """

    def __init__(self, path: str | os.PathLike, seed: int | None = None, threads: int | None = None,
                 providers: list[str] | None = None, graph=None, embed=None):
        """``graph`` (a callable {input name: array} -> action chunk) replaces the model file and
        ``embed`` (a callable [str] -> (N, dim)) the text encoder; verify uses them to run the
        source torch policy under this same control loop and noise stream."""
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
        # per-sample shape and dtype of every graph input
        self._input_specs = {i["name"]: (tuple(i["shape"][1:]), np.dtype(i.get("dtype", "float32")))
                             for i in model["inputs"]}
        obs = m["observation"]
        self.obs_keys = [k["name"] for k in obs["keys"]]
        # observation key -> graph input (format 1 manifests: one key, the obs_history input)
        self._key_inputs = {k["name"]: k.get("input", OBS_INPUT) for k in obs["keys"]}
        self._vector_key = next(k for k, i in self._key_inputs.items() if i == OBS_INPUT)
        self._vector_from = next(k.get("from") for k in obs["keys"] if k["name"] == self._vector_key)
        # inputs the graph reads without a history axis (the current sub-goal): the newest one is fed
        self.newest_only = {k["input"] for k in obs["keys"] if k.get("history") is False}
        # where a key the env itself lacks comes from (the sub-goal: a wrapper), for the missing-key error
        self._key_sources = {k["name"]: k["source"] for k in obs["keys"] if k.get("source")}
        self.obs_dim = int(self._input_specs[OBS_INPUT][0][1])
        self.n_obs_steps = int(obs["history"])
        self.action_dim = int(m["action"]["shape"][0])
        self.n_action_steps = int(m["control"]["n_action_steps"])
        self.control_hz = float(m["control"]["frequency_hz"])
        self.action_low = np.asarray(m["action"]["low"], np.float32)
        self.action_high = np.asarray(m["action"]["high"], np.float32)
        noise = next((i for i in model["inputs"] if i["name"] == NOISE_INPUT), None)
        self.noise_shape = tuple(noise["shape"][1:]) if noise else None
        self.language = m.get("language")
        self._embed, self._threads, self._providers = embed, threads, providers
        self._rng = np.random.default_rng(seed)
        self.reset()

    @property
    def reads_instruction(self) -> bool:
        """Whether ``reset`` must be given each episode's instruction (or its embedding)."""
        return self.language is not None

    # -- language ----------------------------------------------------------------------------
    def encode_instructions(self, texts: list[str]) -> np.ndarray:
        """Instruction strings -> (N, dim) float32 embeddings, by the text encoder exported beside
        the graph (the one the policy was trained with). Warns when one is truncated."""
        if self._embed is None:
            spec = (self.language or {}).get("text_encoder")
            if not spec:
                raise ValueError(f"{self.path} was exported without its text encoder (--no-text-encoder): pass "
                                 f"reset(instruction_embedding=...), the instruction embedded by "
                                 f"{(self.language or {}).get('encoder', 'the policy text model')} "
                                 f"({(self.language or {}).get('dim', '?')} floats, unit norm)")
            self._embed = (BytePrompt(spec) if spec.get("kind") == "byte_prompt"
                           else TextEncoder(self.path, spec, self._threads, self._providers,
                                            tokens=self.language.get("tokens")))
        return np.asarray(self._embed(list(texts)), np.float32)

    def _instruction_rows(self, instruction, instruction_embedding) -> np.ndarray:
        if instruction is not None and instruction_embedding is not None:
            raise ValueError("give reset() the instruction or its embedding, not both")
        if instruction is not None:
            texts = [instruction] if isinstance(instruction, str) else list(instruction)
            if not texts or not all(isinstance(t, str) for t in texts):
                raise ValueError("instruction must be a string or a list of strings (one per batch row)")
            return self.encode_instructions(texts)
        emb = np.array(instruction_embedding, dtype=np.float32)
        one = tuple(x for x in (self.language.get("tokens"), int(self.language["dim"])) if x)   # one instruction
        emb = emb[None] if emb.ndim == len(one) else emb
        if emb.shape[1:] != one:
            raise ValueError(f"instruction_embedding has shape {np.shape(instruction_embedding)}; expected {one} "
                             f"or (batch, {', '.join(map(str, one))}): the instruction embedded by "
                             f"{self.language['encoder']}")
        if not np.isfinite(emb).all():
            raise ValueError("instruction_embedding contains NaN or inf")
        return emb

    # -- the control loop --------------------------------------------------------------------
    def reset(self, instruction: str | list[str] | None = None, instruction_embedding=None,
              seed: int | None = None, noise_seeds: list[int] | None = None) -> None:
        """Start of an episode: forget the observation history and queued actions.

        A policy that reads an instruction (``reads_instruction``) takes the episode's
        ``instruction`` (a string, or one per batch row) or its ``instruction_embedding`` ((dim,) or
        (batch, dim)); ``instruction_input`` then says which it was given ("instruction" or
        "embedding"). Other policies ignore both. ``seed`` reseeds the noise stream;
        ``noise_seeds`` (one per batch row) gives each row its own."""
        if seed is not None:
            self._rng = np.random.default_rng(seed)
        self._row_rngs = None if noise_seeds is None else [np.random.default_rng(int(s)) for s in noise_seeds]
        self._history: deque[dict[str, np.ndarray]] = deque(maxlen=self.n_obs_steps)
        self._queue: deque[np.ndarray] = deque()
        self._instruction, self.instruction_input = None, None
        if self.reads_instruction and (instruction is not None or instruction_embedding is not None):
            self._instruction = self._instruction_rows(instruction, instruction_embedding)
            self.instruction_input = "instruction" if instruction is not None else "embedding"

    def select_action(self, obs) -> np.ndarray:
        """Observation now -> action to apply now (float32, within the manifest's action bounds).
        A new chunk is predicted when the queued one is used up."""
        if not self._queue:
            self._queue.extend(np.moveaxis(self.predict_action_chunk(obs), -2, 0))  # n x (B?, action_dim)
        else:
            self._observe(obs)
        return self._queue.popleft()

    def predict_action_chunk(self, obs) -> np.ndarray:
        """Observation now -> the whole chunk (n_action_steps, action_dim) predicted from the
        observation history, first action to apply now; a batch -> (B, n_action_steps,
        action_dim). ``obs`` joins the history; the queue ``select_action`` executes is left alone."""
        single = self._observe(obs)
        inputs = {name: self._history[-1][name] if name in self.newest_only
                  else np.stack([h[name] for h in self._history], axis=1) for name in self._history[-1]}
        if self.reads_instruction:
            if self._instruction is None:
                raise ValueError("this policy reads an instruction: call reset(instruction=...) or "
                                 "reset(instruction_embedding=...) at the start of each episode")
            batch = len(inputs[OBS_INPUT])
            rows = self._instruction
            if len(rows) == 1 and batch > 1:
                rows = np.repeat(rows, batch, axis=0)
            elif len(rows) != batch:
                raise ValueError(f"reset() was given {len(rows)} instructions for a batch of {batch} observations")
            inputs[INSTRUCTION_INPUT] = rows
        chunk = self(**inputs)
        return chunk[0] if single else chunk

    def __call__(self, obs_history: np.ndarray, noise: np.ndarray | None = None, **inputs: np.ndarray) -> np.ndarray:
        """One call of the exported graph: raw obs history (B, n_obs_steps, obs_dim), oldest first,
        the other inputs by name (camera histories (B, n_obs_steps, H, W, C), a point-cloud history,
        the current sub-goal (B, 4), the instruction embedding (B, dim)) [, noise (B, *noise_shape)]
        -> raw actions (B, n_action_steps, action_dim)."""
        feeds = {OBS_INPUT: obs_history, **inputs}
        want = [n for n in self.input_names if n != NOISE_INPUT]
        if sorted(feeds) != sorted(want):
            raise ObservationError(f"the graph takes inputs {want} (+ noise); got {sorted(feeds)}")
        batch = None
        for name in want:
            shape, dtype = self._input_specs[name]
            x = np.ascontiguousarray(feeds[name], dtype=dtype)
            if (x.ndim != len(shape) + 1 or x.shape[1:] != shape or x.shape[0] == 0
                    or (batch is not None and x.shape[0] != batch)):
                raise ObservationError(f"{name} has shape {x.shape}; expected ({batch or 'batch'}, "
                                       f"{', '.join(map(str, shape))})")
            batch, feeds[name] = x.shape[0], x
        if self.noise_shape is not None:
            shape = (batch, *self.noise_shape)
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
        step, single = self.graph_inputs(obs)
        n = step[OBS_INPUT].shape[0]
        if self._history and self._history[-1][OBS_INPUT].shape[0] != n:
            raise ObservationError(f"batch size changed from {self._history[-1][OBS_INPUT].shape[0]} to {n} "
                                   f"within an episode; call reset() first")
        if not self._history:  # as in training: the history starts padded with the first observation
            self._history.extend([step] * self.n_obs_steps)
        else:
            self._history.append(step)
        return single

    # -- checks ------------------------------------------------------------------------------
    def graph_inputs(self, obs) -> tuple[dict[str, np.ndarray], bool]:
        """One observation or a batch, flat or the env's dict -> ``{graph input: (B, ...)}`` for one
        step (copies: callers may reuse their buffers), and whether it was a single observation."""
        if not isinstance(obs, dict):
            if len(self.obs_keys) > 1:
                raise ObservationError(f"this policy reads {self.obs_keys}: pass the env's dict observation, "
                                       f"not one array")
            obs = {self._vector_key: obs}
        vector = self._vector(obs)
        single = vector.ndim == 1
        x = vector[None] if single else vector
        if x.ndim == 2 and x.shape[0] == 0:
            raise ObservationError(f"{self._vector_key} observation is an empty batch {x.shape}; expected "
                                   f"(batch >= 1, {self.obs_dim})")
        if x.ndim != 2 or x.shape[1] != self.obs_dim:
            raise ObservationError(
                f"{self._vector_key} observation has shape {vector.shape}; this policy expects ({self.obs_dim},) or "
                f"(batch, {self.obs_dim}): {self.describe_observation()}")
        if not np.isfinite(x).all():
            raise ObservationError(f"{self._vector_key} observation contains NaN or inf at indices "
                                   f"{np.argwhere(~np.isfinite(x))[:5, -1].tolist()}")
        step = {OBS_INPUT: x}
        for key, name in self._key_inputs.items():
            if name == OBS_INPUT:
                continue
            shape, dtype = self._input_specs[name]
            shape = shape if name in self.newest_only else shape[1:]  # without the history axis
            image = np.asarray(obs[key])
            if dtype == np.uint8 and image.dtype != np.uint8:
                raise ObservationError(f"{key} has dtype {image.dtype}; expected uint8 (0-255), as the env gives it")
            image = np.array(image, dtype=dtype)
            image = image[None] if single else image
            if image.shape != (x.shape[0], *shape):
                raise ObservationError(f"{key} has shape {np.shape(obs[key])}; expected "
                                       f"{shape if single else (x.shape[0], *shape)}")
            if dtype != np.uint8 and np.isnan(image).any():
                raise ObservationError(f"{key} contains NaN")
            step[name] = image
        return step, single

    def _vector(self, obs: dict) -> np.ndarray:
        missing = [k for k in self.obs_keys if k not in obs and not (k == self._vector_key and self._vector_from
                                                                      and self._vector_from["key"] in obs)]
        if missing:
            hints = "".join(f"; {k}: {self._key_sources[k]}" for k in missing if k in self._key_sources)
            raise ObservationError(f"observation dict lacks {missing}; this policy reads keys {self.obs_keys} "
                                   f"(got {sorted(obs)}){hints}")
        if self._vector_key in obs:
            return np.array(obs[self._vector_key], dtype=np.float32)
        lo, hi = self._vector_from["slice"]  # e.g. proprio = the first numbers of state
        return np.array(np.asarray(obs[self._vector_from["key"]])[..., lo:hi], dtype=np.float32)

    def describe_observation(self) -> str:
        """The expected observation layout, e.g. ``state[45] = qpos[0:7] qvel[7:14] ...``."""
        out = []
        for k in self.manifest["observation"]["keys"]:
            fields = " ".join(f"{f['name']}[{f['slice'][0]}:{f['slice'][1]}]" for f in k.get("fields", []))
            out.append(f"{k['name']}{k['shape']}" + (f" = {fields}" if fields else ""))
        return "; ".join(out)

    def __repr__(self) -> str:
        m = self.manifest
        task = m["task"].get("tasks") or [m["task"]["name"]]
        lang = f", instruction via {self.instruction_input}" if self.instruction_input else ""
        return (f"ExportedPolicy({str(self.path)!r}: {m['policy']['type']} on {', '.join(task)}, "
                f"{m['model']['format']}, inputs {self.obs_keys} x{self.n_obs_steps}, action {self.action_dim} "
                f"x{self.n_action_steps} at {self.control_hz:g} Hz{lang})")
