"""Neighbours of a hit for the answer step: same page only, each chunk given once, in budget."""

from __future__ import annotations

from pathlib import Path

from core.chat.prompt import documents_turns, source_of
from core.search.context import join_overlapping, with_neighbours
from core.search.vectorstore import SearchHit, VectorStore
from core.texts import Chunk

PAGES = [1, 1, 1, 1, 2, 2]
TEXTS = [f"Sentence {i} of the manual, on page {p}." for i, p in enumerate(PAGES)]


def stored(tmp_path: Path) -> VectorStore:
    store = VectorStore.connect(url=None, api_key=None, path=tmp_path, collection="c")
    chunks = [Chunk(i, p, t, 0) for i, (p, t) in enumerate(zip(PAGES, TEXTS, strict=True))]
    unit = [[1.0 if d == i else 0.0 for d in range(384)] for i in range(len(chunks))]
    store.upsert_chunks(
        document_id="doc", filename="m.pdf", owner="alice", chunks=chunks, vectors=unit
    )
    return store


def hit(index: int) -> SearchHit:
    return SearchHit("doc", "m.pdf", PAGES[index], index, TEXTS[index], 0.5)


def test_neighbours_on_the_same_page_each_given_once(tmp_path: Path) -> None:
    store = stored(tmp_path)
    first, second, last = with_neighbours(
        store, [hit(1), hit(2), hit(4)], neighbours=1, budget_chars=1000, owner="alice"
    )
    # Chunk 2 is a hit itself: not repeated inside chunk 1's passage.
    assert first.context == f"{TEXTS[0]} {TEXTS[1]}"
    # Chunk 1 is a hit and chunk 3 went to no one yet: chunk 2 gets 3.
    assert second.context == f"{TEXTS[2]} {TEXTS[3]}"
    # Chunk 3 (page 1) is on another page than chunk 4 (page 2), and given already anyway.
    assert last.context == f"{TEXTS[4]} {TEXTS[5]}"
    assert first.text == TEXTS[1] and first.passage == first.context
    store.close()


def test_the_quote_step_reads_every_hit_whole_even_beside_another_hit(tmp_path: Path) -> None:
    store = stored(tmp_path)
    first, second = with_neighbours(
        store, [hit(1), hit(2)], neighbours=1, budget_chars=1000, owner="alice", distinct=False
    )
    assert first.context == " ".join(TEXTS[0:3]), "chunk 2 is a hit, and still chunk 1's context"
    assert second.context == " ".join(TEXTS[1:4])
    store.close()


def test_the_budget_and_the_owner_bound_the_passage(tmp_path: Path) -> None:
    store = stored(tmp_path)
    [alone] = with_neighbours(
        store, [hit(1)], neighbours=2, budget_chars=len(TEXTS[1]) + 5, owner="alice"
    )
    assert alone.context == "" and alone.passage == TEXTS[1]
    [others] = with_neighbours(store, [hit(1)], neighbours=2, budget_chars=1000, owner="bob")
    assert others.context == ""  # bob's view of the store holds none of alice's chunks
    [wide] = with_neighbours(store, [hit(1)], neighbours=2, budget_chars=1000, owner="alice")
    assert wide.context == " ".join(TEXTS[0:4])
    store.close()


def test_overlapping_chunks_are_joined_once_and_the_prompt_uses_the_passage() -> None:
    before = "The option --max-upload-mb sets the largest upload in megabytes."
    after = "the largest upload in megabytes. Raise it for scanned books."
    assert join_overlapping([before, after]) == (
        "The option --max-upload-mb sets the largest upload in megabytes. Raise it for "
        "scanned books."
    )
    widened = SearchHit("d", "f.pdf", 1, 0, after, 0.5, context=join_overlapping([before, after]))
    prompt = documents_turns("How large may an upload be?", [widened])[-1].content
    assert "--max-upload-mb" in prompt


def test_a_sources_score_is_the_cosine_not_the_fused_rank() -> None:
    fused = SearchHit("d", "f.pdf", 1, 0, "text", 0.5, dense_rank=3, dense_score=0.61234)
    assert source_of(fused).score == 0.6123
    keyword_only = SearchHit("d", "f.pdf", 1, 0, "text", 7.25, keyword_rank=1, keyword_score=7.25)
    assert source_of(keyword_only).score == 7.25
