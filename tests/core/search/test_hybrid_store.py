"""Hybrid search in a real local Qdrant with the real embedding model: both sides, the owner
filter on both, Japanese, and the fields that say which side found a chunk."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from core.search.embeddings import Embedder
from core.search.vectorstore import RETRIEVALS, Retrieval, SearchHit, VectorStore
from core.texts import Chunk

# Real texts: the openings of two public-domain Japanese novels (Dazai, 走れメロス; Natsume,
# 吾輩は猫である), a German and an English paragraph.
MELOS = (
    "メロスは激怒した。必ず、かの邪智暴虐の王を除かなければならぬと決意した。"
    "メロスには政治がわからぬ。メロスは、村の牧人である。笛を吹き、羊と遊んで暮して来た。"
)
NEKO = (
    "吾輩は猫である。名前はまだ無い。どこで生れたかとんと見当がつかぬ。"
    "何でも薄暗いじめじめした所でニャーニャー泣いていた事だけは記憶している。"
)
GERMAN = (
    "Ein topologischer Raum ist ein Paar aus einer Menge und einem System von Teilmengen, "
    "den offenen Mengen, das unter beliebigen Vereinigungen und endlichen Schnitten "
    "abgeschlossen ist."
)
ENGLISH = (
    "The upload fails with error code E-4711 when the file is larger than the limit set by "
    "the option --max-upload-mb; raise the option or split the file."
)
FILLER = [
    "Vienna is the capital of Austria and its largest city, on the river Danube.",
    "The meeting was moved to Thursday because the room was booked for a workshop.",
    "Bread dough rises faster in a warm kitchen than in a cold one.",
    "Backups run every night at two and are kept for thirty days.",
]


@pytest.fixture
def store(tmp_path: Path) -> Iterator[VectorStore]:
    vectors = VectorStore.connect(url=None, api_key=None, path=tmp_path / "q", collection="c")
    yield vectors
    vectors.close()


def add(
    store: VectorStore, embedder: Embedder, document_id: str, owner: str, texts: list[str]
) -> None:
    chunks = [Chunk(index=i, page=i + 1, text=t, token_count=0) for i, t in enumerate(texts)]
    store.upsert_chunks(
        document_id=document_id,
        filename=f"{document_id}.pdf",
        owner=owner,
        chunks=chunks,
        vectors=embedder.embed(texts),
    )


def search(
    store: VectorStore,
    embedder: Embedder,
    query: str,
    mode: Retrieval,
    *,
    owner: str | None = None,
    document_ids: list[str] | None = None,
) -> list[SearchHit]:
    return store.search(
        embedder.embed_query(query),
        limit=3,
        text=query,
        retrieval=mode,
        owner=owner,
        document_ids=document_ids,
    )


def test_an_exact_identifier_is_found_by_keyword_and_hybrid(
    store: VectorStore, embedder: Embedder
) -> None:
    add(store, embedder, "manual", "alice", [*FILLER, ENGLISH, GERMAN])
    for mode in ("keyword", "hybrid"):
        hits = search(store, embedder, "E-4711", mode, owner="alice")
        assert hits[0].text == ENGLISH, mode
        assert "keyword" in hits[0].found_by and hits[0].keyword_rank == 1
    keyword_only = search(store, embedder, "E-4711", "keyword", owner="alice")
    # Only chunks holding a query term are keyword hits; nothing else is made up to fill k.
    assert [hit.text for hit in keyword_only] == [ENGLISH]
    assert keyword_only[0].keyword_score
    unembedded = store.search(None, limit=3, text="E-4711", retrieval="keyword", owner="alice")
    assert [hit.text for hit in unembedded] == [ENGLISH] and unembedded[0].dense_score is None
    fused = search(store, embedder, "E-4711", "hybrid", owner="alice")[0]
    # Fused hits carry their cosine similarity too (the relevance gate reads it).
    assert fused.dense_score is not None and -1.0 <= fused.dense_score <= 1.0
    dense = search(store, embedder, "E-4711", "dense", owner="alice")
    assert all(hit.found_by == ["dense"] and hit.keyword_rank is None for hit in dense)


def test_a_japanese_query_finds_its_japanese_chunk(store: VectorStore, embedder: Embedder) -> None:
    add(store, embedder, "novels", "alice", [NEKO, MELOS, GERMAN, *FILLER])
    for mode in ("keyword", "hybrid"):
        assert search(store, embedder, "メロスは何に激怒したのか", mode)[0].text == MELOS, mode
        assert search(store, embedder, "猫の名前", mode)[0].text == NEKO, mode


def test_another_principals_chunk_is_never_returned_by_either_side(
    store: VectorStore, embedder: Embedder
) -> None:
    # bob's chunk matches the query better on both sides (it is the query, twice).
    add(store, embedder, "bob-doc", "bob", ["E-4711 --max-upload-mb E-4711 --max-upload-mb"])
    add(store, embedder, "alice-doc", "alice", [ENGLISH, *FILLER])
    query = "E-4711 --max-upload-mb"
    for mode in RETRIEVALS:
        hits = search(store, embedder, query, mode, owner="alice")
        assert hits and {hit.document_id for hit in hits} == {"alice-doc"}, mode
        assert search(store, embedder, query, mode, owner="bob")[0].document_id == "bob-doc"
        assert search(store, embedder, query, mode, owner="carol") == []
    # The document filter applies to both sides too.
    only = search(store, embedder, query, "hybrid", document_ids=["alice-doc"])
    assert {hit.document_id for hit in only} == {"alice-doc"}


def test_hybrid_ranks_a_chunk_both_sides_found_above_one_side_alone(
    store: VectorStore, embedder: Embedder
) -> None:
    add(store, embedder, "doc", "alice", [ENGLISH, *FILLER])
    hits = search(store, embedder, "upload error E-4711 file too large", "hybrid")
    assert hits[0].text == ENGLISH and hits[0].found_by == ["dense", "keyword"]
    assert hits[0].dense_rank == 1 and hits[0].keyword_rank == 1
    assert [hit.score for hit in hits] == sorted((hit.score for hit in hits), reverse=True)


def test_a_query_without_terms_falls_back_to_dense(store: VectorStore, embedder: Embedder) -> None:
    add(store, embedder, "doc", "alice", FILLER)
    assert search(store, embedder, "?!", "keyword") == []
    hits = search(store, embedder, "?!", "hybrid")
    assert hits and all(hit.found_by == ["dense"] for hit in hits)


def test_local_fusion_ranks_as_qdrants_own_fused_query(
    store: VectorStore, embedder: Embedder
) -> None:
    # Each text three times, the n-th chunk with one query word added n times: close on both
    # sides, but no exact ties (which of two identical chunks comes first is arbitrary, in
    # Qdrant as here).
    texts = [*FILLER, ENGLISH, GERMAN, MELOS, NEKO] * 3
    add(store, embedder, "manual", "alice", [t + " backup" * n for n, t in enumerate(texts)])
    query = "upload error E-4711 in the Vienna backup room"
    hits = store.search(
        embedder.embed_query(query), limit=8, text=query, retrieval="hybrid", owner="alice"
    )
    # What a server runs: one query_points with both prefetches fused by Qdrant.
    server = VectorStore(store._open_client, "c", local=False)
    server._opened, server._ensured = store._client, True
    fused = server.search(
        embedder.embed_query(query), limit=8, text=query, retrieval="hybrid", owner="alice"
    )
    assert [(h.chunk_index, h.found_by, h.dense_rank, h.keyword_rank) for h in hits] == [
        (h.chunk_index, h.found_by, h.dense_rank, h.keyword_rank) for h in fused
    ]
    assert [h.score for h in hits] == pytest.approx([h.score for h in fused])


def test_keyword_mode_reports_the_cosine_when_given_the_embedded_query(
    store: VectorStore, embedder: Embedder
) -> None:
    add(store, embedder, "manual", "alice", [ENGLISH, *FILLER])
    [hit] = search(store, embedder, "E-4711", "keyword")
    # The relevance gate of answers reads it: keyword mode must not drop it unseen.
    assert hit.found_by == ["keyword"] and hit.dense_score is not None
    query, chunk = embedder.embed_query("E-4711"), embedder.embed([ENGLISH])[0]
    assert hit.dense_score == pytest.approx(sum(a * b for a, b in zip(query, chunk, strict=True)))
