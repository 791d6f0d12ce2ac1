"""Sentence embeddings remembered by text: the one cache in front of the text model.

Task generation (novelty, retrieval) and the policies' instruction encoder both embed the same
kind of strings with the same model (:mod:`envs.core.text_embedding`), and both see the same
strings again and again, so each distinct text is encoded once and then read from an in-process
LRU and, optionally, from a folder of ``.npy`` files that survives between runs. It lives at the
bottom of the import chain, beside the model loader, so both layers use this one class.

A cached vector is the one the encoder gave for that exact text: entries sit under a folder per
encoder (``encoder_key``: model version plus how ``encode`` is called), so a new model or recipe
misses rather than reading stale vectors.
"""
from __future__ import annotations

import hashlib
import warnings
from collections import OrderedDict
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from envs.core.fileio import atomic_file
from envs.core.text_embedding import DIM

_warned_folders: set[Path] = set()   # an unwritable folder warns once per process, not per call


class EmbeddingCache:
    """Vectors by text for one encoder (``encoder_key``): an LRU of ``memory_entries`` vectors
    (0 = none) in front of ``root/<encoder hash>/<ab>/<text hash>.npy`` (``root`` None: memory
    only). Files are written atomically, so parallel runs never read half a file; a damaged
    file is recomputed and rewritten; an unwritable folder warns once (``unwritable_hint`` says
    what to do) and costs speed, never the result. ``stats`` counts memory hits, disk hits and
    texts computed."""

    def __init__(self, root: str | Path | None, encoder_key: str, memory_entries: int,
                 unwritable_hint: str = "point the cache at a writable folder"):
        self.encoder_key = encoder_key
        self.memory_entries = memory_entries
        self.unwritable_hint = unwritable_hint
        self._encoder_hash = hashlib.sha256(encoder_key.encode()).hexdigest()[:16]
        self.folder = None if root is None else Path(root).expanduser() / self._encoder_hash
        self.memory: OrderedDict[str, np.ndarray] = OrderedDict()
        self.stats = {"memory_hits": 0, "disk_hits": 0, "computed": 0}

    def embed(self, texts: Sequence[str], compute: Callable[[list[str]], np.ndarray]) -> np.ndarray:
        """(len(texts), DIM) float32, a fresh array; ``compute(list_of_texts) -> (n, DIM)`` is
        called once, on the distinct texts found in neither cache (first-seen order)."""
        texts = list(texts)
        if not texts:
            return np.zeros((0, DIM), np.float32)
        found, todo = {}, []
        for t in dict.fromkeys(texts):
            vec = self.lookup(t)
            if vec is None:
                todo.append(t)
            else:
                found[t] = vec
        if todo:
            vecs = np.asarray(compute(todo), np.float32)
            self.stats["computed"] += len(todo)
            for t, vec in zip(todo, vecs):
                found[t] = self.store(t, vec)
        return np.stack([found[t] for t in texts])

    def key(self, text: str) -> str:
        return hashlib.sha256(f"{self._encoder_hash}\n{text}".encode()).hexdigest()

    def lookup(self, text: str) -> np.ndarray | None:
        """The cached (read-only) vector of ``text``, or None."""
        k = self.key(text)
        if k in self.memory:
            self.memory.move_to_end(k)
            self.stats["memory_hits"] += 1
            return self.memory[k]
        path = self._path(k)
        if path is not None and path.exists():
            try:
                vec = np.load(path).astype(np.float32)
            except (OSError, ValueError):   # a damaged entry is recomputed and rewritten
                return None
            if vec.shape == (DIM,) and np.all(np.isfinite(vec)):
                self.stats["disk_hits"] += 1
                return self._remember(k, vec)
        return None

    def store(self, text: str, vec: np.ndarray) -> np.ndarray:
        """Keep ``vec`` as the vector of ``text``; returns the cached (read-only) copy."""
        k = self.key(text)
        vec = self._remember(k, np.array(vec, np.float32))   # own copy, not a view of the model's batch
        path = self._path(k)
        if path is not None:
            try:
                if not self.folder.joinpath("encoder.txt").exists():   # say what the folder holds
                    self.folder.mkdir(parents=True, exist_ok=True)
                    self.folder.joinpath("encoder.txt").write_text(self.encoder_key + "\n")
                with atomic_file(path, fsync=False) as tmp, open(tmp, "wb") as f:
                    np.save(f, vec)
            except OSError as err:
                if self.folder not in _warned_folders:
                    _warned_folders.add(self.folder)
                    warnings.warn(f"text-embedding cache not written ({err}); {self.unwritable_hint}",
                                  RuntimeWarning, stacklevel=4)
        return vec

    def _remember(self, k: str, vec: np.ndarray) -> np.ndarray:
        vec.setflags(write=False)
        if self.memory_entries > 0:
            self.memory[k] = vec
            self.memory.move_to_end(k)
            while len(self.memory) > self.memory_entries:
                self.memory.popitem(last=False)
        return vec

    def _path(self, k: str) -> Path | None:
        return None if self.folder is None else self.folder / k[:2] / f"{k}.npy"
