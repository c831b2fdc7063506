"""Pipeline (c): what a user would write with LangChain, with the same MiniLM weights.

PyPDFLoader -> RecursiveCharacterTextSplitter (its usual 1,000/200 characters) ->
HuggingFaceEmbeddings -> Qdrant in local mode, all with their defaults.
"""

from __future__ import annotations

import time
import warnings
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from langchain_core.embeddings import Embeddings

from bench.corpus import document_row
from bench.retrieval import Question, applicable, recall_at_k
from core.search.embeddings import bundled_model_path

CHUNK_SIZE = 1000
CHUNK_OVERLAP = 200
COLLECTION = "langchain_bench"


def run_langchain(
    files: Sequence[Path], workdir: Path, *, questions: Sequence[Question] = ()
) -> dict[str, Any]:
    with warnings.catch_warnings():
        # langchain-community warns on import that it is being sunset; PyPDFLoader still works.
        warnings.simplefilter("ignore", DeprecationWarning)
        from langchain_community.document_loaders import PyPDFLoader
    from langchain_core.documents import Document
    from langchain_huggingface import HuggingFaceEmbeddings
    from langchain_qdrant import QdrantVectorStore
    from langchain_text_splitters import RecursiveCharacterTextSplitter

    load_started = time.perf_counter()
    embeddings = HuggingFaceEmbeddings(
        model_name=str(bundled_model_path()), model_kwargs={"device": "cpu"}
    )
    embeddings.embed_query("warm-up")
    model_load_s = time.perf_counter() - load_started
    timed = _TimedEmbeddings(embeddings)

    stages: dict[str, float] = defaultdict(float)
    documents: list[dict[str, Any]] = []
    pages: list[Document] = []
    started = time.perf_counter()
    for path in files:
        clock = time.perf_counter()
        try:
            loaded = PyPDFLoader(str(path)).load()
        except Exception as exc:  # a user's loop would crash here; the benchmark reports it
            documents.append(document_row(path.name, "failed", error_code=type(exc).__name__))
            stages["extract"] += time.perf_counter() - clock
            continue
        stages["extract"] += time.perf_counter() - clock
        documents.append(document_row(path.name, "completed", pages=len(loaded)))
        pages.extend(loaded)

    clock = time.perf_counter()
    splitter = RecursiveCharacterTextSplitter(chunk_size=CHUNK_SIZE, chunk_overlap=CHUNK_OVERLAP)
    chunks = splitter.split_documents(pages)
    stages["chunk"] += time.perf_counter() - clock

    clock = time.perf_counter()
    store = QdrantVectorStore.from_documents(
        chunks, timed, path=str(workdir / "qdrant"), collection_name=COLLECTION
    )
    stages["embed"] += timed.seconds
    stages["store"] += time.perf_counter() - clock - timed.seconds
    total_s = time.perf_counter() - started

    per_file: dict[str, int] = defaultdict(int)
    for chunk in chunks:
        per_file[Path(chunk.metadata["source"]).name] += 1
    for row in documents:
        row["chunks"] = per_file.get(row["file"], 0)
        if row["status"] == "completed" and row["chunks"] == 0:
            row["status"] = "skipped"
            row["error_code"] = "no_chunks"
    indexed = [d for d in documents if d["status"] == "completed"]
    result: dict[str, Any] = {
        "pipeline": "c",
        "name": "LangChain baseline",
        "model_load_s": model_load_s,
        "total_s": total_s,
        "files": len(files),
        "documents_ok": len(indexed),
        "pages": sum(d["pages"] for d in indexed),
        "chunks": len(chunks),
        "stages_s": dict(stages),
        "documents": documents,
    }
    asked = applicable(questions, {d["file"] for d in indexed})
    if asked:

        def search(text: str) -> list[tuple[str, int]]:
            found = store.similarity_search(text, k=5)
            # PyPDFLoader numbers pages from 0; people (and the question set) from 1.
            return [(Path(d.metadata["source"]).name, int(d.metadata["page"]) + 1) for d in found]

        result["retrieval"] = recall_at_k(asked, search)
    store.client.close()
    return result


class _TimedEmbeddings(Embeddings):
    """Passes every call through to the real embeddings, adding up the time spent embedding."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self.seconds = 0.0

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        started = time.perf_counter()
        vectors: list[list[float]] = self._inner.embed_documents(texts)
        self.seconds += time.perf_counter() - started
        return vectors

    def embed_query(self, text: str) -> list[float]:
        vector: list[float] = self._inner.embed_query(text)
        return vector
