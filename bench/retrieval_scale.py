"""Query latency with 10,000 chunks indexed: the corpus's real chunks and vectors, copied
until the index holds 10,000, half of them another principal's (so the owner filter works).

The copies live in an in-memory local-mode collection: local mode keeps every vector in
memory either way (its disk file is only a journal), so queries cost the same, and 10,000
upserts do not wait on the journal.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from qdrant_client import QdrantClient

from bench.stats import percentile
from core.search import RETRIEVALS
from core.search.embeddings import Embedder
from core.search.vectorstore import VectorStore
from core.texts import Chunk

CHUNKS = 10_000
# Every question of the set: a query takes milliseconds since local mode searches numpy
# arrays (core/search/local_index.py); it took seconds when Qdrant's local engine scored
# point by point in Python, and only 20 were asked.
QUESTIONS = 200
OWNER = "bench"
BATCH = 500


def scale_latency(
    source: VectorStore, embedder: Embedder, questions: Sequence[str], *, chunks: int = CHUNKS
) -> dict[str, Any]:
    texts, vectors = source.export_chunks()
    if not texts:
        return {"status": "no chunks"}
    store = VectorStore(lambda: QdrantClient(":memory:"), "scale", local=True)
    started = time.perf_counter()
    for first in range(0, chunks, BATCH):
        batch = range(first, min(chunks, first + BATCH))
        store.upsert_chunks(
            document_id=f"copy-{first // len(texts)}",
            filename="copy.pdf",
            owner=OWNER if first // BATCH % 2 == 0 else "someone-else",
            chunks=[Chunk(i, 1, texts[i % len(texts)], 0) for i in batch],
            vectors=[vectors[i % len(texts)] for i in batch],
        )
    build_s = time.perf_counter() - started
    asked = list(questions)[:QUESTIONS]
    embedded = {q: embedder.embed_query(q) for q in asked}
    result: dict[str, Any] = {
        "status": "ok",
        "chunks": chunks,
        "questions": len(asked),
        "build_s": build_s,
    }
    for mode in RETRIEVALS:
        store.search(embedded[asked[0]], limit=5, text=asked[0], owner=OWNER, retrieval=mode)
        latencies = []
        for question in asked:
            clock = time.perf_counter()
            store.search(embedded[question], limit=5, text=question, owner=OWNER, retrieval=mode)
            latencies.append((time.perf_counter() - clock) * 1000)
        result[mode] = {
            "search_ms_p50": percentile(latencies, 50),
            "search_ms_p99": percentile(latencies, 99),
        }
    store.close()
    return result
