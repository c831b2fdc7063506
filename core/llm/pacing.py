"""A model's pieces with a limit on silence: a model that sends nothing for too long fails.

The limit is ``asyncio.timeout``, never ``asyncio.wait_for``. On Python 3.11 ``wait_for`` runs
the awaited step as a task of its own and, when a cancellation arrives in the same loop
iteration as that step's result, returns the result and drops the cancellation. A streaming
model produces results all the time, so an answer cancelled that way streamed on for ever (a
deleted session's answer did, and the delete waited on it).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator

from core.llm.errors import GenerationError


async def paced(
    pieces: AsyncIterator[str], *, model: str, timeout: float
) -> AsyncGenerator[str, None]:
    """``pieces`` that are not empty; ``GenerationError`` when ``timeout`` seconds pass without
    one. ``pieces`` is closed however this ends."""
    try:
        while True:
            try:
                async with asyncio.timeout(timeout):
                    piece = await anext(pieces)
            except StopAsyncIteration:
                return
            except TimeoutError as exc:
                raise GenerationError(
                    f"The model {model!r} sent nothing for {timeout:g} s; "
                    "the answer was abandoned.",
                    details={"model": model, "timeout_seconds": timeout},
                ) from exc
            if piece:
                yield piece
    finally:
        close = getattr(pieces, "aclose", None)
        if close is not None:
            await close()
