"""The chunks an answer reads, and the ones it shows as its sources.

The quote step reads more chunks than an answer shows: the ``answer_pool_k`` best, then up
to ``POOL_BY_WORDS`` more that the question's content words alone find (core.search.
retrieval), each read with the chunk before and after it on its page. The sentence that
answers is often in a chunk ranked below the shown ones, or cut in two at a chunk's edge.
The answer shows the ``retrieval_k`` best chunks as before, and after them every further
chunk it quotes, so each quote's marker names a source that holds it and no source is shown
that nothing in the answer came from.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from core.chat.quotes import Quote
from core.search.context import with_neighbours
from core.search.vectorstore import SearchHit, VectorStore

# Neighbours on each side the quote step reads a chunk with (core.search.context), within
# this many characters.
QUOTE_NEIGHBOURS = 1
QUOTE_CONTEXT_CHARS = 2000
POOL_BY_WORDS = 4


def read_whole(store: VectorStore, hits: Sequence[SearchHit], *, owner: str) -> list[SearchHit]:
    """Each hit with its neighbours on its page, even those that are hits themselves: the
    quote step reads every hit whole (a list that goes on in the next chunk, a sentence cut
    at the edge), and quotes a sentence that two hits share once."""
    return with_neighbours(
        store,
        hits,
        neighbours=QUOTE_NEIGHBOURS,
        budget_chars=QUOTE_CONTEXT_CHARS,
        owner=owner,
        distinct=False,
    )


def shown_sources(
    pool: Sequence[SearchHit], quotes: Sequence[Quote], *, shown: int
) -> tuple[list[SearchHit], list[Quote]]:
    """The sources to show (the first ``shown`` of ``pool``, then those the quotes come from)
    and the quotes with their markers numbering those sources."""
    sources = list(pool[:shown])
    numbered: list[Quote] = []
    for quote in quotes:
        hit = pool[quote.source - 1]
        if hit not in sources:
            sources.append(hit)
        numbered.append(replace(quote, source=sources.index(hit) + 1))
    return sources, numbered
