"""Chunk size and overlap against recall, with hybrid retrieval on (issue 17).

``python -m bench --only chunking``. The corpus is extracted once with docchat's own code (as
pipeline (b)); then for each grid point (chunk tokens x overlap tokens) its pages are cut by
``TokenChunker`` with those settings, embedded once by the ``Embedder`` in the workflow's
vectorize slices, stored with dense and keyword vectors in a fresh Qdrant local-mode store, and
every question is searched in each retrieval mode. The questions are embedded once: a query's
vector does not depend on how the documents were cut.

The cost of a grid point is the tokens the model embeds (each chunk's tokens plus the model's
special tokens): embedding is most of ingestion time, and unlike seconds on a shared machine
the count is exact. A point is on the frontier when no other point finds at least as many
answers at 5 (hybrid) for at most as many tokens, better in one of the two.
"""

from __future__ import annotations

import shutil
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.inprocess import OWNER, extract_document
from bench.retrieval import Question, Search, applicable, evaluate
from core.ingestion.chunking import TokenChunker
from core.ingestion.faults import DocumentFault
from core.ingestion.offload import EmbedderConfig
from core.search.embeddings import Embedder
from core.search.vectorstore import RETRIEVALS, Retrieval, VectorStore
from core.settings import Settings
from core.texts import Chunk, PageText

GRID_TOKENS = (64, 96, 128, 160, 200, 250)
GRID_OVERLAPS = (0, 16, 32)
# --quick: the corners and the middle, on the corpus without its large document.
QUICK_TOKENS = (96, 128, 200)
QUICK_OVERLAPS = (0, 32)
HEADLINE = "hybrid"  # the mode search serves by default: the one the grid is judged by


@dataclass(frozen=True, order=True)
class GridPoint:
    chunk_tokens: int
    overlap_tokens: int

    @property
    def label(self) -> str:
        return f"{self.chunk_tokens}/{self.overlap_tokens}"


def grid(*, quick: bool = False) -> list[GridPoint]:
    sizes, overlaps = (QUICK_TOKENS, QUICK_OVERLAPS) if quick else (GRID_TOKENS, GRID_OVERLAPS)
    return [GridPoint(size, overlap) for size in sizes for overlap in overlaps]


def run_chunking(
    files: Sequence[Path],
    workdir: Path,
    *,
    questions: Sequence[Question],
    settings: Settings | None = None,
    embedder: Embedder | None = None,
    points: Sequence[GridPoint] | None = None,
    quick: bool = False,
) -> dict[str, Any]:
    settings = settings or Settings(data_dir=workdir)
    if embedder is None:
        embedder = EmbedderConfig.from_settings(settings).load()
    embedder.embed_query("warm-up")  # torch's one-time setup is no grid point's cost
    default = GridPoint(settings.chunk_tokens, settings.chunk_overlap_tokens)
    chosen = sorted(set(points if points is not None else grid(quick=quick)) | {default})

    started = time.perf_counter()
    pages, documents = extract_corpus(files, settings)
    extract_s = time.perf_counter() - started
    asked = applicable(questions, pages)
    query_vectors = {q.question: embedder.embed_query(q.question) for q in asked}

    rows = [
        measure_point(
            point,
            pages,
            workdir,
            settings=settings,
            embedder=embedder,
            questions=asked,
            query_vectors=query_vectors,
            extract_s=extract_s,
        )
        for point in chosen
    ]
    judge(rows, default)
    return {
        "default": default.label,
        "files": len(files),
        "documents_ok": len(pages),
        "pages": sum(len(p) for p in pages.values()),
        "questions": len(asked),
        "extract_s": extract_s,
        "documents": documents,
        "points": rows,
        "summary": summarise(rows, default),
    }


def extract_corpus(
    files: Sequence[Path], settings: Settings
) -> tuple[dict[str, list[PageText]], list[dict[str, Any]]]:
    """Every file's pages, extracted once for the whole grid; files that cannot be indexed
    (a document fault, or a reader bug) are listed and left out."""
    pages: dict[str, list[PageText]] = {}
    documents: list[dict[str, Any]] = []
    for path in files:
        try:
            pages[path.name] = extract_document(path, settings)
        except DocumentFault as fault:
            documents.append({"file": path.name, "status": "skipped", "error": fault.code.value})
            continue
        except Exception as exc:  # one pypdf bug must not end the run
            documents.append({"file": path.name, "status": "failed", "error": type(exc).__name__})
            continue
        documents.append({"file": path.name, "status": "completed", "pages": len(pages[path.name])})
    return pages, documents


