"""OCR against the text layer: the same documents, read from their text layer and from an
image-only twin of each, indexed alike and asked the same bench questions.

The twin is made at bench time (nothing committed): each page rendered with pypdfium2 and
written as a PDF of images only, as a scanner would (no text layer at all), so docchat's
extraction OCRs every page (``DOCCHAT_OCR=auto``). Both variants then go through the same
in-process pipeline as (b) — extraction (core/extraction, what the worker runs), the
chunker, the embedder, a local Qdrant — one store per variant holding all its documents, so
each question is searched among all of them, and recall@5 (hybrid, as served) is compared.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pypdfium2
from PIL import Image

from bench.retrieval import Question, Search, applicable, recall_at_k
from core.ingestion.chunking import TokenChunker
from core.ingestion.extraction import (
    ExtractionLimits,
    Unit,
    extract_units,
    inspect_document,
    require_text,
)
from core.search.embeddings import Embedder
from core.search.vectorstore import VectorStore
from core.texts import PageText

# The documents compared: the English corpus files the questions cover that have a text
# layer and few pages (OCR costs seconds a page): 13 pages, 33 questions.
TWIN_FILES = (
    "crazyones-pdfa.pdf",
    "google-doc-document.pdf",
    "multicolumn.pdf",
    "pdflatex-4-pages.pdf",
    "pdflatex-outline.pdf",
)
# What a 200 dpi office scanner writes, in grey.
SCAN_DPI = 200
RECALL_POINTS_TARGET = 10.0  # OCR keeps recall@5 within this many points of the text layer
OWNER = "bench"


def image_only_twin(source: Path, target: Path, *, dpi: int = SCAN_DPI) -> Path:
    """``source``'s pages as images in a PDF without any text: a scan of the document."""
    document = pypdfium2.PdfDocument(source)
    try:
        images: list[Image.Image] = [
            page.render(scale=dpi / 72).to_pil().convert("L") for page in document
        ]
    finally:
        document.close()
    target.parent.mkdir(parents=True, exist_ok=True)
    first, *rest = images
    first.save(target, "PDF", resolution=float(dpi), save_all=True, append_images=rest)
    return target


def index_variant(
    files: Sequence[Path],
    store: VectorStore,
    *,
    chunker: TokenChunker,
    embedder: Embedder,
    limits: ExtractionLimits,
    batch_pages: int,
) -> dict[str, Any]:
    """Extract (batch by batch, as the workflow does), chunk, embed and store ``files``."""
    store.ensure_collection()
    extract_s = ocr_s = 0.0
    pages = ocr_pages = chunks = 0
    for path in files:
        started = time.perf_counter()
        info = inspect_document(path, limits)
        units: list[Unit] = []
        for first in range(1, info.unit_count + 1, batch_pages):
            last = min(info.unit_count, first + batch_pages - 1)
            before = sum(unit.ocr for unit in units)
            units.extend(extract_units(path, first, last, limits, ocr_pages_before=before))
        require_text(units, info.format)
        seconds = time.perf_counter() - started
        extract_s += seconds
        if any(unit.ocr for unit in units):
            ocr_s += seconds
        pages += len(units)
        ocr_pages += sum(unit.ocr for unit in units)
        texts = [PageText(u.number, u.text, label=u.label, ocr=u.ocr) for u in units]
        pieces = list(chunker.chunk_pages(texts))
        chunks += len(pieces)
        vectors = embedder.embed([piece.text for piece in pieces])
        store.upsert_chunks(
            document_id=str(uuid.uuid4()),
            filename=path.name,
            owner=OWNER,
            chunks=pieces,
            vectors=vectors,
        )
    return {
        "documents": len(files),
        "pages": pages,
        "ocr_pages": ocr_pages,
        "chunks": chunks,
        "extract_s": round(extract_s, 3),
        "ocr_pages_per_s": round(ocr_pages / ocr_s, 4) if ocr_pages and ocr_s else None,
    }


def searcher(store: VectorStore, embedder: Embedder) -> Search:
    def search(text: str) -> list[tuple[str, int]]:
        hits = store.search(embedder.embed_query(text), limit=10, text=text, retrieval="hybrid")
        return [(hit.filename, hit.page) for hit in hits]

    return search


def run_twin(
    sources: Sequence[Path],
    workdir: Path,
    *,
    questions: Sequence[Question],
    chunker: TokenChunker,
    embedder: Embedder,
    limits: ExtractionLimits,
    batch_pages: int = 25,
) -> dict[str, Any]:
    """Recall@5 of ``questions`` over ``sources`` and over their image-only twins."""
    asked = applicable(questions, {path.name for path in sources})
    twins = [image_only_twin(path, workdir / "twins" / path.name) for path in sources]
    result: dict[str, Any] = {
        "files": [path.name for path in sources],
        "ocr_languages": limits.ocr_languages,
        "dpi": SCAN_DPI,
    }
    for variant, files in (("text", sources), ("ocr", twins)):
        store = VectorStore.connect(
            url=None, api_key=None, path=workdir / f"qdrant-{variant}", collection="twin"
        )
        try:
            indexed = index_variant(
                files,
                store,
                chunker=chunker,
                embedder=embedder,
                limits=limits,
                batch_pages=batch_pages,
            )
            search = searcher(store, embedder)
            recall = recall_at_k(asked, search)
        finally:
            store.close()
        result[variant] = {**indexed, "retrieval": recall}
    text_recall = result["text"]["retrieval"]["recall"]
    ocr_recall = result["ocr"]["retrieval"]["recall"]
    if text_recall is not None and ocr_recall is not None:
        result["recall_points_lost"] = round((text_recall - ocr_recall) * 100, 1)
    return result
