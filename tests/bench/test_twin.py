"""The OCR twin of the formats bench: an image-only copy of a corpus PDF really has no text
layer, is OCRed page by page by docchat's extraction, and a bench question about it finds
the OCRed page (real Tesseract, real embedder, local Qdrant)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from pypdf import PdfReader

from bench.retrieval import load_questions, recall_at_k
from bench.twin import image_only_twin, index_variant, searcher
from core.ingestion.chunking import TokenChunker
from core.ingestion.extraction import ExtractionLimits
from core.search.embeddings import Embedder
from core.search.vectorstore import VectorStore

pytestmark = pytest.mark.skipif(
    shutil.which("tesseract") is None, reason="needs Tesseract (`make test` installs it)"
)


def test_a_question_about_the_twin_finds_the_ocred_page(
    corpus: Path, embedder: Embedder, tmp_path: Path
) -> None:
    source = corpus / "multicolumn.pdf"  # page 3: a table of EU countries and capitals
    twin = image_only_twin(source, tmp_path / "twin" / source.name)

    reader = PdfReader(twin)
    assert len(reader.pages) == len(PdfReader(source).pages) == 3
    assert all(not (page.extract_text() or "").strip() for page in reader.pages)

    chunker = TokenChunker(embedder.tokenizer, chunk_tokens=128, overlap_tokens=16)
    store = VectorStore.connect(url=None, api_key=None, path=tmp_path / "qdrant", collection="t")
    try:
        indexed = index_variant(
            [twin],
            store,
            chunker=chunker,
            embedder=embedder,
            limits=ExtractionLimits(ocr_languages="eng"),  # a third of the default's time
            batch_pages=2,  # two extract batches, the OCR page count carried across them
        )
        assert (indexed["pages"], indexed["ocr_pages"]) == (3, 3)
        assert indexed["ocr_pages_per_s"] and indexed["ocr_pages_per_s"] > 0

        hits = store.search(
            embedder.embed_query("Which city is the capital of Denmark?"),
            limit=1,
            text="Which city is the capital of Denmark?",
            retrieval="hybrid",
        )
        assert (hits[0].filename, hits[0].page, hits[0].label) == (source.name, 3, "page 3")
        assert "Copenhagen" in hits[0].text

        asked = [q for q in load_questions() if q.id in ("denmark-capital", "belgium-languages")]
        assert len(asked) == 2
        found = recall_at_k(asked, searcher(store, embedder), k=1)
        assert found["recall"] == 1.0, found
    finally:
        store.close()
