"""A collection made before keyword search (one unnamed dense vector per point) is migrated
on open, in place and without re-embedding; and an index refuses another embedding model."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from qdrant_client import QdrantClient, models

from core.search import layout
from core.search.embeddings import Embedder
from core.search.model_identity import EmbeddingModelMismatchError, ModelIdentity
from core.search.vectorstore import VectorStore, point_id
from core.texts import Chunk
from tests.core.search.test_hybrid_store import ENGLISH, FILLER, GERMAN


def make_old_collection(path: Path, embedder: Embedder, texts: list[str]) -> list[list[float]]:
    """What docchat wrote before this change, exactly: unnamed cosine vectors and payloads."""
    vectors = embedder.embed(texts)
    client = QdrantClient(path=str(path))
    client.create_collection(
        "docchat_chunks",
        vectors_config=models.VectorParams(size=384, distance=models.Distance.COSINE),
    )
    client.upsert(
        "docchat_chunks",
        points=[
            models.PointStruct(
                id=point_id("old-doc", i),
                vector=vector,
                payload={
                    "document_id": "old-doc",
                    "filename": "old.pdf",
                    "owner": "alice",
                    "page": i + 1,
                    "chunk_index": i,
                    "text": text,
                },
            )
            for i, (text, vector) in enumerate(zip(texts, vectors, strict=True))
        ],
    )
    client.close()
    return vectors


def open_store(path: Path, model: ModelIdentity | None = None) -> VectorStore:
    return VectorStore.connect(
        url=None, api_key=None, path=path, collection="docchat_chunks", model=model
    )


def test_an_old_collection_gets_keyword_vectors_and_keeps_its_points(
    tmp_path: Path, embedder: Embedder, caplog: pytest.LogCaptureFixture
) -> None:
    texts = [*FILLER, ENGLISH, GERMAN] * 60  # 360 points: more than one copy batch
    old_vectors = make_old_collection(tmp_path, embedder, texts)

    store = open_store(tmp_path)
    with caplog.at_level(logging.INFO, logger="docchat.vectorstore"):
        store.ensure_collection()
    assert store.count("old-doc") == len(texts)
    progress = [r.getMessage() for r in caplog.records if "points copied" in r.getMessage()]
    assert any(f"/ {len(texts)} points copied" in line for line in progress), progress

    hits = store.search(None, limit=3, text="E-4711", retrieval="keyword", owner="alice")
    assert hits and all(hit.text == ENGLISH for hit in hits)
    dense = store.search(old_vectors[4], limit=1, retrieval="dense")  # ENGLISH
    assert dense[0].text == ENGLISH and dense[0].score == pytest.approx(1.0, abs=1e-5)
    store.close()

    client = QdrantClient(path=str(tmp_path))
    assert layout.is_current(client, "docchat_chunks")
    assert not client.collection_exists("docchat_chunks" + layout.MIGRATION_SUFFIX)
    assert layout.stored_model(client, "docchat_chunks") == ModelIdentity.bundled()
    client.close()


def test_a_migration_cut_short_after_the_old_collection_went_is_finished(
    tmp_path: Path, embedder: Embedder
) -> None:
    make_old_collection(tmp_path, embedder, [ENGLISH, *FILLER])
    client = QdrantClient(path=str(tmp_path))
    # Stop where a killed process would have: the copy made, the old collection dropped.
    temporary = "docchat_chunks" + layout.MIGRATION_SUFFIX
    layout.create(client, temporary, ModelIdentity.bundled(), payload_indexes=False)
    layout._copy(client, "docchat_chunks", temporary, 5, old_layout=True)
    client.delete_collection("docchat_chunks")
    client.close()

    store = open_store(tmp_path)
    assert store.count("old-doc") == 5
    assert store.search(None, limit=1, text="E-4711", retrieval="keyword")[0].text == ENGLISH
    store.close()


def test_a_collection_of_another_model_is_refused(tmp_path: Path, embedder: Embedder) -> None:
    store = open_store(tmp_path)
    store.upsert_chunks(
        document_id="d",
        filename="d.pdf",
        owner="alice",
        chunks=[Chunk(index=0, page=1, text=ENGLISH, token_count=0)],
        vectors=embedder.embed([ENGLISH]),
    )
    store.close()

    model_dir = tmp_path / "paraphrase-multilingual-MiniLM-L12-v2"
    model_dir.mkdir()
    (model_dir / "config.json").write_text(json.dumps({"hidden_size": 384}))
    other = ModelIdentity.of(model_dir)
    assert other == ModelIdentity("paraphrase-multilingual-MiniLM-L12-v2", 384)
    with pytest.raises(EmbeddingModelMismatchError) as refused:
        open_store(tmp_path, other).ensure_collection()
    assert refused.value.error_code == "embedding_model_mismatch"
    assert refused.value.details["stored_model"] == "all-MiniLM-L6-v2"


def test_vectors_of_the_wrong_dimension_are_refused(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    with pytest.raises(EmbeddingModelMismatchError):
        store.upsert_chunks(
            document_id="d",
            filename="d.pdf",
            owner="alice",
            chunks=[Chunk(index=0, page=1, text="x", token_count=0)],
            vectors=[[0.1] * 768],
        )
    store.close()


def test_an_old_collection_of_another_dimension_is_refused_not_migrated(
    tmp_path: Path, embedder: Embedder
) -> None:
    make_old_collection(tmp_path, embedder, [ENGLISH])
    with pytest.raises(EmbeddingModelMismatchError):
        open_store(tmp_path, ModelIdentity("labse", 768)).ensure_collection()
    client = QdrantClient(path=str(tmp_path))
    assert not layout.is_current(client, "docchat_chunks")  # left as it was
    client.close()
