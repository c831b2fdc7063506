"""One WebSocket client of a chat session: its frames within the limits, each handled or
answered with a typed ``error`` message, never a dropped socket (docs/chat.md).

The route (``api/routes/chat.py``) accepts, authenticates and connects the socket, then hands
every frame to ``SocketClient.receive``.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from core.chat.client_limits import (
    CLOSE_MESSAGE_TOO_BIG,
    CLOSE_RATE_LIMITED,
    FrameGate,
    MessageTooLargeError,
    RateLimitedError,
)
from core.chat.connections import Connection
from core.chat.protocol import (
    ChatFrame,
    PingFrame,
    PongEvent,
    TypingFrame,
    WatchTasksFrame,
    error_event,
    parse_frame,
)
from core.chat.relay import AnswerRelay
from core.chat.service import ChatService
from core.errors import AppError, ConflictError, InvalidInputError

log = logging.getLogger("docchat.chat")


class SocketClient:
    """One WebSocket client: every frame gets handled or a typed error, never a closed socket."""

    def __init__(self, chat: ChatService, connection: Connection, *, owner: str) -> None:
        self._chat = chat
        self._connection = connection
        self._owner = owner
        self._answering: asyncio.Task[None] | None = None
        settings = chat.resources.settings
        self._gate = FrameGate(
            max_bytes=settings.ws_max_message_bytes,
            rate=settings.ws_rate_limit_per_second,
            burst=settings.ws_rate_limit_burst,
        )

    async def send(self, payload: dict[str, Any]) -> None:
        await self._chat.connections.send_personal_message(self._connection, payload)

    async def receive(self, message: Any) -> bool:
        """Handle one frame within the limits; ``False`` once the client must be dropped."""
        session_id = self._connection.session_id
        text, raw = message.get("text"), message.get("bytes")
        size = len(text.encode("utf-8", "replace")) if text is not None else len(raw or b"")
        try:
            self._gate.check_size(size)
            self._gate.admit()
        except MessageTooLargeError as exc:
            await self._close(exc, CLOSE_MESSAGE_TOO_BIG, "Message too big.")
            return False
        except RateLimitedError as exc:
            if self._gate.persistently_over:
                await self._close(exc, CLOSE_RATE_LIMITED, "Rate limited: too many messages.")
                return False
            await self.send(error_event(exc, session_id=session_id))
            return True
        await self.handle(message)
        return True

    async def _close(self, exc: AppError, code: int, reason: str) -> None:
        # The typed error first (best effort: it waits behind what is queued), then the code.
        await self.send(error_event(exc, session_id=self._connection.session_id))
        await self._chat.connections.close(self._connection, code=code, reason=reason)

    async def handle(self, message: Any) -> None:
        try:
            await self._dispatch(message)
        except AppError as exc:
            await self.send(error_event(exc, session_id=self._connection.session_id))
        except Exception:
            log.exception("handling a frame in session %s failed", self._connection.session_id)
            await self.send(
                error_event(
                    AppError("The message could not be handled; the error has been logged."),
                    session_id=self._connection.session_id,
                )
            )

    async def _dispatch(self, message: Any) -> None:
        text = message.get("text")
        if text is None:
            raw = message.get("bytes") or b""
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise InvalidInputError(
                    "Binary frames must be UTF-8 JSON.", error_code="invalid_json"
                ) from exc
        frame = parse_frame(text)
        session_id = self._connection.session_id
        if isinstance(frame, TypingFrame):
            await self._chat.typing.update(
                session_id=session_id, user_id=frame.user_id, is_typing=frame.is_typing
            )
        elif isinstance(frame, ChatFrame):
            await self._ask(frame)
        elif isinstance(frame, WatchTasksFrame):
            await self._chat.task_watchers.watch(
                session_id, frame.task_ids, owner=self._owner, requester=self._connection
            )
        elif isinstance(frame, PingFrame):
            await self.send(PongEvent().payload())
        # A pong needs nothing: receiving it was the point.

    async def _ask(self, frame: ChatFrame) -> None:
        if self._answering is not None and not self._answering.done():
            raise ConflictError(
                "The answer to your previous question is still streaming; ask again after "
                "its 'complete' or 'error' message.",
                error_code="answer_in_progress",
            )
        session_id = self._connection.session_id
        question = await self._chat.answers.prepare(
            session_id=session_id,
            owner=self._owner,
            question=frame.question,
            model=frame.model,
            search_mode=frame.search_mode,
            user_id=frame.user_id,
            retrieval=frame.retrieval,
            mode=frame.mode,
        )
        if frame.user_id is not None:  # asking ends typing
            await self._chat.typing.update(
                session_id=session_id, user_id=frame.user_id, is_typing=False
            )
        relay = AnswerRelay(self._chat, question)

        async def answer() -> None:
            # The relay broadcasts every event, this client's included.
            async for _ in relay.events():
                pass

        self._answering = self._chat.spawn(answer(), session_id=session_id)
