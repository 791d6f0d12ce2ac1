"""The draft-embedding cache (generation.embedding over envs.core.embedding_cache): hits, misses, and a new
folder per encoder.

A fake encoder stands in for MiniLM, so these tests load no model and count its calls."""
from __future__ import annotations

import numpy as np
import pytest

from envs.core import text_embedding
from generation import embedding
from envs.core.embedding_cache import EmbeddingCache
from generation.embedding import DIM


class FakeEncoder:
    """Deterministic unit vectors from the text; records every batch it is asked for."""

    def __init__(self, salt: str = ""):
        self.salt, self.calls = salt, []

    def __call__(self, texts):
        self.calls.append(list(texts))
        out = []
        for t in texts:
            v = np.random.default_rng(abs(hash((self.salt, t))) % 2**32).normal(size=DIM)
            out.append(v / np.linalg.norm(v))
        return np.asarray(out, np.float32)


@pytest.fixture
def fresh(tmp_path, monkeypatch):
    """An empty disk cache under tmp_path and an empty in-process memory."""
    monkeypatch.setenv("ROBOFORGE_CACHE", str(tmp_path))
    monkeypatch.delenv("ROBOFORGE_EMBEDDING_CACHE", raising=False)
    embedding._cache.cache_clear()                # no cache object (and its memory) from an earlier test
    fake = FakeEncoder()
    monkeypatch.setattr(embedding, "encode", fake)
    return tmp_path, fake


def test_a_text_is_encoded_once_then_served_from_memory_and_from_disk(fresh):
    root, fake = fresh
    first = embedding.embed(["a", "b", "a"])
    assert fake.calls == [["a", "b"]]            # distinct texts, one batch
    np.testing.assert_array_equal(first[0], first[2])
    again = embedding.embed(["b", "c"])           # b from memory, only c is new
    assert fake.calls[-1] == ["c"]
    np.testing.assert_array_equal(again[0], first[1])
    files = list((root / "text_embeddings").rglob("*.npy"))
    assert len(files) == 3
    embedding._cache.cache_clear()                # a new process: the disk answers
    np.testing.assert_array_equal(embedding.embed(["a"])[0], first[0])
    assert len(fake.calls) == 2 and embedding.default_cache().stats == {"memory_hits": 0, "disk_hits": 1,
                                                                        "computed": 0}


def test_a_new_encoder_version_misses_and_keeps_its_own_folder(fresh, monkeypatch):
    root, fake = fresh
    old = embedding.embed(["stack the red block"])[0]
    monkeypatch.setattr(text_embedding, "model_version", lambda: "another-model 9.9")
    new_encoder = FakeEncoder(salt="v2")
    monkeypatch.setattr(embedding, "encode", new_encoder)
    new = embedding.embed(["stack the red block"])[0]
    assert new_encoder.calls == [["stack the red block"]]      # not the old model's vector
    assert not np.array_equal(old, new)
    folders = sorted(p.name for p in (root / "text_embeddings").iterdir())
    assert len(folders) == 2
    assert {(root / "text_embeddings" / f / "encoder.txt").read_text().split(" | ")[0] for f in folders} >= \
        {"another-model 9.9"}


def test_a_changed_encoding_recipe_also_misses(fresh, monkeypatch):
    _, fake = fresh
    embedding.embed(["x"])
    monkeypatch.setattr(text_embedding, "ENCODING", "encode(normalize_embeddings=False) float32")
    embedding.embed(["x"])
    assert fake.calls == [["x"], ["x"]]


def test_a_damaged_entry_is_recomputed_and_rewritten(fresh):
    root, fake = fresh
    good = embedding.embed(["y"])[0]
    (path,) = (root / "text_embeddings").rglob("*.npy")
    path.write_bytes(b"not a numpy file")
    embedding._cache.cache_clear()
    np.testing.assert_array_equal(embedding.embed(["y"])[0], good)   # the fake encoder is deterministic
    assert len(fake.calls) == 2
    assert np.load(path).shape == (DIM,)


def test_the_disk_cache_can_be_turned_off(fresh, monkeypatch):
    root, fake = fresh
    monkeypatch.setenv("ROBOFORGE_EMBEDDING_CACHE", "off")
    embedding.embed(["z"])
    assert not (root / "text_embeddings").exists()
    embedding.embed(["z"])                       # memory still serves this process
    assert fake.calls == [["z"]]


def test_an_unwritable_cache_warns_once_and_still_embeds(fresh, monkeypatch):
    root, fake = fresh
    blocker = root / "not_a_folder"
    blocker.write_text("a file where the cache folder would go")
    monkeypatch.setenv("ROBOFORGE_CACHE", str(blocker))
    with pytest.warns(RuntimeWarning, match="cache not written"):
        vecs = embedding.embed(["p", "q"])
    assert vecs.shape == (2, DIM) and fake.calls == [["p", "q"]]


@pytest.mark.slow   # loads MiniLM: 10-80 s on the shared 2-core box
def test_cached_vectors_match_the_model(tmp_path, monkeypatch):
    """The real encoder: a vector read back from disk is the one the model gives for that text."""
    monkeypatch.setenv("ROBOFORGE_CACHE", str(tmp_path))
    embedding._cache.cache_clear()
    texts = ["put the red block in the zone", "open the drawer"]
    computed = embedding.embed(texts)
    embedding._cache.cache_clear()
    np.testing.assert_allclose(embedding.embed(texts), computed, atol=0)
    np.testing.assert_allclose(computed, embedding.encode(texts), atol=1e-5)


def test_the_memory_keeps_the_most_recent_and_zero_entries_keeps_none(tmp_path):
    """The instruction encoder's ``cache_size`` is ``memory_entries``: an LRU bound, 0 = disk only."""
    fake = FakeEncoder()
    lru = EmbeddingCache(None, "fake", memory_entries=2)
    lru.embed(["a", "b"], fake)
    lru.embed(["a", "c"], fake)                   # a is fresh again, so b is dropped
    lru.embed(["a", "b"], fake)
    assert fake.calls == [["a", "b"], ["c"], ["b"]]
    disk_only = EmbeddingCache(tmp_path, "fake", memory_entries=0)
    first = disk_only.embed(["d"], fake)
    np.testing.assert_array_equal(disk_only.embed(["d"], fake), first)
    assert not disk_only.memory and disk_only.stats == {"memory_hits": 0, "disk_hits": 1, "computed": 1}
