"""What a model writes is let through one sentence at a time, and only if it earns its place.

SmolLM2-135M, given a manual page, writes "The answer is:" until the token limit, counts
"1: 1, 2: 2, 3: 3 …", or states a number the page does not hold. ``AnswerFilter`` takes the
model's pieces and returns the text that may be shown: it ends the answer at a stop sequence,
at the first repeated sentence or line, at an n-gram loop, or at the length cap; it removes
citation markers that name no source; and, for a model that cannot be trusted with facts (the
embedded one), it drops each sentence whose words or numbers are not in the sources.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from core.chat.quotes import matches
from core.search.stopwords import content_words, words

# Where a small chat model starts writing the next turn or the prompt back.
STOP_SEQUENCES = (
    "<|im_end|>",
    "<|im_start|>",
    "<|endoftext|>",
    "\nQuestion:",
    "\nSources:",
    "\nUser:",
    "\nuser:",
    "\n\n\n",
)
# A sentence (or line) ends at . ! ? ; or a line break. Not at a colon: "The answer is:"
# repeated on one line, or "1: 1, 2: 2, …", is then one unit whose loop shows within it.
_UNIT_END = re.compile(r"((?<=[.!?;])\s+|\n+)")
# Text without an end this long is judged as it is, rather than held back without limit.
MAX_UNIT_CHARS = 400
# Words small models put before an answer that carry nothing: removed from a sentence's start.
_FILLER_LEAD = re.compile(
    r"^(?:(?:the\s+)?answer(?:\s+is)?|according\s+to\s+(?:the\s+)?"
    r"(?:sources?|documents?|passages?)(?:\s*\[\d+\])?)\s*[:,]\s*",
    re.IGNORECASE,
)
_MARKERS = re.compile(r"\[(\d+(?:\s*,\s*\d+)*)\]")
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
NGRAM = 3
NGRAM_LOOP_SHARE = 0.5  # a sentence half made of word triples already written is a loop
# A sentence of at least this many words, nearly all numbers, is counting, not answering.
COUNTING_WORDS = 8
COUNTING_SHARE = 0.8
GROUNDED_SHARE = 0.6  # of a generated sentence's content words, at least this many in a source


@dataclass
class FilterReport:
    """What the filter removed, for the ``complete`` message and the logs."""

    stopped: str | None = None  # why the answer was cut: stop_sequence, repetition, length
    dropped_sentences: int = 0  # generated sentences not found in the sources
    invalid_citations: list[int] = field(default_factory=list)


class AnswerFilter:
    """Feed it the model's pieces; it returns what may be shown, sentence by sentence."""

    def __init__(
        self,
        *,
        source_count: int,
        max_chars: int | None,
        grounding: Sequence[str] | None = None,
        quoted: Sequence[str] = (),
    ) -> None:
        """``grounding``: the source texts every kept sentence must be found in, or ``None``
        to keep sentences a model wrote in its own words (a strong model's). ``max_chars``:
        the longest answer, or ``None`` where the model's own token limit is enough.
        ``quoted``: the quotes shown after the model's text; a sentence of theirs that the
        model copies is left to them (they carry its citation) rather than said twice."""
        self._sources = source_count
        self._quoted = {_unit_key(unit) for text in quoted for unit in _UNIT_END.split(text)}
        self._max_chars = max_chars
        self._grounding = list(grounding) if grounding is not None else None
        self._pending = ""
        self._shown = 0
        self._seen_units: set[str] = set()
        self._ngrams: set[tuple[str, ...]] = set()
        self.report = FilterReport()

    @property
    def done(self) -> bool:
        """Whether the answer was cut: read no more from the model."""
        return self.report.stopped is not None

    def feed(self, piece: str) -> str:
        if self.done:
            return ""
        self._pending += piece
        for stop in STOP_SEQUENCES:
            at = self._pending.find(stop)
            if at >= 0:
                self._pending = self._pending[:at]
                self.report.stopped = "stop_sequence"
                return self._release(final=True)
        return self._release(final=False)

    def finish(self) -> str:
        """The rest once the model has ended."""
        if self.done:
            return ""
        return self._release(final=True)

    def _release(self, *, final: bool) -> str:
        # Units with the separator that followed each, so line breaks survive the filter.
        pieces = _UNIT_END.split(self._pending)
        units = list(zip(pieces[::2], [*pieces[1::2], ""], strict=True))
        if not final and len(units[-1][0]) <= MAX_UNIT_CHARS:  # the last may still grow
            last, _ = units.pop()
            self._pending = last
        else:
            self._pending = ""
        shown: list[str] = []
        for unit, separator in units:
            if self.report.stopped not in (None, "stop_sequence"):
                break
            kept = self._accept(unit.strip())
            if kept:
                shown.append(kept + ("\n" if "\n" in separator else " "))
        return "".join(shown)

    def _accept(self, unit: str) -> str | None:
        unit = _FILLER_LEAD.sub("", unit)
        if not unit:
            return None
        unit = self._fix_markers(unit)
        if not unit.strip(" []"):
            return None
        key = _unit_key(unit)
        if not key:
            return None
        if key in self._quoted:
            return None
        if key in self._seen_units:
            self.report.stopped = "repetition"
            return None
        if self._grounding is not None and not self._grounded(unit):
            self.report.dropped_sentences += 1
            return None
        tokens = key.split()
        grams = [tuple(tokens[i : i + NGRAM]) for i in range(len(tokens) - NGRAM + 1)]
        repeated = sum(1 for gram in grams if gram in self._ngrams)
        within = len(grams) - len(set(grams))
        if grams and (repeated + within) / len(grams) >= NGRAM_LOOP_SHARE:
            self.report.stopped = "repetition"
            return None
        numbers = sum(1 for token in tokens if _NUMBER.fullmatch(token))
        if len(tokens) >= COUNTING_WORDS and numbers / len(tokens) >= COUNTING_SHARE:
            self.report.stopped = "repetition"
            return None
        if self._max_chars is not None and self._shown + len(unit) > self._max_chars:
            self.report.stopped = "length"
            return None
        self._seen_units.add(key)
        self._ngrams.update(grams)
        self._shown += len(unit) + 1
        return unit

    def _fix_markers(self, unit: str) -> str:
        def keep_valid(match: re.Match[str]) -> str:
            numbers = [int(n) for n in re.split(r"\s*,\s*", match.group(1))]
            valid = [n for n in numbers if 1 <= n <= self._sources]
            self.report.invalid_citations.extend(n for n in numbers if n not in valid)
            return f"[{', '.join(map(str, valid))}]" if valid else ""

        fixed = _MARKERS.sub(keep_valid, unit)
        return re.sub(r"\s+([.,;:!?])", r"\1", re.sub(r"  +", " ", fixed)).strip()

    def _grounded(self, unit: str) -> bool:
        """One source holds every number of the sentence and most of its other words."""
        assert self._grounding is not None
        text = _MARKERS.sub("", unit)
        numbers = _NUMBER.findall(text)
        content = [w for w in content_words(text) if not _NUMBER.fullmatch(w)]
        if not content:  # a bare number or symbol says nothing the quotes did not
            return False
        for source in self._grounding:
            if any(number not in source for number in numbers):
                continue
            present = set(words(source))
            found = sum(1 for word in content if matches(word, present))
            if found / len(content) >= GROUNDED_SHARE:
                return True
        return False


def _unit_key(unit: str) -> str:
    """A sentence as compared for repeats: its words, without citation markers."""
    return " ".join(words(_MARKERS.sub("", unit)))


def markers(text: str) -> set[int]:
    """The citation numbers an answer uses."""
    return {int(n) for match in _MARKERS.findall(text) for n in re.split(r"\s*,\s*", match)}
