"""The embedding cache: vectors come back exactly as stored, by version and text hash."""

from __future__ import annotations

from pathlib import Path

from core.search.embedding_cache import EmbeddingCache, index_version_key, text_hash
from core.search.embeddings import Embedder
from core.search.model_identity import ModelIdentity


def test_a_cached_vector_equals_the_embedded_one(tmp_path: Path, embedder: Embedder) -> None:
    texts = ["The river floods every spring.", "Die Topologie des Raumes."]
    vectors = embedder.embed(texts)
    version = index_version_key(ModelIdentity.bundled(), "float32")
    cache = EmbeddingCache(tmp_path / "cache.sqlite")
    cache.put_many(version, {text_hash(t): v for t, v in zip(texts, vectors, strict=True)})
    cache.close()

    reopened = EmbeddingCache(tmp_path / "cache.sqlite")  # another process would see the same
    found = reopened.get_many(version, [text_hash(t) for t in [*texts, "never embedded"]])
    assert found == {text_hash(t): v for t, v in zip(texts, vectors, strict=True)}
    assert reopened.count(version) == 2


def test_versions_do_not_share_vectors(tmp_path: Path) -> None:
    cache = EmbeddingCache(tmp_path / "cache.sqlite")
    small = index_version_key(ModelIdentity("mini", 3), "float32")
    other = index_version_key(ModelIdentity("other", 3), "float32")
    assert small != other
    cache.put_many(small, {text_hash("a"): [0.5, 0.25, 1.0]})
    assert cache.get_many(other, [text_hash("a")]) == {}
    assert cache.get_many(small, [text_hash("a")]) == {text_hash("a"): [0.5, 0.25, 1.0]}


def test_many_hashes_are_looked_up_in_slices(tmp_path: Path) -> None:
    cache = EmbeddingCache(tmp_path / "cache.sqlite")
    entries = {text_hash(str(i)): [float(i)] for i in range(1200)}
    cache.put_many("v", entries)
    assert cache.get_many("v", entries) == entries
