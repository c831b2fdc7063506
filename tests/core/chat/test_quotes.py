"""Quote first: the best sentences of the retrieved chunks, verbatim, with their source number.

The chunks are real page texts of corpus PDFs (as pypdf extracts them) and the scoring uses the
real MiniLM embedder; no model is involved.
"""

from __future__ import annotations

from collections.abc import Sequence

from core.chat.quotes import (
    MAX_EMBEDDED,
    best_quotes,
    keyword_overlap,
    sentences,
    shape_factor,
    with_answers,
    with_headings,
)
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

# GeoTopo-komprimiert.pdf pages 24, 22 and 51, and pdflatex-4-pages.pdf page 4, as chunked.
KNOTS = (
    "21 1.6. WEGE UND KNOTEN\nDeﬁnition 20\nEine geschlossene Jordankurve in R3 heißt Knoten.\n"
    "Beispiel 19 (Knoten)\n(a) Trivialer Knoten\n (b) Kleeblattknoten\n (c) Achterknoten\n"
    " (d) 62-Knoten\nAbbildung 1.11: Beispiele für verschiedene Knoten\nDeﬁnition 21"
)
HILBERT = (
    "wegzusammenhängend. ■\nBeispiel 18 (Hilbert-Kurve)\nEs gibt stetige, surjektive "
    "Abbildungen [0, 1] → [0, 1] × [0, 1]. Ein Beispiel ist die in Abbil-\ndung 1.9 "
    "dargestellte Hilbert-Kurve.\nDeﬁnition 19\nSei X ein topologischer Raum. Eine "
    "Jordankurve in X ist ein Homöomorphismus γ :"
)
RETRACT = (
    "a) ι : A→X mit ι(x) = x heißt die Inklusionsabbildung und man schreibt: ι : A↪→X.\n"
    "b) r heißt Retraktion, wenn r|A = idA ist.\n"
    "c) A heißt Deformationsretrakt, wenn es eine Retraktion r auf A mit ι◦r∼ idX gibt.\n"
    "Beispiel 31 (Zylinder auf Kreis)\nSei X = S1 × R ein topologischer Raum und"
)
ASKS = (  # the chunk ends right after the question; the answer is in the next chunk
    "you read this text, you will get no information. Really? Is there no information? Is\n"
    "there a difference between this text and some nonsense like “Huardest gefburn”? Kjift –"
)
ANSWERS = (
    "Really? Is there no information? Is there a difference between this text and\n"
    "some nonsense like “Huardest gefburn”? Kjift – not at all! A blind text like this"
)


def hit(text: str, page: int, filename: str = "GeoTopo-komprimiert.pdf") -> SearchHit:
    return SearchHit("d", filename, page, page, text, 0.5)


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


def test_a_heading_is_quoted_with_the_statement_it_heads() -> None:
    units = [
        "Satz 2.1 (Eulersche Polyederformel)",
        "Sei P ein konvexes Polyeder in R3, sodass gilt:",
        "∀x,y∈∂P : [x,y] ⊆P",
        "Dann ist χ(∂P ) = 2.",
        "(b) Kleeblattknoten (c) Achterknoten",
    ]
    joined = with_headings(units)
    assert joined[0] == (
        "Satz 2.1 (Eulersche Polyederformel) Sei P ein konvexes Polyeder in R3, sodass gilt: "
        "∀x,y∈∂P : [x,y] ⊆P Dann ist χ(∂P ) = 2."
    ), "the heading carries on to the end of its statement, past the colon"
    assert joined[-1] == "(b) Kleeblattknoten (c) Achterknoten", "no statement follows: alone"


def test_headings_captions_and_questions_count_for_less_than_statements() -> None:
    assert shape_factor("Eine geschlossene Jordankurve in R3 heißt Knoten.") == 1.0
    statement = shape_factor("Definition 20 Eine geschlossene Jordankurve in R3 heißt Knoten.")
    assert statement == 1.0, "a heading joined to its statement is a statement"
    for fragment in (
        "Beispiel 25 (Lie-Gruppen)",
        "Abbildung 1.2: Zariski-Topologie auf R2",
        "Eulersche Polyederformel, 38",
        "Is there a difference between this text and some nonsense?",
    ):
        assert shape_factor(fragment) < 1.0, fragment


