"""The silence limit on a model's pieces (core/llm/pacing.py), with a real event loop and a
hand-driven source: each piece comes when the test releases it, so the moments that matter
(a piece ready in the very iteration a cancellation arrives) are made exactly, not hoped for.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator

import pytest

from core.llm import GenerationError
from core.llm.pacing import paced


class Source:
    """Yields one piece each time ``release`` is called; records that it was closed."""

    def __init__(self) -> None:
        self.gate: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self.waiting = asyncio.Event()
        self.closed = False

    def release(self, piece: str) -> None:
        self.gate.set_result(piece)

    async def pieces(self) -> AsyncGenerator[str, None]:
        try:
            while True:
                self.waiting.set()
                piece = await self.gate
                self.waiting.clear()
                self.gate = asyncio.get_running_loop().create_future()
                yield piece
        finally:
            self.closed = True


async def test_a_cancellation_that_meets_a_ready_piece_still_stops_the_stream() -> None:
    source, seen = Source(), []

    async def read() -> None:
        async for piece in paced(source.pieces(), model="m", timeout=30):
            seen.append(piece)

    reader = asyncio.create_task(read())
    await source.waiting.wait()
    # The piece and the cancellation arrive in one loop iteration. asyncio.wait_for on 3.11
    # returned the piece here and dropped the cancellation, and the reader read on for ever.
    source.release("first")
    reader.cancel()
    # asyncio.wait neither cancels nor is cancelled by a limit: it only says whether it ended.
    await asyncio.wait({reader}, timeout=5)
    assert reader.cancelled(), f"still reading after the cancellation; read {seen}"
    assert source.closed


async def test_a_silent_model_fails_with_its_name_and_the_limit_and_is_closed() -> None:
    source = Source()
    pieces = paced(source.pieces(), model="slowpoke", timeout=0.05)
    source.release("only")
    assert await anext(pieces) == "only"
    with pytest.raises(GenerationError) as failed:
        await anext(pieces)
    assert failed.value.error_code == "llm_generation_failed"
    assert failed.value.details == {"model": "slowpoke", "timeout_seconds": 0.05}
    assert source.closed


async def test_empty_pieces_are_skipped() -> None:
    async def pieces() -> AsyncGenerator[str, None]:
        for piece in ("a", "", "b", ""):
            yield piece

    assert [piece async for piece in paced(pieces(), model="m", timeout=5)] == ["a", "b"]
