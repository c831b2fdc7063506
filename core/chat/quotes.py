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

from core.search.stopwords import content_words, words
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
# A heading, caption or index line ("Beispiel 25 (Lie-Gruppen)", "Abbildung 1.2: …",
# "Eulersche Polyederformel, 38") shares the question's words without stating anything: it
# counts for this share of its score. So does a sentence that asks rather than answers.
FRAGMENT_FACTOR = 0.7
ASKING_FACTOR = 0.6
FRAGMENT_WORDS = 8
HEADING_WORDS = 6
HEADING_FOLLOWERS = 3  # a heading is quoted with the sentence it heads, up to this many units
# A definition question ("Was ist ein Knoten?") wants the sentence that defines ("… heißt
# Knoten."), not one that uses the word: a defining sentence gains this much.
DEFINITION_BONUS = 0.08
# An inflected form ("German" for "Germany") is weaker evidence than the word itself, and so
# is a compound ending in the word, for words at least this long.
STEM_MATCH_WEIGHT = 0.4
COMPOUND_TAIL_CHARS = 5
# A sentence from a chunk the answer would not show (core.chat.pool: ranked below the
# shown ones) keeps this share of its score: retrieval ranked its chunk lower for a reason.
POOL_FACTOR = 0.8
# The second quote, when it is not nearly as good, still joins when it holds question words
# the first lacks (a question asking two things) and scores at least this share of the best.
COVERING_QUOTE_RATIO = 0.55
COVERING_SHARE = 0.2
# At most this many candidates are embedded per question (see score_candidates), in
# batches of this many of similar length (little padding: most of the time on a CPU), each
# cut to this many tokens (a quote is at most ~100; its start says what it is about).
MAX_EMBEDDED = 32
SENTENCE_BATCH = 8
SENTENCE_TOKENS = 64
# A list item may run over this many units (its own sentences) before the next item's marker.
LIST_ITEM_UNITS = 3
# A quote takes in the sentence next to it when that one scores at least this share of it.
NEIGHBOUR_RATIO = 0.5

TABLE_ROW = " … "  # between a table's header row and the row quoted under it

Embed = Callable[[Sequence[str]], list[list[float]]]