def test_a_definition_question_gets_the_defining_sentence_not_a_caption(
    embedder: Embedder,
) -> None:
    best = best_quotes("Was ist ein Knoten?", [hit(KNOTS, 24)], embedder.embed)[0]
    assert "Eine geschlossene Jordankurve in R3 heißt Knoten." in best.text
    assert best.page == 24


def test_a_quote_takes_in_the_sentence_it_needs(embedder: Embedder) -> None:
    question = (
        "Kann man das Einheitsintervall stetig und surjektiv auf das Einheitsquadrat abbilden?"
    )
    best = best_quotes(question, [hit(HILBERT, 22)], embedder.embed)[0]
    assert "Es gibt stetige, surjektive Abbildungen [0, 1] → [0, 1] × [0, 1]." in best.text
    assert "Hilbert-Kurve." in best.text, "the next sentence, with the example, comes along"
    assert best.text in flat(HILBERT), "still verbatim"


def test_a_question_asking_two_things_gets_a_quote_for_each(embedder: Embedder) -> None:
    question = (
        "Was ist eine Retraktion, und wann nennt man eine Teilmenge einen Deformationsretrakt?"
    )
    quotes = best_quotes(question, [hit(RETRACT, 51)], embedder.embed)
    text = " ".join(q.text for q in quotes)
    assert "b) r heißt Retraktion, wenn r|A = idA ist." in text
    assert "c) A heißt Deformationsretrakt" in text


def test_the_passage_that_answers_beats_the_one_that_only_asks(embedder: Embedder) -> None:
    question = 'Is there a difference between this text and some nonsense like "Huardest gefburn"?'
    found = [hit(ASKS, 4, "pdflatex-4-pages.pdf"), hit(ANSWERS, 3, "pdflatex-outline.pdf")]
    best = best_quotes(question, found, embedder.embed)[0]
    assert "not at all!" in best.text
    assert (best.source, best.page) == (2, 3)


def test_an_inflected_form_is_weaker_evidence_than_the_word() -> None:
    question = "How many people live in Germany?"
    assert keyword_overlap(question, "Germany 83,190,556") > keyword_overlap(
        question, "Austria 8.9 83,879 Vienna German"
    )


def test_only_the_likeliest_candidates_are_embedded(embedder: Embedder) -> None:
    asked: list[int] = []

    def embed(texts: Sequence[str]) -> list[list[float]]:
        asked.append(len(texts))
        return embedder.embed(texts)

    many = [hit(f"Filler sentence number {n} says nothing at all here.", n) for n in range(40)]
    best = best_quotes("What is the area of Finland in km2?", [*many, *hits()], embed)[0]
    assert asked == [MAX_EMBEDDED + 1], "the question and at most MAX_EMBEDDED candidates"
    assert "Finland 5.5 338,424" in best.text


def test_a_second_quote_never_repeats_a_sentence_of_the_first(embedder: Embedder) -> None:
    # GeoTopo-komprimiert.pdf page 29: the heading joins the first example, which the second
    # example's passage would otherwise take in again.
    text = (
        "26 2.1. TOPOLOGISCHE MANNIGFALTIGKEITEN\nBeispiel 20 (Mannigfaltigkeiten)\n1) Jede oﬀene "
        "Teilmenge U ⊆ Rn ist eine n-dimensionale Mannigfaltigkeit mit einem\nAtlas aus einer "
        "Karte.\n2) Cn ist eine 2n-dimensionale Mannigfaltigkeit mit einem Atlas aus einer Karte:"
    )
    question = (
        "Wann heißt ein topologischer Raum eine n-dimensionale Mannigfaltigkeit? Karte und Atlas"
    )
    quotes = best_quotes(question, [hit(text, 29)], embedder.embed)
    parts = [part for quote in quotes for part in sentences(quote.text)]
    assert len(parts) == len(set(parts)), [quote.text for quote in quotes]


def test_a_quote_never_repeats_a_sentence(embedder: Embedder) -> None:
    question = 'Is there a difference between this text and some nonsense like "Huardest gefburn"?'
    best = best_quotes(question, [hit(ANSWERS, 3, "pdflatex-outline.pdf")], embedder.embed)[0]
    parts = [part.casefold() for part in sentences(best.text)]
    assert "not at all!" in best.text and len(parts) == len(set(parts)), best.text
