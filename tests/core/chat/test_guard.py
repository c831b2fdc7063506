"""The answer filter: what a model writes is shown only sentence by sentence, and only if it
is not a loop, names real sources, and (for the embedded model) is found in the sources."""

from __future__ import annotations

from core.chat.guard import AnswerFilter, markers

SOURCES = [
    "Country Population (millions) Area (km2) Capital Official Language\n"
    "Finland 5.5 338,424 Helsinki Finnish, Swedish",
    "The worker polls the task queue every 250 ms and retries a failed activity three times.",
]


def run(pieces: list[str], checks: AnswerFilter) -> str:
    shown = ""
    for piece in pieces:
        shown += checks.feed(piece)
        if checks.done:
            break
    return shown + checks.finish()


def test_a_phrase_repeated_until_the_token_limit_shows_nothing() -> None:
    checks = AnswerFilter(source_count=2, max_chars=None)
    shown = run(["The answer is: "] * 200, checks)
    assert shown == ""
    assert checks.report.stopped == "repetition"


def test_a_repeated_sentence_is_cut_at_its_first_repetition() -> None:
    checks = AnswerFilter(source_count=2, max_chars=None)
    shown = run(["Vienna is the capital. "] * 50, checks)
    assert shown == "Vienna is the capital. "
    assert checks.report.stopped == "repetition"


def test_a_counting_loop_is_cut() -> None:
    checks = AnswerFilter(source_count=2, max_chars=None)
    shown = run(["Here is the list.\n", "1: 1, 2: 2, 3: 3, 4: 4, ", "5: 5, 6: 6, 7: 7."], checks)
    assert shown.strip() == "Here is the list."
    assert checks.report.stopped == "repetition"


def test_a_repeated_line_ends_the_answer_but_what_came_before_stays() -> None:
    checks = AnswerFilter(source_count=2, max_chars=None)
    shown = run(["Helsinki is the capital [1].\n", "It has 5.5 million people.\n"] * 3, checks)
    assert shown == "Helsinki is the capital [1].\nIt has 5.5 million people.\n"
    assert checks.report.stopped == "repetition"


def test_a_stop_sequence_ends_the_answer() -> None:
    checks = AnswerFilter(source_count=2, max_chars=None)
    shown = run(["Helsinki [1].", "\nQuestion: what", " else?"], checks)
    assert shown.strip() == "Helsinki [1]."
    assert checks.report.stopped == "stop_sequence"


def test_the_length_cap_ends_the_answer_at_a_sentence() -> None:
    checks = AnswerFilter(source_count=2, max_chars=40)
    shown = run(["First sentence is short. ", "A second one that makes it too long. "], checks)
    assert shown.strip() == "First sentence is short."
    assert checks.report.stopped == "length"


def test_markers_naming_no_source_are_removed_and_reported() -> None:
    checks = AnswerFilter(source_count=2, max_chars=None)
    shown = run(["Helsinki [1]. It is large [7][0]. Both [2, 9]."], checks)
    assert shown.strip() == "Helsinki [1]. It is large. Both [2]."
    assert sorted(checks.report.invalid_citations) == [0, 7, 9]
    assert markers(shown) == {1, 2}


def test_with_grounding_a_sentence_absent_from_the_sources_is_dropped() -> None:
    checks = AnswerFilter(source_count=2, max_chars=None, grounding=SOURCES)
    shown = run(
        [
            "The answer is: ",
            "The worker retries a failed activity three times [2]. ",
            "It polls the task queue every 400 ms [2]. ",  # a number the sources lack
            "Finland's capital is Helsinki [1]. ",
            "Bananas are yellow and grow in warm countries. ",
        ],
        checks,
    )
    assert shown == (
        "The worker retries a failed activity three times [2]. Finland's capital is Helsinki [1]. "
    )
    assert checks.report.dropped_sentences == 2
    assert checks.report.stopped is None


def test_a_number_not_in_the_sources_is_never_shown() -> None:
    checks = AnswerFilter(source_count=2, max_chars=None, grounding=SOURCES)
    shown = run(["Finland has 338,424 km2 and 9.9 million people in Helsinki."], checks)
    assert shown == ""
    assert checks.report.dropped_sentences == 1


def test_a_sentence_the_quotes_after_it_will_say_is_left_to_them() -> None:
    # The bench's one repeated line in generative mode: SmolLM2 copied the poem, and the quote
    # shown after its text ("From the documents:") began with the same line.
    quoted = ["Here's to the crazy ones. The misﬁts. The rebels."]  # the PDF's ligature
    checks = AnswerFilter(source_count=1, max_chars=None, quoted=quoted)
    shown = run(["Here's to the crazy ones. ", "The misfits [1]. ", "They push forward. "], checks)
    assert shown == "They push forward. "
    assert checks.report.stopped is None  # not a loop: the rest of the model's text stands
