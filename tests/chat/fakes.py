"""Chat models that fail on purpose, for the failure paths the real model cannot be made to take.

The embedded SmolLM2 model answers whenever it is asked, so a failure in the middle of an
answer (a crashed server, a dropped connection) can only be staged: ``BrokenModel`` streams two
real-looking pieces and then raises the typed error a backend raises when that happens.
Everything around it (the answer service, the relay, sockets, SSE) is the real code.
"""

from __future__ import annotations

import asyncio
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
        yield "Partial "
        yield "answer"
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
            while True:
                yield "tick "
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
    """Streams ``pieces`` numbered words, one every ``delay`` seconds: an answer long enough
    to drop a socket in the middle of, with a text known in advance."""

    name = "slow"
    description = "Streams numbered words slowly."

    def __init__(self, pieces: int = 40, delay: float = 0.03) -> None:
        self.pieces = pieces
        self.delay = delay

    def text(self) -> str:
        return "".join(f"w{index} " for index in range(self.pieces))

    async def stream(self, turns: list[ChatTurn], *, max_tokens: int) -> AsyncIterator[str]:
        for index in range(self.pieces):
            await asyncio.sleep(self.delay)
            yield f"w{index} "


class FailingModel(FakeModel):
    """Available by its probe, but fails before the first piece of every answer."""

    name = "failing"
    description = "Fails at once, like a server that answers its probe but not a question."

    async def stream(self, turns: list[ChatTurn], *, max_tokens: int) -> AsyncIterator[str]:
        raise GenerationError("The model server refused the question.")
        yield ""  # an async generator, like every backend's stream