_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
_CLAUSE_END = re.compile(r"(?<=[.!?:])\s+")
_ORDINAL = re.compile(r"\d{1,2}\.")
_LIST_MARKER = re.compile(r"^(\(?)([a-z]|[ivx]{1,4}|\d{1,2})\)\s")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[\"'(\[]?[A-ZÄÖÜ0-9])")
_CAPTION = re.compile(r"^(abbildung|abb\.|figure|fig\.|table|tabelle|tab\.)\s*\d", re.IGNORECASE)
_INDEX_ENTRY = re.compile(r",\s*\d+$")  # "Eulersche Polyederformel, 38"
_DEFINITION_QUESTION = re.compile(
    r"^\s*(was|what|who)\s+(ist|sind|is|are)\b|was versteht man|wie (ist|sind|wird|werden)\b"
    r".*\bdefiniert|\bwann (heißt|heißen|nennt|ist|sind)\b|\bhow is\b.*\bdefined|"
    r"\bwhat does\b.*\bmean|\bdefin(e|ition)\b|\bwhen is\b.*\bcalled",
    re.IGNORECASE,
)
_DATE_QUESTION = re.compile(
    r"^\s*(when|wann)\b|\b(what|which) (date|year)\b|\b(welche[mnrs]?|an welche[mnrs]?|"
    r"von welche[mnrs]?) (datum|jahr|tag)\b|\bin what year\b|\bin welchem jahr\b",
    re.IGNORECASE,
)
# A year, or a day with its month ("31. Dezember", "October 14"): what a "when" wants.
_DATE = re.compile(
    r"\b(1[5-9]|20)\d\d\b|\b\d{1,2}\.\s*(januar|februar|märz|april|mai|juni|juli|august|"
    r"september|oktober|november|dezember)\b|\b(january|february|march|april|may|june|july|"
    r"august|september|october|november|december)\s+\d{1,2}\b",
    re.IGNORECASE,
)
_DEFINING = re.compile(
    r"\b(heißt|heißen|hei(ss|ß)t|nennt man|nennen wir|bezeichnet|definiert|is called|are called"
    r"|is defined|are defined|we call|refers to|is said to be)\b|:=",
    re.IGNORECASE,
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
    # Where it stands among its chunk's units, and those units: a quote may take in the one
    # before or after it ("r heißt Retraktion …" before "A heißt Deformationsretrakt …").
    position: int = 0
    units: tuple[str, ...] = ()


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
        # A list item's line ("a) f heißt …", "(ii) Symmetrie: …") starts an item, never
        # continues the line before it.
        wrapped = not _LIST_MARKER.match(line) and (
            line[:1].islower() or len(previous) >= WRAPPED_LINE_CHARS
        )
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
            # "Prof. Dr. Herrlich", "z. B. [0; 1)"; and a very short statement belongs to the
            # one before it ("Heres to the crazy ones. The misfits. The rebels."), unless that
            # one asks (its answer is quoted with it, ``with_answers``).
            short = len(part) < MIN_SENTENCE_CHARS and part.endswith((".", "!"))
            if index and (
                _abbreviated(parts[index - 1]) or (short and not found[-1].endswith("?"))
            ):
                found[-1] = f"{found[-1]} {part}"
            else:
                found.append(part)
    return [s for s in found if len(s) >= MIN_SENTENCE_CHARS and _has_letters(s)]


def candidates(hits: Sequence[SearchHit]) -> list[Candidate]:
    seen: set[str] = set()
    found: list[Candidate] = []
    for number, hit in enumerate(hits, start=1):
        # A chunk with no sentence of its own (a formula, a run of numbers) is one unit.
        # The chunk with its neighbours where it has them: a sentence cut at the chunk's
        # edge is whole there, and a table column goes on in the next chunk.
        text = hit.passage
        units = tuple(
            with_lists(with_headings(with_answers(with_headers(sentences(text) or _whole(text)))))
        )
        for position, sentence in enumerate(units):
            key = sentence.casefold()
            if key in seen:  # overlapping chunks repeat sentences; keep the first source's
                continue
            seen.add(key)
            found.append(Candidate(sentence, number, hit, position=position, units=units))
    return found


def with_answers(units: Sequence[str]) -> list[str]:
    """A sentence that asks a question is quoted with the sentence after it, which answers."""
    return [
        f"{unit} {units[index + 1]}" if unit.endswith("?") and index + 1 < len(units) else unit
        for index, unit in enumerate(units)
    ]


def with_lists(units: Sequence[str]) -> list[str]:
    """A list's items are quoted together, with the unit that leads into them when it ends in
    a colon: "… heißt Metrik, wenn gilt: (i) Definitheit: … (ii) Symmetrie: … (iii)
    Dreiecksungleichung: …"; "a) f heißt Decktransformation … c) p heißt regulär, wenn …".

    An item alone names one condition of several, or one term of a definition the question
    asks about together. The items run while each marker follows the one before ("b)" after
    "a)", "(ii)" after "(i)"), a sentence or two of an item's own in between, and as long
    as the list fits in a quote; a list of one item, or one too long, stays as it is.
    """
    out: list[str] = []
    index = 0
    while index < len(units):
        marker = _list_marker(units[index])
        if marker is None:
            out.append(units[index])
            index += 1
            continue
        lead = out[-1] if out and out[-1].endswith(":") else None
        size = len(units[index]) + (len(lead) + 1 if lead else 0)
        last, items, at = index, 1, index + 1
        while at < len(units) and at - last <= LIST_ITEM_UNITS:
            if units[at] in units[at - 1]:
                break  # an item already joined to what follows it (``with_headings``)
            size += len(units[at]) + 1
            if size > MAX_QUOTE_CHARS:
                break
            following = _list_marker(units[at])
            if following is not None:
                if not _follows(marker, following):
                    break
                marker, last, items = following, at, items + 1
            at += 1
        if items < 2:
            out.append(units[index])
            index += 1
            continue
        joined = " ".join(units[index : last + 1])
        if lead is not None:
            out[-1] = f"{lead} {joined}"
        else:
            out.append(joined)
        index = last + 1
    return out


def with_headings(units: Sequence[str]) -> list[str]:
    """A heading is quoted with the statement it heads, a unit ending in a colon with what
    follows it: "Satz 2.1 (Eulersche Polyederformel) Sei P … gilt: … Dann ist χ(∂P ) = 2."

    A heading alone names the topic the question asks about and so scores high, but says
    nothing; joined to the sentence after it, it is an answer. A heading that no full sentence
    follows within a few units (a caption, a run of labels) stays alone.
    """
    out: list[str] = []
    for index, unit in enumerate(units):
        if not (_heading(unit) or unit.endswith(":")):
            out.append(unit)
            continue
        joined = unit
        for follower in units[index + 1 : index + 1 + HEADING_FOLLOWERS]:
            if len(joined) + len(follower) + 1 > MAX_QUOTE_CHARS:
                break
            joined = f"{joined} {follower}"
            if follower.endswith((".", "!", "?")):
                out.append(joined)
                break
        else:
            out.append(unit)
            continue
        if joined == unit or not joined.endswith((".", "!", "?")):
            out.append(unit)
    return out


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
            out.append(f"{header}{TABLE_ROW}{unit}")
            continue
        out.append(unit)
        if numbers == 0 and len(unit.split()) >= 3 and not _ends_sentence(unit):
            header = unit
        elif _ends_sentence(unit):
            header = None  # prose: no table here
    return out


def word_weight(word: str) -> float:
    """Numbers and identifiers say exactly what is asked; plain words less."""
    if any(ch.isdigit() for ch in word) or any(ch in word for ch in "_./:"):
        return 3.0
    return 1.5 if len(word) >= 8 else 1.0


def keyword_overlap(question: str, sentence: str, *, besides: str = "") -> float:
    """The weighted share of the question's content words found in the sentence (0..1).

    A word matches exactly, or (for less) by a shared start of at least 5 letters, so
    inflected forms count ("hausdorffsch" for "Hausdorff", "populations" for "population").
    With ``besides``, only words that text lacks count: what the sentence adds to it.
    """
    asked = set(content_words(question))
    if not asked:
        return 0.0
    present = set(words(sentence))
    known = set(words(besides))
    total = sum(word_weight(w) for w in asked)
    found = sum(
        word_weight(w) * match_strength(w, present) for w in asked if not match_strength(w, known)
    )
    return found / total


def shape_factor(text: str) -> float:
    """How much of its score a unit keeps for its shape: 1 for a statement, less for a
    heading, caption or index line, and for a sentence that asks a question."""
    if text.endswith("?"):
        return ASKING_FACTOR
    if _CAPTION.match(text) or _INDEX_ENTRY.search(text):
        return FRAGMENT_FACTOR
    # Words, not list markers: "(a) Trivialer Knoten (b) Kleeblattknoten …" is a run of labels.
    said = [word for word in text.split() if not _LIST_MARKER.match(f"{word} ")]
    if not _ends_sentence(text) and len(said) < FRAGMENT_WORDS and TABLE_ROW not in text:
        return FRAGMENT_FACTOR
    return 1.0


def definition_bonus(question: str, text: str) -> float:
    """What a sentence gains for the shape of answer the question asks for: a defining one
    when it asks what something is, one with a date when it asks when (or for a date)."""
    bonus = 0.0
    if _DEFINITION_QUESTION.search(question) and _DEFINING.search(text):
        bonus += DEFINITION_BONUS
    if _DATE_QUESTION.search(question) and _DATE.search(text):
        bonus += DEFINITION_BONUS
    return bonus


def score_candidates(
    question: str, found: Sequence[Candidate], embed: Embed, *, shown: int | None = None
) -> list[tuple[float, Candidate]]:
    """Every candidate with its score, best first; one from a source after the first
    ``shown`` keeps ``POOL_FACTOR`` of it (None: every source is shown).

    Embedding is most of the time before an answer's first words, so only the
    ``MAX_EMBEDDED`` candidates that could score best on their words and shape are embedded
    (a sentence sharing none of the question's words rarely wins on meaning alone); the rest
    score on their words only.
    """
    if not found:
        return []
    words_part = [
        (
            WORDS_WEIGHT * keyword_overlap(question, c.text) + definition_bonus(question, c.text),
            shape_factor(c.text) * (POOL_FACTOR if shown is not None and c.source > shown else 1),
        )
        for c in found
    ]
    ceiling = sorted(
        range(len(found)),
        key=lambda i: (MEANING_WEIGHT + words_part[i][0]) * words_part[i][1],
        reverse=True,
    )
    embedded = sorted(ceiling[:MAX_EMBEDDED])
    vectors = embed([question, *(found[i].text for i in embedded)])
    meaning = dict.fromkeys(range(len(found)), 0.0)
    for index, vector in zip(embedded, vectors[1:], strict=True):
        meaning[index] = MEANING_WEIGHT * max(0.0, _cosine(vectors[0], vector))
    scored = [
        ((meaning[i] + words_part[i][0]) * words_part[i][1], candidate)
        for i, candidate in enumerate(found)
    ]
    scored.sort(key=lambda pair: pair[0], reverse=True)
    return scored


def best_quotes(
    question: str, hits: Sequence[SearchHit], embed: Embed, *, shown: int | None = None
) -> list[Quote]:
    """The one or two passages to lead the answer with, best first (empty without hits);
    ``shown``: how many of ``hits`` the answer shows whatever it quotes (core.chat.pool)."""
    scored = score_candidates(question, candidates(hits), embed, shown=shown)
    if not scored:
        return []
    score_of = {candidate.text.casefold(): score for score, candidate in scored}
    return [
        Quote(
            text=_clip(text),
            source=candidate.source,
            page=candidate.hit.page,
            filename=candidate.hit.filename,
            score=round(score, 4),
        )
        for score, candidate, text in choose(question, scored, score_of)
    ]


def choose(
    question: str,
    scored: Sequence[tuple[float, Candidate]],
    score_of: dict[str, float],
) -> list[tuple[float, Candidate, str]]:
    """The best candidate, and a second one that nearly matches it, or that holds what the
    question asks and the first does not ("Was ist eine Retraktion, und wann nennt man …");
    each with the neighbouring sentence that belongs to it (``widened``)."""
    best_score, best = scored[0]
    first, taken = widened(best, best_score, score_of)
    chosen = [(best_score, best, first)]
    for score, candidate in scored[1:]:
        if len(chosen) >= MAX_QUOTES or score < best_score * COVERING_QUOTE_RATIO:
            break
        if _overlapping(candidate.text, first) or _shared_sentence(candidate.text, first):
            continue  # the same sentence with or without its heading or neighbour
        adds = keyword_overlap(question, candidate.text, besides=first)
        if score >= best_score * SECOND_QUOTE_RATIO or adds >= COVERING_SHARE:
            text, units = widened(candidate, score, score_of)
            if units & taken:  # its neighbour is in the first quote: quote it alone
                text, units = candidate.text, {(candidate.source, candidate.position)}
            chosen.append((score, candidate, text))
            taken |= units
    return chosen


def widened(
    candidate: Candidate, score: float, score_of: dict[str, float]
) -> tuple[str, set[tuple[int, int]]]:
    """The candidate with the sentence before or after it in its chunk, whichever scores
    better, when that one scores at least ``NEIGHBOUR_RATIO`` of it: a sentence often needs
    its neighbour ("Es gibt stetige, surjektive Abbildungen …" – "Ein Beispiel ist die …
    Hilbert-Kurve."), and the passage stays verbatim. Also the (source, position) of each
    unit it holds."""
    units, at = candidate.units, candidate.position
    best: tuple[float, int] | None = None
    for index in (at - 1, at + 1):
        if not 0 <= index < len(units) or _overlapping(units[index], candidate.text):
            continue
        if TABLE_ROW in units[index] or TABLE_ROW in candidate.text:
            continue  # a table row is its own answer; the next row is another country
        if _shared_sentence(units[index], candidate.text):
            continue  # a question joined to its answer overlaps the answer's own unit
        if len(units[index]) + len(candidate.text) + 1 > MAX_QUOTE_CHARS:
            continue
        neighbour = score_of.get(units[index].casefold(), 0.0)
        if neighbour >= score * NEIGHBOUR_RATIO and (best is None or neighbour > best[0]):
            best = (neighbour, index)
    if best is None:
        return candidate.text, {(candidate.source, at)}
    index = best[1]
    text = f"{units[index]} {candidate.text}" if index < at else f"{candidate.text} {units[index]}"
    if _repeats(text):  # units that overlap in part: never a quote that says a thing twice
        return candidate.text, {(candidate.source, at)}
    return text, {(candidate.source, at), (candidate.source, index)}


def _repeats(text: str) -> bool:
    """Whether a sentence or clause (to a colon) of ``text`` comes twice in it."""
    parts = [" ".join(p.split()).casefold() for p in _CLAUSE_END.split(text)]
    said = [p for p in parts if len(p) >= MIN_SENTENCE_CHARS]
    return len(said) != len(set(said))


def _shared_sentence(a: str, b: str) -> bool:
    """Whether a sentence of one is in the other: a heading joined to a list's first item
    and the list itself, a question joined to its answer and the answer."""
    for one, other in ((a, b), (b, a)):
        within = other.casefold()
        if any(len(part) >= MIN_SENTENCE_CHARS and part in within for part in _parts(one)):
            return True
    return False


def _parts(text: str) -> list[str]:
    return [part.strip().casefold() for part in _SENTENCE_END.split(text) if part.strip()]


def _overlapping(a: str, b: str) -> bool:
    a, b = a.casefold(), b.casefold()
    return a in b or b in a


def matches(word: str, present: set[str]) -> bool:
    """``word`` is in ``present``, or an inflected form of it (numbers must match exactly)."""
    return match_strength(word, present) > 0


def match_strength(word: str, present: set[str]) -> float:
    """1 when ``word`` is in ``present``, less for an inflected form of it, else 0."""
    if word in present:
        return 1.0
    if len(word) < 5 or word_weight(word) >= 3.0:  # numbers and identifiers match exactly
        return 0.0
    stem = word[:5]
    inflected = any(len(other) >= 5 and other[:5] == stem for other in present)
    # A compound ends with the word ("Wintersemester" for "Semester"): German joins words.
    compound = len(word) >= COMPOUND_TAIL_CHARS and any(
        len(other) > len(word) and other.endswith(word) for other in present
    )
    return STEM_MATCH_WEIGHT if inflected or compound else 0.0


def _list_marker(text: str) -> tuple[str, int] | None:
    """An item's marker as (style, number): "a)" is ("a)", 1), "(ii)" is ("(i)", 2)."""
    found = _LIST_MARKER.match(text)
    if found is None:
        return None
    opening, label = found.group(1), found.group(2)
    if label.isdigit():
        return f"{opening}1)", int(label)
    if set(label) <= set("ivx") and (label != "i" or opening):  # "i)" alone: the letter i
        return f"{opening}i)", _roman(label)
    if len(label) == 1:
        return f"{opening}a)", ord(label) - ord("a") + 1
    return None


def _follows(before: tuple[str, int], after: tuple[str, int]) -> bool:
    return after[0] == before[0] and after[1] == before[1] + 1


def _roman(label: str) -> int:
    values = {"i": 1, "v": 5, "x": 10}
    total = 0
    for index, letter in enumerate(label):
        value = values[letter]
        following = values[label[index + 1]] if index + 1 < len(label) else 0
        total += -value if value < following else value
    return total


def _heading(text: str) -> bool:
    """A short line that ends no sentence and is no table row: a title, "Definition 20"."""
    numbers = sum(1 for word in text.split() if _NUMBER.fullmatch(word.strip(",;()")))
    return len(text.split()) <= HEADING_WORDS and not _ends_sentence(text) and numbers < 2


def _abbreviated(text: str) -> bool:
    """Whether ``text`` ends with an abbreviation's dot rather than a sentence's."""
    last = text.rsplit(" ", 1)[-1].casefold()
    # "31. Dezember", "0. Auflage": a day or an ordinal, not a sentence's end.
    return len(last) <= 2 or last in _ABBREVIATIONS or bool(_ORDINAL.fullmatch(last))


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
