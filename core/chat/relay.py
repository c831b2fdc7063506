"""The answer relay: one answer's events shown to every client of its session as they come.

Both the WebSocket (``core.chat.socket_client``) and the REST/SSE answers (``api/routes/chat.py``)
run answers through it, so every client of a session sees every answer, however it was asked.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

from core.chat import answer_timing
from core.chat.answers import Question
from core.chat.protocol import MessageEvent, error_event
from core.chat.service import ChatService
from core.errors import AppError

log = logging.getLogger("docchat.chat")


class AnswerRelay:
    """Runs one answer, shows each event to every client of the session and yields it.

    A failure ends the events with an ``error`` payload (shown to the session too, since its
    clients were watching the answer) and is kept in ``error``; no one is left waiting.
    """

    def __init__(self, chat: ChatService, question: Question) -> None:
        self._chat = chat
        self._question = question
        self.error: AppError | None = None

    async def events(self) -> AsyncIterator[dict[str, Any]]:
        session_id = self._question.session_id
        reply_to: int | None = None
        try:
            # Timed to the first chunk and to complete (core/observability metrics).
            answer = answer_timing.timed(self._chat.answers.run(self._question))
            async with contextlib.aclosing(answer) as events:
                async for event in events:
                    if isinstance(event, MessageEvent):
                        reply_to = event.message.id
                    payload = event.payload()
                    await self._chat.connections.broadcast_to_session(session_id, payload)
                    yield payload
            return
        except AppError as exc:
            self.error = exc
        except Exception:
            log.exception("answer in session %s failed", session_id)
            self.error = AppError("The answer failed unexpectedly; the error has been logged.")
        except (asyncio.CancelledError, GeneratorExit):
            # The SSE client left or the server is stopping: the session's other clients
            # were watching this answer, so tell them it ended (best effort) before going.
            if reply_to is not None:
                stopped = AppError(
                    "The answer was stopped before it finished.", error_code="answer_cancelled"
                )
                with contextlib.suppress(Exception):
                    await self._chat.connections.broadcast_to_session(
                        session_id, error_event(stopped, session_id=session_id, reply_to=reply_to)
                    )
            raise
        payload = error_event(self.error, session_id=session_id, reply_to=reply_to)
        await self._chat.connections.broadcast_to_session(session_id, payload)
        yield payload
