"""Quote first: the best sentences of the retrieved chunks, verbatim, with their source number.

The chunks are real page texts of corpus PDFs (as pypdf extracts them) and the scoring uses the
real MiniLM embedder; no model is involved.
"""

from __future__ import annotations

from core.chat.quotes import best_quotes, keyword_overlap, sentences, with_answers
from core.search.embeddings import Embedder
from core.search.vectorstore import SearchHit

# multicolumn.pdf, page 3, and GeoTopo-komprimiert.pdf, page 2, as extracted.
TABLE = """Table 1: EU Countries Information
Country Population (millions) Area (km2) Capital Oﬃcial Language
Austria 8.9 83,879 Vienna German
Belgium 11.5 30,689 Brussels Dutch, French, German
Czech Republic 10.7 78,866 Prague Czech
Denmark 5.8 42,951 Copenhagen Danish
Finland 5.5 338,424 Helsinki Finnish, Swedish
3"""
PREFACE = """Vorwort
Dieses Skript wurde im Wintersemester 2013/2014 von Martin Thoma geschrieben. Es beinhaltet
die Mitschriften aus der Vorlesung von Prof. Dr. Herrlich sowie die Mitschriften einiger Übungen
und Tutorien.
Das Skript ist kostenlos über martin-thoma.com/geotopo verfügbar. Wer es gerne in A5 (Schwarz-
Weiß, Ringbindung) für 10 Euro hätte, kann mir eine E-Mail schicken (info@martin-thoma.de)."""
BLIND = """Hello, here is some text without a meaning. This text should show what a printed text
will look like at this place. If you read this text, you will get no information. Really?"""


def hits() -> list[SearchHit]:
    return [
        SearchHit("d1", "pdflatex-4-pages.pdf", 1, 0, BLIND, 0.31),
        SearchHit("d2", "GeoTopo-komprimiert.pdf", 2, 3, PREFACE, 0.30),
        SearchHit("d3", "multicolumn.pdf", 3, 16, TABLE, 0.29),
    ]


def flat(text: str) -> str:
    return " ".join(text.split())


def test_prose_is_joined_across_wrapped_lines_and_table_rows_stay_apart() -> None:
    found = sentences(PREFACE)
    assert "Dieses Skript wurde im Wintersemester 2013/2014 von Martin Thoma geschrieben." in found
    assert (
        "Es beinhaltet die Mitschriften aus der Vorlesung von Prof. Dr. Herrlich sowie die "
        "Mitschriften einiger Übungen und Tutorien." in found
    ), "wrapped lines are joined, and 'Prof.' does not end a sentence"
    rows = sentences(TABLE)
    assert "Finland 5.5 338,424 Helsinki Finnish, Swedish" in rows
    assert "Austria 8.9 83,879 Vienna German" in rows


def test_a_table_set_out_column_by_column_is_quoted_by_column() -> None:
    columns = "Continent\nAsia\nEurope\nCapital\nJakarta\nBerlin\nVienna\nParis\nVatican City"
    assert sentences(columns) == [
        "Continent Asia Europe Capital Jakarta Berlin Vienna Paris Vatican City"
    ]


def test_a_question_in_the_text_is_quoted_with_its_answer() -> None:
    text = "Is there a difference between this text and nonsense? Kjift – not at all! A blind text."
    assert with_answers(sentences(text))[0] == (
        "Is there a difference between this text and nonsense? Kjift – not at all!"
    )


def test_numbers_and_identifiers_in_the_question_weigh_most() -> None:
    question = "Is 338,424 the area of Finland?"
    assert keyword_overlap(question, "The area of Finland: 338,424 km2") == 1.0
    only_word = keyword_overlap(question, "Finland is a country")
    only_number = keyword_overlap(question, "the value 338,424 here")
    assert only_number > only_word > 0


def test_a_number_is_quoted_verbatim_from_the_right_page(embedder: Embedder) -> None:
    quotes = best_quotes("What is the area of Finland in km2?", hits(), embedder.embed)
    best = quotes[0]
    header = "Country Population (millions) Area (km2) Capital Oﬃcial Language"
    row = "Finland 5.5 338,424 Helsinki Finnish, Swedish"
    assert best.text == f"{header} … {row}", "a table row is quoted under its header"
    assert header in TABLE and row in TABLE
    assert (best.source, best.page, best.filename) == (3, 3, "multicolumn.pdf")
    assert best.marked == f"{header} … {row} [3]"


def test_an_identifier_is_quoted_verbatim_with_its_source_number(embedder: Embedder) -> None:
    question = "Which email address can I write to for a printed A5 copy of the script?"
    best = best_quotes(question, hits(), embedder.embed)[0]
    assert "(info@martin-thoma.de)" in best.text
    assert best.text in flat(PREFACE), "the document's own words, not a paraphrase"
    assert (best.source, best.page) == (2, 2)


def test_at_most_two_quotes_best_first(embedder: Embedder) -> None:
    quotes = best_quotes(
        "What is the capital and the population of Denmark?", hits(), embedder.embed
    )
    assert 1 <= len(quotes) <= 2
    assert quotes[0].text.endswith(" … Denmark 5.8 42,951 Copenhagen Danish")
    assert [q.score for q in quotes] == sorted((q.score for q in quotes), reverse=True)
    assert best_quotes("anything", [], embedder.embed) == []
