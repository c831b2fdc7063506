"""A hit's neighbours for the answer step: the chunks around it on the same page.

A chunk of 128 tokens often starts mid-argument; the one before it (and after) on the same
page gives the model the sentence it belongs to. Neighbours are added outwards, nearest
first, until the passage would pass the budget; a chunk already given to the model (as a hit
or as another hit's neighbour) is never given twice. Consecutive chunks overlap by
``chunk_overlap_tokens``, so the repeated text is joined once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from core.search.vectorstore import SearchHit, VectorStore

# The longest overlap looked for between consecutive chunks (32 tokens are ~200 characters).
MAX_OVERLAP_CHARS = 600


def with_neighbours(
    store: VectorStore,
    hits: Sequence[SearchHit],
    *,
    neighbours: int,
    budget_chars: int,
    owner: str | None,
    distinct: bool = True,
) -> list[SearchHit]:
    """``hits`` with their ``context``; with ``distinct`` False a chunk may be in several
    contexts (the quote step reads each hit whole, core.chat.pool)."""
    if neighbours <= 0:
        return list(hits)
    given = {(hit.document_id, hit.chunk_index) for hit in hits} if distinct else set()
    result = []
    for hit in hits:
        around = [hit.chunk_index + d for d in range(-neighbours, neighbours + 1) if d]
        texts = store.chunk_texts(
            hit.document_id,
            [i for i in around if i >= 0],
            owner=owner,
            generation=hit.generation,
        )
        passage: dict[int, str] = {hit.chunk_index: hit.text}
        size = len(hit.text)
        for distance in range(1, neighbours + 1):
            for index in (hit.chunk_index - distance, hit.chunk_index + distance):
                page, text = texts.get(index, (None, ""))
                if page != hit.page or (hit.document_id, index) in given:
                    continue
                if size + len(text) > budget_chars:
                    continue
                passage[index] = text
                if distinct:
                    given.add((hit.document_id, index))
                size += len(text)
        ordered = [passage[i] for i in sorted(passage)]
        result.append(replace(hit, context=join_overlapping(ordered)) if len(ordered) > 1 else hit)
    return result


def join_overlapping(texts: Sequence[str]) -> str:
    """Join consecutive chunks, writing the text two of them share once."""
    joined = texts[0]
    for text in texts[1:]:
        overlap = _overlap(joined, text)
        joined = joined + text[overlap:] if overlap else f"{joined} {text}"
    return joined


def _overlap(before: str, after: str) -> int:
    longest = min(len(before), len(after), MAX_OVERLAP_CHARS)
    for size in range(longest, 10, -1):
        if before.endswith(after[:size]):
            return size
    return 0
