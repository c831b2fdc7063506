"""The one retrieval function: embed the query, search Qdrant, keep the relevant hits.

Both ``GET /docs/search`` and chat answers call ``retrieve``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from core.runtime import Resources
from core.vectorstore import SearchHit


async def retrieve(
    resources: Resources,
    query: str,
    *,
    k: int,
    owner: str,
    document_ids: Sequence[str] | None = None,
    min_score: float | None = None,
) -> list[SearchHit]:
    """The ``k`` chunks closest to ``query``, best first, optionally only those scoring at
    least ``min_score`` (cosine similarity)."""

    def search() -> list[SearchHit]:
        # Embedding is CPU work and Qdrant local mode blocks: both stay off the event loop.
        vector = resources.embedder().embed_query(query)
        return resources.vectors.search(vector, limit=k, document_ids=document_ids, owner=owner)

    hits = await asyncio.to_thread(search)
    if min_score is not None:
        hits = [hit for hit in hits if hit.score >= min_score]
    return hits