def measure_point(
    point: GridPoint,
    pages: dict[str, list[PageText]],
    workdir: Path,
    *,
    settings: Settings,
    embedder: Embedder,
    questions: Sequence[Question],
    query_vectors: dict[str, list[float]],
    extract_s: float,
) -> dict[str, Any]:
    """Chunk, embed and store the extracted corpus with one grid point's settings, then search
    every question in each mode."""
    chunker = TokenChunker(
        embedder.tokenizer, chunk_tokens=point.chunk_tokens, overlap_tokens=point.overlap_tokens
    )
    clock = time.perf_counter()
    chunks = {name: list(chunker.chunk_pages(texts)) for name, texts in pages.items()}
    chunk_s = time.perf_counter() - clock

    folder = workdir / f"qdrant-{point.chunk_tokens}-{point.overlap_tokens}"
    store = VectorStore.connect(
        url=None, api_key=None, path=folder, collection=settings.qdrant_collection
    )
    store.ensure_collection()
    embed_s = embed_cpu_s = store_s = 0.0
    step = settings.vectorize_chunks_per_activity
    for name, cut in chunks.items():
        document_id = str(uuid.uuid4())
        for start in range(0, len(cut), step):
            batch = cut[start : start + step]
            clock, cpu = time.perf_counter(), time.process_time()
            vectors = embedder.embed([chunk.text for chunk in batch])
            now = time.perf_counter()
            embed_s += now - clock
            embed_cpu_s += time.process_time() - cpu
            store.upsert_chunks(
                document_id=document_id, filename=name, owner=OWNER, chunks=batch, vectors=vectors
            )
            store_s += time.perf_counter() - now
    searches: dict[str, Search] = {m: _searcher(store, query_vectors, m) for m in RETRIEVALS}
    modes = evaluate(questions, searches) if questions else {}
    store.close()
    shutil.rmtree(folder, ignore_errors=True)

    every = [chunk for cut in chunks.values() for chunk in cut]
    hybrid = modes.get(HEADLINE, {}).get("groups", {}).get("all", {})
    return {
        "chunk_tokens": point.chunk_tokens,
        "overlap_tokens": point.overlap_tokens,
        "label": point.label,
        "chunks": len(every),
        "tokens": embedded_tokens(every, embedder),
        "chunk_s": chunk_s,
        "embed_s": embed_s,
        # CPU seconds of every thread: on a shared machine steadier than wall time, which
        # counts the time other processes held the cores.
        "embed_cpu_s": embed_cpu_s,
        "store_s": store_s,
        # What first-time ingestion of the corpus costs with these settings (model load aside).
        "ingest_s": extract_s + chunk_s + embed_s + store_s,
        "hits@5": round((hybrid.get("recall@5") or 0) * hybrid.get("questions", 0)),
        "retrieval": modes,
    }


def embedded_tokens(chunks: Sequence[Chunk], embedder: Embedder) -> int:
    """The tokens the model reads for these chunks: their own plus its special tokens."""
    special = embedder.tokenizer.num_special_tokens_to_add()
    return sum(chunk.token_count + special for chunk in chunks)


def _searcher(store: VectorStore, query_vectors: dict[str, list[float]], mode: Retrieval) -> Search:
    def search(text: str) -> list[tuple[str, int]]:
        vector = None if mode == "keyword" else query_vectors[text]
        hits = store.search(vector, limit=10, text=text, retrieval=mode)
        return [(hit.filename, hit.page) for hit in hits]

    return search


def judge(rows: list[dict[str, Any]], default: GridPoint) -> None:
    """Mark each row: answers found per 10,000 embedded tokens, whether it is on the
    hits-versus-tokens frontier, and how it compares with the default settings."""
    base = next(r for r in rows if r["label"] == default.label)
    for row in rows:
        row["hits_per_10k_tokens"] = row["hits@5"] / row["tokens"] * 10_000 if row["tokens"] else 0
        row["frontier"] = not any(_dominates(other, row) for other in rows)
        row["vs_default"] = {
            "hits@5": row["hits@5"] - base["hits@5"],
            "tokens_pct": (row["tokens"] / base["tokens"] - 1) * 100 if base["tokens"] else None,
        }


def _dominates(a: dict[str, Any], b: dict[str, Any]) -> bool:
    hits: tuple[int, int] = (a["hits@5"], b["hits@5"])
    tokens: tuple[int, int] = (a["tokens"], b["tokens"])
    return (
        hits[0] >= hits[1]
        and tokens[0] <= tokens[1]
        and (hits[0] > hits[1] or tokens[0] < tokens[1])
    )


def summarise(rows: Sequence[dict[str, Any]], default: GridPoint) -> dict[str, Any]:
    """Which settings beat the default outright (at least its hybrid hits at 5 for at most its
    tokens, better in one), and the most hits; ties broken by fewer tokens."""
    base = next(r for r in rows if r["label"] == default.label)
    best = max(rows, key=lambda r: (r["hits@5"], -r["tokens"]))
    return {
        "default": default.label,
        "default_hits@5": base["hits@5"],
        "most_hits": best["label"],
        "most_hits@5": best["hits@5"],
        "frontier": [r["label"] for r in rows if r["frontier"]],
        "beat_default": [r["label"] for r in rows if _dominates(r, base)],
    }
