"""Retrieval for answers: the question's content words find the page its own words drown.

Real page texts of corpus PDFs (pypdf, chunked by docchat's chunker), the real MiniLM embedder
and a local Qdrant: an English question about the German preface of GeoTopo-komprimiert.pdf
("A5", "10 Euro"), among English pages that share the question's plain words.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from core.ingestion.chunking import TokenChunker
from core.ingestion.extraction import pdf
from core.search.embeddings import Embedder
from core.search.retrieval import retrieve
from core.search.stopwords import content_query, content_words
from core.search.vectorstore import VectorStore
from core.settings import Settings

OWNER = "tester"
QUESTION = "How much does a printed A5 copy of the script cost?"
# GeoTopo's first pages (the preface is page 2) and the small English documents.
PAGES = {
    "GeoTopo-komprimiert.pdf": list(range(1, 13)),
    "pdflatex-4-pages.pdf": [1, 2, 3, 4],
    "pdflatex-outline.pdf": [1, 2, 3, 4],
    "crazyones-pdfa.pdf": [1],
    "google-doc-document.pdf": [1],
    "multicolumn.pdf": [1, 2, 3],
}


@dataclass
class Resources:
    settings: Settings
    vectors: VectorStore
    model: Embedder

    def embedder(self) -> Embedder:
        return self.model


@pytest.fixture
def resources(tmp_path: Path, embedder: Embedder, corpus: Path) -> Iterator[Resources]:
    vectors = VectorStore.connect(url=None, api_key=None, path=tmp_path / "q", collection="c")
    chunker = TokenChunker(embedder.tokenizer, chunk_tokens=128, overlap_tokens=32)
    for name, numbers in PAGES.items():
        pages = [p for n in numbers for p in pdf.extract_pages(corpus / name, n, n)]
        chunks = list(chunker.chunk_pages(pages))
        vectors.upsert_chunks(
            document_id=name,
            filename=name,
            owner=OWNER,
            chunks=chunks,
            vectors=embedder.embed([c.text for c in chunks]),
        )
    yield Resources(Settings(data_dir=tmp_path / "data"), vectors, embedder)
    vectors.close()


def test_content_words_leave_out_stop_words_and_keep_identifiers() -> None:
    assert content_words(QUESTION) == ["printed", "a5", "copy", "script", "cost"]
    assert content_words("Welche Auflage des Skripts ist das?") == ["auflage", "skripts"]
    # The PDF's ligature ("ﬀ") as a reader types it.
    assert content_words("Wann nennt man einen Raum hausdorﬀsch?") == ["raum", "hausdorffsch"]
    assert content_query("What is it?") == "What is it?", "nothing but stop words: as asked"


async def test_the_content_words_add_the_page_the_question_words_drown(
    resources: Resources,
) -> None:
    # No relevance gate: its keyword bar is a BM25 score, and IDF over these few pages is low.
    asked = await retrieve(resources, QUESTION, k=3, owner=OWNER)
    assert all(hit.filename != "GeoTopo-komprimiert.pdf" for hit in asked), (
        "the question's own English words rank the blind-text pages first"
    )
    found = await retrieve(resources, QUESTION, k=3, owner=OWNER, also_by_words=2)
    assert found[: len(asked)] == asked, "the hits as asked come first, unchanged"
    extra = found[len(asked) :]
    assert len(extra) == 2
    preface = [hit for hit in extra if (hit.filename, hit.page) == ("GeoTopo-komprimiert.pdf", 2)]
    assert preface and "A5" in preface[0].text, "the chunk naming A5"
    keys = [(hit.document_id, hit.chunk_index) for hit in found]
    assert len(keys) == len(set(keys)), "no chunk twice"


async def test_dense_retrieval_asks_for_no_keyword_extras(resources: Resources) -> None:
    dense = await retrieve(resources, QUESTION, k=4, owner=OWNER, retrieval="dense")
    extra = await retrieve(
        resources, QUESTION, k=4, owner=OWNER, retrieval="dense", also_by_words=2
    )
    assert extra == dense
