"""Composing one answer from its plan: quotes, checked model text, or both, as text pieces.

``AnswerComposer.pieces`` yields what the ``chunk`` messages carry; afterwards ``outcome``
says how confident the answer is and what the filter removed, for the ``complete`` message.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field

from core.chat import prompt
from core.chat.guard import AnswerFilter, FilterReport
from core.chat.modes import Confidence, Plan
from core.chat.quotes import HIGH_CONFIDENCE, Quote
from core.chat.tables import ChatMessage
from core.llm import ChatTurn
from core.search.vectorstore import SearchHit

# The embedded model frames the quotes in a sentence or answers in a few: no room to wander.
FRAMING_MAX_TOKENS = 48
FRAMING_MAX_CHARS = 300
EMBEDDED_MAX_TOKENS = 128
EMBEDDED_MAX_CHARS = 600
QUOTE_PIECE_WORDS = 8  # quotes stream in pieces of a few words, like a model's answer

WEAK_LEAD = "The documents may not answer this directly; the closest passage is:"
QUOTES_AFTER_MODEL = "From the documents:"

# (turns, max_tokens) → the model's pieces; the answer service's timeout-guarded stream.
Generate = Callable[[list[ChatTurn], int], AsyncGenerator[str, None]]


@dataclass
class Outcome:
    plan: Plan
    quotes: list[Quote]
    confidence: Confidence | None  # None: no documents were searched
    confidence_score: float | None
    report: FilterReport = field(default_factory=FilterReport)


def confidence_of(
    quotes: Sequence[Quote], *, searched: bool
) -> tuple[Confidence | None, float | None]:
    """How well the best passage answers the question, and its score."""
    if not searched:
        return None, None
    if not quotes:
        return "none", None
    best = quotes[0].score
    return ("high" if best >= HIGH_CONFIDENCE else "low"), best


class AnswerComposer:
    def __init__(
        self,
        *,
        question: str,
        plan: Plan,
        hits: Sequence[SearchHit],
        quotes: Sequence[Quote],
        history: Sequence[ChatMessage],
        generate: Generate,
        max_tokens: int,
    ) -> None:
        self._question = question
        self._hits = list(hits)
        self._quotes = list(quotes)
        self._history = list(history)
        self._generate = generate
        self._max_tokens = max_tokens
        confidence, score = confidence_of(quotes, searched=plan is not Plan.PLAIN)
        self.outcome = Outcome(
            plan=plan, quotes=self._quotes, confidence=confidence, confidence_score=score
        )

    async def pieces(self) -> AsyncIterator[str]:
        plan = self.outcome.plan
        if plan is Plan.NOT_FOUND:
            yield prompt.NO_RELEVANT_SOURCES
            return
        if plan is Plan.PLAIN:
            turns = prompt.plain_turns(self._question, self._history)
            async for piece in self._filtered(turns, self._max_tokens, self._filter(None, None)):
                yield piece
        elif plan is Plan.MODEL:
            turns = prompt.documents_turns(self._question, self._hits, self._history)
            async for piece in self._filtered(turns, self._max_tokens, self._filter(None, None)):
                yield piece
        elif plan is Plan.QUOTES:
            for piece in self._quote_pieces():
                yield piece
        elif plan is Plan.QUOTES_THEN_FRAMING:
            for piece in self._quote_pieces():
                yield piece
            turns = prompt.framing_turns(self._question, self._quotes)
            tokens = min(self._max_tokens, FRAMING_MAX_TOKENS)
            checks = self._filter(self._grounding(), FRAMING_MAX_CHARS)
            first = True
            async for piece in self._filtered(turns, tokens, checks):
                yield ("\n\n" + piece) if first else piece
                first = False
        elif plan is Plan.MODEL_THEN_QUOTES:
            turns = prompt.documents_turns(self._question, self._hits, self._history)
            tokens = min(self._max_tokens, EMBEDDED_MAX_TOKENS)
            checks = self._filter(
                self._grounding(), EMBEDDED_MAX_CHARS, quoted=[q.text for q in self._quotes]
            )
            wrote = False
            async for piece in self._filtered(turns, tokens, checks):
                wrote = True
                yield piece
            if wrote:
                yield f"\n\n{QUOTES_AFTER_MODEL}\n\n"
            for piece in self._quote_pieces():
                yield piece

    def _filter(
        self, grounding: list[str] | None, max_chars: int | None, quoted: Sequence[str] = ()
    ) -> AnswerFilter:
        checks = AnswerFilter(
            source_count=len(self._hits), max_chars=max_chars, grounding=grounding, quoted=quoted
        )
        self.outcome.report = checks.report
        return checks

    def _grounding(self) -> list[str]:
        return [" ".join(hit.text.split()) for hit in self._hits]

    async def _filtered(
        self, turns: list[ChatTurn], max_tokens: int, checks: AnswerFilter
    ) -> AsyncIterator[str]:
        pieces = self._generate(turns, max_tokens)
        # Closing the stream early (the filter cut the answer) stops the generation too.
        async with contextlib.aclosing(pieces):
            async for piece in pieces:
                shown = checks.feed(piece)
                if shown:
                    yield shown
                if checks.done:
                    return
        rest = checks.finish()
        if rest:
            yield rest

    def _quote_pieces(self) -> list[str]:
        lines = [f"> {quote.marked}" for quote in self._quotes]
        text = "\n\n".join(lines)
        if self.outcome.confidence == "low":
            text = f"{WEAK_LEAD}\n\n{text}"
        words = text.split(" ")
        return [
            " ".join(words[i : i + QUOTE_PIECE_WORDS]) + " "
            for i in range(0, len(words), QUOTE_PIECE_WORDS)
        ]
