"""The one retrieval function: embed the query, search Qdrant, keep the relevant hits.

Both ``GET /docs/search`` and chat answers call ``retrieve``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Protocol

from core.search.context import with_neighbours
from core.search.embeddings import Embedder
from core.search.stopwords import content_query
from core.search.vectorstore import Retrieval, SearchHit, VectorStore
from core.settings import Settings


class SearchResources(Protocol):
    """What retrieval needs of a process's resources (``core.runtime.Resources`` has it; a
    protocol, because ``core.runtime`` imports the features and none may import it back)."""

    @property
    def settings(self) -> Settings: ...

    @property
    def vectors(self) -> VectorStore: ...

    def embedder(self) -> Embedder: ...


async def retrieve(
    resources: SearchResources,
    query: str,
    *,
    k: int,
    owner: str,
    document_ids: Sequence[str] | None = None,
    min_score: float | None = None,
    retrieval: Retrieval | None = None,
    min_keyword_score: float | None = None,
    neighbours: int = 0,
    context_chars: int = 1500,
    also_by_words: int = 0,
) -> list[SearchHit]:
    """The ``k`` chunks that best match ``query``, best first: by meaning (dense), by its
    words (keyword) or both fused (hybrid); None: the ``retrieval_mode`` setting.

    With ``min_score`` (a cosine similarity) only relevant hits are kept: a hit passes on its
    dense similarity, or on a keyword match of at least ``min_keyword_score`` (default: the
    setting). Fused RRF scores are ranks, not similarities, so the gate never looks at them.

    With ``neighbours``, each kept hit's ``context`` holds it with up to that many chunks
    before and after it on the same page, at most ``context_chars`` long (core.search.context).

    With ``also_by_words`` (answers ask for it), up to that many more chunks follow the ``k``:
    the best the keyword side finds for the query's content words alone (its stop words left
    out, core.search.stopwords). A question's own words ("which", "the", "welche") are in
    most chunks of its language, and summed they can outweigh the one rare word that names
    the answer ("A5" on a German page asked about in English).
    """

    mode = retrieval or resources.settings.retrieval_mode

    def search() -> list[SearchHit]:
        # Embedding is CPU work and Qdrant local mode blocks: both stay off the event loop.
        # Keyword mode embeds only for the relevance gate, which reads the cosine.
        needs_vector = mode != "keyword" or min_score is not None
        vector = resources.embedder().embed_query(query) if needs_vector else None
        found = resources.vectors.search(
            vector, limit=k, document_ids=document_ids, owner=owner, text=query, retrieval=mode
        )
        words = content_query(query)
        if also_by_words <= 0 or mode == "dense" or words == query:
            return found
        by_words = resources.vectors.search(
            vector,
            limit=k + also_by_words,
            document_ids=document_ids,
            owner=owner,
            text=words,
            retrieval="keyword",
        )
        known = {(hit.document_id, hit.chunk_index) for hit in found}
        more = [hit for hit in by_words if (hit.document_id, hit.chunk_index) not in known]
        return found + more[:also_by_words]

    hits = await asyncio.to_thread(search)
    if min_score is not None:
        keyword_bar = (
            resources.settings.retrieval_min_keyword_score
            if min_keyword_score is None
            else min_keyword_score
        )
        hits = [hit for hit in hits if relevant(hit, min_score, keyword_bar)]
    if neighbours > 0 and hits:
        hits = await asyncio.to_thread(
            with_neighbours,
            resources.vectors,
            hits,
            neighbours=neighbours,
            budget_chars=context_chars,
            owner=owner,
        )
    return hits


def relevant(hit: SearchHit, min_score: float, min_keyword_score: float) -> bool:
    if hit.dense_score is not None and hit.dense_score >= min_score:
        return True
    return hit.keyword_score is not None and hit.keyword_score >= min_keyword_score
