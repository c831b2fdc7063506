"""Chat models that fail on purpose, for the failure paths the real model cannot be made to take.

The embedded SmolLM2 model answers whenever it is asked, so a failure in the middle of an
answer (a crashed server, a dropped connection) can only be staged: ``BrokenModel`` streams two
real-looking pieces and then raises the typed error a backend raises when that happens.
Everything around it (the answer service, the relay, sockets, SSE) is the real code.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator

from core.llm import ChatTurn, GenerationError


class FakeModel:
    """Always available, nothing to close: what the fakes below share."""

    backend = "test"

    async def available(self) -> bool:
        return True

    async def aclose(self) -> None:
        return None


class BrokenModel(FakeModel):
    name = "broken"
    description = "Streams two pieces, then fails like a crashed model server."

    def __init__(self) -> None:
        self.calls = 0

    async def stream(self, turns: list[ChatTurn], *, max_tokens: int) -> AsyncIterator[str]:
        self.calls += 1
        yield "A partial answer. "
        yield "Then more. "
        raise GenerationError("The model server crashed in the middle of the answer.")


class EndlessModel(FakeModel):
    """Streams until it is stopped, like a long answer; records that it was stopped."""

    name = "endless"
    description = "Streams until the caller stops reading."

    def __init__(self) -> None:
        self.running = 0  # generations in progress

    async def stream(self, turns: list[ChatTurn], *, max_tokens: int) -> AsyncIterator[str]:
        self.running += 1
        try:
            # Numbered ticks, sentence by sentence: a long answer, not a loop the guard cuts.
            for count in itertools.count(1):
                yield f"Tick {count}. "
                await asyncio.sleep(0.02)
        finally:
            self.running -= 1


class QuickModel(FakeModel):
    """Answers at once with one short piece: for tests about who sees what, not about text."""

    name = "quick"
    description = "Answers 'ok' at once."

    async def stream(self, turns: list[ChatTurn], *, max_tokens: int) -> AsyncIterator[str]:
        yield "ok"


class QuotingModel(FakeModel):
    """Answers with the first words of the last user turn: fast and deterministic."""

    name = "quoting"
    description = "Quotes the prompt back."

    async def stream(self, turns: list[ChatTurn], *, max_tokens: int) -> AsyncIterator[str]:
        for word in turns[-1].content.split()[:8]:
            yield word + " "


class SlowModel(FakeModel):
    """Streams ``pieces`` numbered one-word sentences, one every ``delay`` seconds: an answer
    long enough to drop a socket in the middle of, with a text known in advance."""

    name = "slow"
    description = "Streams numbered words slowly."

    def __init__(self, pieces: int = 40, delay: float = 0.03) -> None:
        self.pieces = pieces
        self.delay = delay

    def text(self) -> str:
        return "".join(self._piece(index) for index in range(self.pieces))

    async def stream(self, turns: list[ChatTurn], *, max_tokens: int) -> AsyncIterator[str]:
        for index in range(self.pieces):
            await asyncio.sleep(self.delay)
            yield self._piece(index)

    @staticmethod
    def _piece(index: int) -> str:
        # A sentence a piece: the answer filter (core/chat/guard.py) lets a model's text
        # through a sentence at a time, and these share no words, so none reads as a loop.
        return f"w{index}. "


class FailingModel(FakeModel):
    """Available by its probe, but fails before the first piece of every answer."""

    name = "failing"
    description = "Fails at once, like a server that answers its probe but not a question."

    async def stream(self, turns: list[ChatTurn], *, max_tokens: int) -> AsyncIterator[str]:
        raise GenerationError("The model server refused the question.")
        yield ""  # an async generator, like every backend's stream


class LoopingModel(FakeModel):
    """SmolLM2's worst habit, on cue: "The answer is:" until the token limit, then a count.

    Its backend is the embedded one's, so the service treats it as the embedded model (whose
    real output cannot be made to loop on demand); it records how many pieces were read.
    """

    name = "looping"
    backend = "llama_cpp"
    description = "Repeats itself until it is stopped."

    def __init__(self) -> None:
        self.calls = 0
        self.pieces_read = 0

    async def stream(self, turns: list[ChatTurn], *, max_tokens: int) -> AsyncIterator[str]:
        self.calls += 1
        for _ in range(max_tokens):
            self.pieces_read += 1
            yield "The answer is: "
        yield "1: 1, 2: 2, 3: 3, 4: 4, 5: 5, 6: 6."


class CitingModel(FakeModel):
    """A strong model (Ollama, OpenAI-compatible) that cites: one marker right, two wrong."""

    name = "citing"
    backend = "ollama"
    description = "Writes a cited answer with one valid and two invalid markers."

    def __init__(self) -> None:
        self.calls = 0
        self.last_turns: list[ChatTurn] = []

    async def stream(self, turns: list[ChatTurn], *, max_tokens: int) -> AsyncIterator[str]:
        self.calls += 1
        self.last_turns = turns
        for piece in ("Vienna is the capital ", "of Austria [1]. ", "It is large [7]", "[0].\n"):
            yield piece
