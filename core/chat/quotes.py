"""Quote first: the sentences of the retrieved chunks that best answer the question, verbatim.

A small chat model loses facts it is given (numbers, option names, identifiers); the document's
own sentence does not. Each sentence of each retrieved chunk is scored against the question by
meaning (the MiniLM sentence embedder that already embedded the question for retrieval) and by
the question's words it contains (numbers and identifiers weigh most, since a question naming
``max_connections`` or ``2048`` wants the sentence that names it too).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from core.search.vectorstore import SearchHit

# How much meaning and shared words count; the words decide between sentences that mean
# about the same, and pick a table row ("Finland Helsinki 5,5 …") no embedding singles out.
MEANING_WEIGHT = 0.55
WORDS_WEIGHT = 0.45
# A second quote is added when it scores nearly as well as the best: questions often ask
# for two things ("the capital and the currency"), which two sentences hold.
SECOND_QUOTE_RATIO = 0.85
MAX_QUOTES = 2
MIN_SENTENCE_CHARS = 12
WRAPPED_LINE_CHARS = 70  # prose lines run the page's width; table rows and headings less
COLUMN_CELL_CHARS = 20
MAX_QUOTE_CHARS = 400  # a sentence longer than this is cut at a word, with an ellipsis
# Below this best score the passage is shown but the answer says it may not be the answer.
HIGH_CONFIDENCE = 0.5

Embed = Callable[[Sequence[str]], list[list[float]]]

_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
_WORD = re.compile(r"[\w][\w.\-/:]*[\w]|\w", re.UNICODE)
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[\"'(\[]?[A-ZÄÖÜ0-9])")
_STOPWORDS = frozenset(
    """
    a an and are as at be by can do does did for from has have how i in is it its of on or
    the that this to was were what when where which who whom whose why will with you your
    about according any into there their they them than then these those also does doing
    many much say says said give list tell me please
    der die das ein eine einer eines einem einen und oder ist sind wie was wer wann wo warum
    welche welcher welches man von zu zur zum im in den dem des mit auf für über bei als
    es sich nicht noch auch dass heißt nennt muss
    """.split()
)


_ABBREVIATIONS = frozenset(
    "prof. dr. nr. bzw. vgl. ca. bspw. usw. etc. e.g. i.e. vs. fig. no. sec. bem. abb. bsp.".split()
)


@dataclass(frozen=True)
class Quote:
    """One sentence of a retrieved chunk, as the document has it, and where it comes from."""

    text: str
    source: int  # its citation marker: 1 for the first source, as in ``sources``
    page: int
    filename: str
    score: float

    @property
    def marked(self) -> str:
        return f"{self.text} [{self.source}]"


@dataclass(frozen=True)
class Candidate:
    text: str
    source: int
    hit: SearchHit


def sentences(text: str) -> list[str]:
    """The sentences of a chunk: prose lines joined back together, table rows kept apart."""
    blocks: list[str] = []
    previous = ""  # the last line as the PDF had it, to tell wrapped prose by its length
    for raw in text.splitlines():
        line = " ".join(raw.split())
        if not line:
            continue
        # A line that does not end a sentence, followed by one in lower case or coming after
        # a full-width line, is prose wrapped by the page's layout: join it. Anything else (a
        # heading, a table row, a list item: short lines) stays a unit of its own.
        wrapped = line[:1].islower() or len(previous) >= WRAPPED_LINE_CHARS
        # Runs of very short lines are a table set out column by column ("Capital", "Jakarta",
        # "Berlin", …): one unit, so a column is quoted with its heading.
        column = len(previous) < COLUMN_CELL_CHARS and len(line) < COLUMN_CELL_CHARS
        if (
            blocks
            and column
            and len(blocks[-1]) < MAX_QUOTE_CHARS
            and not _ends_sentence(blocks[-1])
        ):
            blocks[-1] = f"{blocks[-1]} {line}"
        elif blocks and not _ends_sentence(blocks[-1]) and wrapped:
            blocks[-1] = f"{blocks[-1]} {line}"
        else:
            blocks.append(line)
        previous = line
    found: list[str] = []
    for block in blocks:
        parts = [part.strip() for part in _SENTENCE_END.split(block) if part.strip()]
        for index, part in enumerate(parts):
            if index and _abbreviated(parts[index - 1]):
                found[-1] = f"{found[-1]} {part}"  # "Prof. Dr. Herrlich", "z. B. [0; 1)"
            else:
                found.append(part)
    return [s for s in found if len(s) >= MIN_SENTENCE_CHARS and _has_letters(s)]


def candidates(hits: Sequence[SearchHit]) -> list[Candidate]:
    seen: set[str] = set()
    found: list[Candidate] = []
    for number, hit in enumerate(hits, start=1):
        # A chunk with no sentence of its own (a formula, a run of numbers) is one unit.
        for sentence in with_answers(with_headers(sentences(hit.text) or _whole(hit.text))):
            key = sentence.casefold()
            if key in seen:  # overlapping chunks repeat sentences; keep the first source's
                continue
            seen.add(key)
            found.append(Candidate(text=sentence, source=number, hit=hit))
    return found


def with_answers(units: Sequence[str]) -> list[str]:
    """A sentence that asks a question is quoted with the sentence after it, which answers."""
    return [
        f"{unit} {units[index + 1]}" if unit.endswith("?") and index + 1 < len(units) else unit
        for index, unit in enumerate(units)
    ]


def with_headers(units: Sequence[str]) -> list[str]:
    """Table rows led by their header row: "Country … Area (km2) … … Finland 5.5 338,424 …".

    A row alone ("Finland 5.5 338,424") does not say which number is the area, and a question
    naming the column ("area", "km2") should find the row, not only the header.
    """
    out: list[str] = []
    header: str | None = None
    for unit in units:
        numbers = sum(1 for word in unit.split() if _NUMBER.fullmatch(word.strip(",;()")))
        if numbers >= 2 and header is not None:
            out.append(f"{header} … {unit}")
            continue
        out.append(unit)
        if numbers == 0 and len(unit.split()) >= 3 and not _ends_sentence(unit):
            header = unit
        elif _ends_sentence(unit):
            header = None  # prose: no table here
    return out


def words(text: str) -> list[str]:
    return [w.casefold().strip(".-/:") for w in _WORD.findall(text)]


def content_words(text: str) -> list[str]:
    """The words of ``text`` that carry meaning: no stop words, no single letters."""
    return list(dict.fromkeys(w for w in words(text) if w not in _STOPWORDS and len(w) > 1))


def word_weight(word: str) -> float:
    """Numbers and identifiers say exactly what is asked; plain words less."""
    if any(ch.isdigit() for ch in word) or any(ch in word for ch in "_./:"):
        return 3.0
    return 1.5 if len(word) >= 8 else 1.0


def keyword_overlap(question: str, sentence: str) -> float:
    """The weighted share of the question's content words found in the sentence (0..1).

    A word matches exactly, or by a shared start of at least 5 letters, so inflected forms
    count ("hausdorffsch" for "Hausdorff", "populations" for "population").
    """
    asked = set(content_words(question))
    if not asked:
        return 0.0
    present = set(words(sentence))
    total = sum(word_weight(w) for w in asked)
    found = sum(word_weight(w) for w in asked if matches(w, present))
    return found / total


def score_candidates(
    question: str, found: Sequence[Candidate], embed: Embed
) -> list[tuple[float, Candidate]]:
    """Every candidate with its score, best first."""
    if not found:
        return []
    vectors = embed([question, *(c.text for c in found)])
    asked = vectors[0]
    scored = [
        (
            MEANING_WEIGHT * max(0.0, _cosine(asked, vector))
            + WORDS_WEIGHT * keyword_overlap(question, candidate.text),
            candidate,
        )
        for vector, candidate in zip(vectors[1:], found, strict=True)
    ]
    scored.sort(key=lambda pair: pair[0], reverse=True)
    return scored


def best_quotes(question: str, hits: Sequence[SearchHit], embed: Embed) -> list[Quote]:
    """The one or two sentences to lead the answer with, best first (empty without hits)."""
    scored = score_candidates(question, candidates(hits), embed)
    if not scored:
        return []
    best = scored[0][0]
    chosen = [pair for pair in scored[:MAX_QUOTES] if pair[0] >= best * SECOND_QUOTE_RATIO]
    return [
        Quote(
            text=_clip(candidate.text),
            source=candidate.source,
            page=candidate.hit.page,
            filename=candidate.hit.filename,
            score=round(score, 4),
        )
        for score, candidate in chosen
    ]


def matches(word: str, present: set[str]) -> bool:
    """``word`` is in ``present``, or an inflected form of it (numbers must match exactly)."""
    if word in present:
        return True
    if len(word) < 5 or word_weight(word) >= 3.0:  # numbers and identifiers match exactly
        return False
    stem = word[:5]
    return any(len(other) >= 5 and other[:5] == stem for other in present)


def _abbreviated(text: str) -> bool:
    """Whether ``text`` ends with an abbreviation's dot rather than a sentence's."""
    last = text.rsplit(" ", 1)[-1].casefold()
    return len(last) <= 2 or last in _ABBREVIATIONS


def _whole(text: str) -> list[str]:
    flat = " ".join(text.split())
    return [flat] if _has_letters(flat) else []


def _ends_sentence(text: str) -> bool:
    return text.endswith((".", "!", "?", ":", ";"))


def _has_letters(text: str) -> bool:
    return sum(ch.isalpha() for ch in text) >= 3


def _cosine(a: Sequence[float], b: Sequence[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    norm = math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b))
    return dot / norm if norm else 0.0


def _clip(text: str) -> str:
    if len(text) <= MAX_QUOTE_CHARS:
        return text
    cut = text[:MAX_QUOTE_CHARS].rsplit(" ", 1)[0]
    return cut + " …"
