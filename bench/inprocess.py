"""Pipeline (b): docchat's own extract, chunk, embed and store code, called directly.

No Temporal, no HTTP, no SQL, no artifacts on disk: the compute limit of the real pipeline.
The work is cut exactly as the workflow cuts it (pages per extract batch, chunks per vectorize
batch), so the difference to (a) is orchestration alone.
"""

from __future__ import annotations

import time
import uuid
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.corpus import document_row
from bench.retrieval import Question, Search, applicable, evaluate, recall_at_k
from bench.retrieval_scale import CHUNKS as SCALE_CHUNKS
from bench.retrieval_scale import scale_latency
from core.ingestion import extraction
from core.ingestion.chunking import TokenChunker
from core.ingestion.extraction import ExtractionLimits, pdf
from core.ingestion.faults import DocumentFault
from core.ingestion.offload import EmbedderConfig
from core.search.embeddings import Embedder
from core.search.vectorstore import RETRIEVALS, Retrieval, VectorStore
from core.settings import Settings
from core.texts import PageText

OWNER = "bench"


def run_inprocess(
    files: Sequence[Path],
    workdir: Path,
    *,
    questions: Sequence[Question] = (),
    settings: Settings | None = None,
    embedder: Embedder | None = None,
    scale_chunks: int = SCALE_CHUNKS,
) -> dict[str, Any]:
    settings = settings or Settings(data_dir=workdir)
    load_started = time.perf_counter()
    if embedder is None:
        embedder = EmbedderConfig.from_settings(settings).load()
    chunker = TokenChunker(
        embedder.tokenizer,
        chunk_tokens=settings.chunk_tokens,
        overlap_tokens=settings.chunk_overlap_tokens,
    )
    embedder.embed_query("warm-up")  # torch's one-time setup belongs to loading, not to work
    model_load_s = time.perf_counter() - load_started

    store = VectorStore.connect(
        url=None, api_key=None, path=workdir / "qdrant", collection=settings.qdrant_collection
    )
    stages: dict[str, float] = defaultdict(float)
    documents: list[dict[str, Any]] = []
    started = time.perf_counter()
    store.ensure_collection()
    for path in files:
        documents.append(ingest_file(path, settings, chunker, embedder, store, stages))
    total_s = time.perf_counter() - started

    indexed = [d for d in documents if d["status"] == "completed"]
    result: dict[str, Any] = {
        "pipeline": "b",
        "name": "docchat in-process",
        "model_load_s": model_load_s,
        "total_s": total_s,
        "files": len(files),
        "documents_ok": len(indexed),
        "pages": sum(d["pages"] for d in indexed),
        "chunks": sum(d["chunks"] for d in indexed),
        "stages_s": dict(stages),
        "documents": documents,
    }
    asked = applicable(questions, {d["file"] for d in indexed})
    if asked:
        searches: dict[str, Search] = {m: _searcher(store, embedder, m) for m in RETRIEVALS}
        result["retrieval"] = recall_at_k(asked, searches["hybrid"])  # as served by default
        result["retrieval_modes"] = evaluate(asked, searches)
        if scale_chunks:
            result["retrieval_scale"] = scale_latency(
                store, embedder, [q.question for q in asked], chunks=scale_chunks
            )
    store.close()
    return result


def _searcher(store: VectorStore, embedder: Embedder, mode: Retrieval) -> Search:
    def search(text: str) -> list[tuple[str, int]]:
        vector = None if mode == "keyword" else embedder.embed_query(text)
        hits = store.search(vector, limit=10, text=text, retrieval=mode)
        return [(hit.filename, hit.page) for hit in hits]

    return search


def extract_document(path: Path, settings: Settings) -> list[PageText]:
    """The document's page texts (units for other formats) as the workflow's extract steps
    give them, in the same batches; raises a ``DocumentFault``."""
    if path.suffix.lower() == ".pdf":
        return _pdf_pages(path, settings)
    return _units_as_pages(path, settings)


def ingest_file(
    path: Path,
    settings: Settings,
    chunker: TokenChunker,
    embedder: Embedder,
    store: VectorStore,
    stages: dict[str, float],
) -> dict[str, Any]:
    document_id = str(uuid.uuid4())
    clock = time.perf_counter()
    try:
        pages = extract_document(path, settings)
    except DocumentFault as fault:
        stages["extract"] += time.perf_counter() - clock
        return document_row(path.name, "skipped", error_code=fault.code.value)
    except Exception as exc:  # a pypdf bug on one file must not end the whole run
        stages["extract"] += time.perf_counter() - clock
        return document_row(path.name, "failed", error_code=type(exc).__name__)
    now = time.perf_counter()
    stages["extract"] += now - clock
    clock = now

    chunks = list(chunker.chunk_pages(pages))
    now = time.perf_counter()
    stages["chunk"] += now - clock

    step = settings.vectorize_chunks_per_activity
    for start in range(0, len(chunks), step):
        batch = chunks[start : start + step]
        clock = time.perf_counter()
        vectors = embedder.embed([chunk.text for chunk in batch])
        now = time.perf_counter()
        stages["embed"] += now - clock
        store.upsert_chunks(
            document_id=document_id, filename=path.name, owner=OWNER, chunks=batch, vectors=vectors
        )
        stages["store"] += time.perf_counter() - now
    return document_row(path.name, "completed", pages=len(pages), chunks=len(chunks))


def _pdf_pages(path: Path, settings: Settings) -> list[PageText]:
    """A PDF's text layer, read as the corpus runs always read it (the numbers of earlier
    runs stay comparable): pypdf, no OCR."""
    info = pdf.inspect_pdf(path, max_pages=settings.max_pages)
    pages: list[PageText] = []
    step = settings.extract_pages_per_activity
    for first in range(1, info.page_count + 1, step):
        last = min(info.page_count, first + step - 1)
        pages.extend(pdf.extract_pages(path, first, last))
    pdf.require_text(pages)
    return pages


def _units_as_pages(path: Path, settings: Settings) -> list[PageText]:
    """Any other format (../shared/formats): the workflow's extraction, OCR included, in the
    same batches, each unit as the page the chunker and the store take."""
    limits = ExtractionLimits.from_settings(settings)
    info = extraction.inspect_document(path, limits)
    pages: list[PageText] = []
    step = settings.extract_pages_per_activity
    for first in range(1, info.unit_count + 1, step):
        last = min(info.unit_count, first + step - 1)
        units = extraction.extract_units(
            path, first, last, limits, ocr_pages_before=sum(page.ocr for page in pages)
        )
        pages.extend(PageText(u.number, u.text, label=u.label, ocr=u.ocr) for u in units)
    extraction.require_text(pages, info.format, ocr=limits.ocr)
    return pages
