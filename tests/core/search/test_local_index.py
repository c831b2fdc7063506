"""Local mode's search arrays (core.search.local_index) against Qdrant's own engine, on real
chunks of two corpus PDFs (German and English) embedded by the real model: the same hits in
the same order with the same scores, for each mode and filter; and the arrays follow every
write, including one made around the vector store."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from qdrant_client import models

from core.ingestion.chunking import TokenChunker
from core.ingestion.extraction.pdf import extract_pages
from core.search import RETRIEVALS, layout
from core.search.embeddings import Embedder
from core.search.keywords import keyword_vector
from core.search.vectorstore import VectorStore, point_id
from core.texts import Chunk

GERMAN_PDF = Path("/work/shared/corpus/GeoTopo-komprimiert.pdf")
ENGLISH_PDF = Path("/work/shared/corpus/pdflatex-4-pages.pdf")
QUERIES = [
    "Was ist ein topologischer Raum?",
    "SWS-Kongruenzsatz",
    "Poincaré-Halbebene Geodäten",
    "Hausdorff Raum kompakt",
    "How is the document typeset?",
    "E-4711",  # no chunk holds it: keyword finds nothing, hybrid is dense alone
]


def real_chunks(embedder: Embedder, path: Path, last_page: int) -> list[Chunk]:
    chunker = TokenChunker(embedder.tokenizer, chunk_tokens=128, overlap_tokens=32)
    return list(chunker.chunk_pages(extract_pages(path, 1, last_page)))


@pytest.fixture(scope="module")
def corpus(embedder: Embedder) -> dict[str, tuple[list[Chunk], list[list[float]]]]:
    if not GERMAN_PDF.exists() or not ENGLISH_PDF.exists():
        pytest.skip("the shared corpus is not on this machine")
    documents = {"geotopo": real_chunks(embedder, GERMAN_PDF, 12)}
    documents["pdflatex"] = real_chunks(embedder, ENGLISH_PDF, 4)
    return {
        name: (chunks, embedder.embed([c.text for c in chunks]))
        for name, chunks in documents.items()
    }


@pytest.fixture
def stores(
    tmp_path: Path, corpus: dict[str, tuple[list[Chunk], list[list[float]]]]
) -> Iterator[tuple[VectorStore, VectorStore]]:
    """The store in local mode and, over the same client, one that sends every query to
    Qdrant's engine as it would to a server (``local=False``)."""
    local = VectorStore.connect(url=None, api_key=None, path=tmp_path / "q", collection="c")
    for owner, (name, (chunks, vectors)) in zip(("alice", "bob"), corpus.items(), strict=True):
        local.upsert_chunks(
            document_id=name, filename=f"{name}.pdf", owner=owner, chunks=chunks, vectors=vectors
        )
    engine = VectorStore(local._open_client, "c", local=False)
    engine._opened, engine._ensured = local._client, True
    yield local, engine
    local.close()


def test_each_side_ranks_as_qdrants_engine(
    stores: tuple[VectorStore, VectorStore], embedder: Embedder
) -> None:
    """Dense and keyword alone, with each filter. Keyword scores are term weights times IDF
    with no length normalisation, so real chunks tie often; which of two tied chunks comes
    first is arbitrary (it follows the order points sit in memory), so ties are compared as
    groups: the same scores rank by rank, and each hit among Qdrant's hits of its score.
    Hybrid fusion is compared exactly, on chunks without ties, in test_hybrid_store."""
    local, engine = stores
    filters: list[dict[str, object]] = [
        {},
        {"owner": "alice"},
        {"owner": "bob"},
        {"document_ids": ["pdflatex"]},
        {"owner": "alice", "document_ids": ["geotopo", "pdflatex"]},
        {"owner": "carol"},
    ]
    compared = 0
    for query in QUERIES:
        vector = embedder.embed_query(query)
        for mode in ("dense", "keyword"):
            for where in filters:
                args = {"text": query, "retrieval": mode, **where}
                mine = local.search(vector, limit=8, **args)  # type: ignore[arg-type]
                theirs = engine.search(vector, limit=40, **args)  # type: ignore[arg-type]
                context = (query, mode, where)
                assert [h.score for h in mine] == pytest.approx(
                    [h.score for h in theirs[: len(mine)]]
                ), context
                assert len(mine) == min(8, len(theirs)), context
                for hit in mine:
                    tied = {
                        (h.document_id, h.chunk_index, h.text)
                        for h in theirs
                        if h.score == pytest.approx(hit.score)
                    }
                    assert (hit.document_id, hit.chunk_index, hit.text) in tied, context
                compared += len(mine)
    assert compared > 150  # the comparison is not vacuous


