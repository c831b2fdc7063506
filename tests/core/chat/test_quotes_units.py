"""Quote units on real corpus pages: lists quoted whole, ligatures matched, short statements
kept, dates asked for found, a passage never quoted twice, and the pool's lower ranks.

Page texts are extracted from the shared corpus PDFs with docchat's own extraction; the
scoring uses the real MiniLM embedder; no model is involved.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from core.chat.pool import shown_sources
from core.chat.quotes import (
    POOL_FACTOR,
    Quote,
    best_quotes,
    candidates,
    score_candidates,
    sentences,
    with_lists,
)
from core.ingestion.extraction import pdf
from core.search.embeddings import Embedder
from core.search.vectorstore import SearchHit

GEOTOPO = "GeoTopo-komprimiert.pdf"


def page_hit(corpus: Path, name: str, page: int) -> SearchHit:
    (text,) = [p.text for p in pdf.extract_pages(corpus / name, page, page)]
    return SearchHit(name, name, page, page, text, 0.5)


@pytest.fixture(scope="module")
def corpus_dir(corpus: Path) -> Path:
    return corpus


def test_a_list_is_one_unit_with_the_sentence_that_leads_into_it(corpus_dir: Path) -> None:
    units = with_lists(sentences(page_hit(corpus_dir, GEOTOPO, 10).text))
    (metric,) = [u for u in units if "heißt Metrik, wenn gilt:" in u]
    assert "(i) Deﬁnitheit" in metric and "(iii) Dreiecksungleichung" in metric
    # A new list ("a)" again after "c)") is a list of its own, not the next item.
    lists = with_lists(["a) eins.", "b) zwei.", "c) drei.", "Bemerkung 2", "a) vier.", "b) f."])
    assert lists == ["a) eins. b) zwei. c) drei.", "Bemerkung 2", "a) vier. b) f."]
    assert with_lists(["a) allein."]) == ["a) allein."], "one item is no list"


def test_a_word_typed_without_the_pdfs_ligature_matches_it(
    corpus_dir: Path, embedder: Embedder
) -> None:
    question = "Wann nennt man einen topologischen Raum hausdorffsch?"  # the page has "hausdorﬀsch"
    best = best_quotes(question, [page_hit(corpus_dir, GEOTOPO, 12)], embedder.embed)
    assert any("Umgebungen Ux um x und Uy um y" in quote.text for quote in best), best


def test_short_statements_stay_with_the_sentence_before_them(
    corpus_dir: Path, embedder: Embedder
) -> None:
    crazy = page_hit(corpus_dir, "crazyones-pdfa.pdf", 1)
    assert "Heres to the crazy ones. The misﬁts. The rebels." in sentences(crazy.text)
    question = "Here's to the crazy ones, the misfits, the rebels, the troublemakers"
    best = best_quotes(question, [crazy], embedder.embed)
    assert "The misﬁts." in best[0].text


def test_a_day_of_the_month_ends_no_sentence_and_a_when_question_finds_the_date(
    corpus_dir: Path, embedder: Embedder
) -> None:
    title = page_hit(corpus_dir, GEOTOPO, 1)
    assert any("31. Dezember 2016" in unit for unit in sentences(title.text))
    crazy = page_hit(corpus_dir, "crazyones-pdfa.pdf", 1)
    best = best_quotes("When was the Crazy Ones text written?", [crazy], embedder.embed)
    assert any("October 14, 1998" in quote.text for quote in best), best


def test_a_heading_joined_to_a_list_is_not_quoted_with_the_list_again(
    corpus_dir: Path, embedder: Embedder
) -> None:
    question = "Ist der Raum R mit der Zariski-Topologie hausdorffsch?"
    best = best_quotes(question, [page_hit(corpus_dir, GEOTOPO, 12)], embedder.embed)
    for quote in best:
        text = quote.text
        assert text.count("ist ein topologischer Raum, der nicht hausdorﬀsch ist") <= 1, text
    if len(best) == 2:
        assert best[0].text not in best[1].text and best[1].text not in best[0].text


def test_a_sentence_from_beyond_the_shown_sources_keeps_part_of_its_score(
    corpus_dir: Path, embedder: Embedder
) -> None:
    question = "Wann nennt man einen topologischen Raum hausdorffsch?"
    hits = [page_hit(corpus_dir, GEOTOPO, 11), page_hit(corpus_dir, GEOTOPO, 12)]
    found = candidates(hits)
    everything = {c.text: s for s, c in score_candidates(question, found, embedder.embed)}
    first_shown = {c.text: s for s, c in score_candidates(question, found, embedder.embed, shown=1)}
    for candidate in found:
        factor = POOL_FACTOR if candidate.source == 2 else 1.0
        expected = everything[candidate.text] * factor
        assert first_shown[candidate.text] == pytest.approx(expected, rel=1e-3)


def test_quoted_sources_beyond_the_shown_ones_are_added_and_renumbered() -> None:
    pool = [SearchHit("d", "f.pdf", page, page, f"chunk {page}", 0.5) for page in range(1, 7)]

    def quote(source: int) -> Quote:
        return Quote(f"text {source}", source, source, "f.pdf", 0.9)

    hits, quotes = shown_sources(pool, [quote(6), quote(2), quote(6)], shown=3)
    assert [hit.page for hit in hits] == [1, 2, 3, 6]
    assert [(q.source, q.page) for q in quotes] == [(4, 6), (2, 2), (4, 6)]
    assert all(hits[q.source - 1].page == q.page for q in quotes), "each marker names its page"
    hits, quotes = shown_sources(pool, [quote(1)], shown=3)
    assert [hit.page for hit in hits] == [1, 2, 3] and quotes[0].source == 1


def test_no_quote_says_a_sentence_twice_where_a_list_follows_a_colon(
    corpus_dir: Path, embedder: Embedder
) -> None:
    page = page_hit(corpus_dir, GEOTOPO, 80)  # "… gezeigt: (i) h ist surjektiv (ii) …"
    for unit in (c.text for c in candidates([page])):
        clauses = [" ".join(p.split()) for p in re.split(r"(?<=[.!?:])\s+", unit)]
        assert len(clauses) == len(set(clauses)), unit
    question = "Ist h surjektiv und eine Isometrie, und warum ist h dann bijektiv?"
    for quote in best_quotes(question, [page], embedder.embed):
        clauses = [" ".join(p.split()) for p in re.split(r"(?<=[.!?:])\s+", quote.text)]
        assert len(clauses) == len(set(clauses)), quote.text
