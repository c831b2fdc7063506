"""Chunks are sized by MiniLM's own tokenizer and keep their page numbers."""

from __future__ import annotations

from pathlib import Path

from core.ingestion.chunking import TokenChunker
from core.ingestion.extraction import pdf
from core.search.embeddings import MAX_TEXT_TOKENS, Embedder
from core.texts import PageText


def chunker(embedder: Embedder, tokens: int = 120, overlap: int = 20) -> TokenChunker:
    return TokenChunker(embedder.tokenizer, chunk_tokens=tokens, overlap_tokens=overlap)


def test_chunks_keep_pages_and_fit_the_limit(embedder: Embedder, corpus: Path) -> None:
    path = corpus / "pdflatex-4-pages.pdf"
    pages = list(pdf.extract_pages(path, 1, 4))
    chunks = list(chunker(embedder).chunk_pages(pages))
    assert {chunk.page for chunk in chunks} == {1, 2, 3, 4}
    assert [chunk.index for chunk in chunks] == list(range(len(chunks)))
    for chunk in chunks:
        assert chunk.token_count == embedder.count_tokens(chunk.text)
        assert chunk.token_count <= 120
    pages_in_order = [chunk.page for chunk in chunks]
    assert pages_in_order == sorted(pages_in_order)


def test_unbroken_text_is_cut_by_tokens_not_truncated(embedder: Embedder) -> None:
    # No separator the splitter knows: without the token cut this would be one huge chunk.
    blob = "x" * 3000 + "Σ" * 500
    chunks = list(chunker(embedder, tokens=100).chunk_pages([PageText(page=7, text=blob)]))
    assert len(chunks) > 3
    assert all(chunk.page == 7 for chunk in chunks)
    assert all(chunk.token_count <= 100 for chunk in chunks)


def test_large_real_document_never_exceeds_the_model_window(
    embedder: Embedder, corpus: Path
) -> None:
    path = corpus / "GeoTopo-komprimiert.pdf"
    pages = list(pdf.extract_pages(path, 1, 117))
    chunks = list(chunker(embedder, tokens=200, overlap=30).chunk_pages(pages))
    assert len(chunks) > 300
    longest = max(len(embedder.tokenizer.encode(chunk.text)) for chunk in chunks)
    assert longest <= MAX_TEXT_TOKENS + 2  # with [CLS] and [SEP]