def test_hybrid_keeps_the_filters_and_both_sides(
    stores: tuple[VectorStore, VectorStore], embedder: Embedder
) -> None:
    local, _ = stores
    query = "Metrik"
    vector = embedder.embed_query(query)
    for owner, document in (("alice", "geotopo"), ("bob", "pdflatex")):
        hits = local.search(vector, limit=10, text=query, retrieval="hybrid", owner=owner)
        assert hits and {h.document_id for h in hits} == {document}, owner
    hits = local.search(vector, limit=5, text=query, retrieval="hybrid", owner="alice")
    assert {"dense", "keyword"} <= {side for h in hits for side in h.found_by}
    assert all("Metrik" in h.text for h in hits if "keyword" in h.found_by)
    assert local.search(vector, limit=5, text=query, retrieval="hybrid", owner="carol") == []


def test_the_arrays_follow_upserts_deletes_and_writes_around_the_store(
    stores: tuple[VectorStore, VectorStore],
    embedder: Embedder,
) -> None:
    local, _ = stores
    query = "SWS-Kongruenzsatz"
    vector = embedder.embed_query(query)
    assert (
        local.search(vector, limit=3, text=query, retrieval="hybrid", owner="alice")[0].document_id
        == "geotopo"
    )
    # A new document after the arrays were loaded: found at once, on both sides.
    text = "Der SWS-Kongruenzsatz gilt auch in der hyperbolischen Ebene."
    local.upsert_chunks(
        document_id="note",
        filename="note.txt",
        owner="alice",
        chunks=[Chunk(0, 1, text, 0)],
        vectors=embedder.embed([text]),
    )
    [hit] = local.search(
        vector, limit=1, text=query, retrieval="hybrid", owner="alice", document_ids=["note"]
    )
    assert hit.text == text and hit.found_by == ["dense", "keyword"]
    # The same point upserted again with other text replaces it.
    other = "Ein ganz anderer Satz über Brot."
    local.upsert_chunks(
        document_id="note",
        filename="note.txt",
        owner="alice",
        chunks=[Chunk(0, 1, other, 0)],
        vectors=embedder.embed([other]),
    )
    note_only = {"text": query, "document_ids": ["note"]}
    assert local.search(vector, limit=5, retrieval="keyword", **note_only) == []  # type: ignore[arg-type]
    local.delete_document("note")
    assert local.search(vector, limit=5, text=query, document_ids=["note"]) == []
    # A write that bypasses the store (here: Qdrant's client itself) is noticed by its count.
    around = "Der SWS-Kongruenzsatz, von Hand in Qdrant geschrieben."
    local._client.upsert(
        "c",
        points=[
            models.PointStruct(
                id=point_id("around", 0),
                vector={
                    layout.DENSE: embedder.embed([around])[0],
                    layout.KEYWORD: models.SparseVector(
                        indices=keyword_vector(around).indices,
                        values=keyword_vector(around).values,
                    ),
                },
                payload={
                    "document_id": "around",
                    "filename": "around.txt",
                    "owner": "alice",
                    "page": 1,
                    "chunk_index": 0,
                    "text": around,
                },
            )
        ],
    )
    for mode in RETRIEVALS:
        hits = local.search(vector, limit=3, text=query, retrieval=mode, document_ids=["around"])
        assert [h.text for h in hits] == [around], mode
