"""Answer latency for /metrics: from the question to its first ``chunk`` and to ``complete``.

Wraps the answer's events without changing them; an answer that fails or is cancelled before
an event is simply not observed for it.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncGenerator

from core.chat.protocol import AnswerEvent, ChunkEvent, CompleteEvent
from core.observability.metrics import ANSWER_COMPLETE_SECONDS, ANSWER_FIRST_CHUNK_SECONDS


async def timed(events: AsyncGenerator[AnswerEvent, None]) -> AsyncGenerator[AnswerEvent, None]:
    asked = time.perf_counter()
    first_chunk_seen = False
    async with contextlib.aclosing(events):
        async for event in events:
            if isinstance(event, ChunkEvent) and not first_chunk_seen:
                first_chunk_seen = True
                ANSWER_FIRST_CHUNK_SECONDS.observe(time.perf_counter() - asked)
            elif isinstance(event, CompleteEvent):
                ANSWER_COMPLETE_SECONDS.observe(time.perf_counter() - asked)
            yield event
