"""Chat sessions and their history as the API offers them: create, list, read, delete.

Deleting is the one multi-step operation: the session's answers in progress are stopped, the
rows removed, and its WebSocket clients told (``session_deleted``) and closed (4404).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence

from sqlalchemy import Engine

from core.chat import store
from core.chat.answers import session_not_found
from core.chat.connections import CLOSE_SESSION_NOT_FOUND, ConnectionManager
from core.chat.protocol import SessionDeletedEvent
from core.chat.tables import ChatMessage, ChatSession


class Sessions:
    def __init__(
        self,
        engine: Engine,
        connections: ConnectionManager,
        cancel_answers: Callable[[int], Awaitable[None]],
    ) -> None:
        self._engine = engine
        self._connections = connections
        self._cancel_answers = cancel_answers

    async def create(self, *, owner: str, title: str) -> ChatSession:
        return await asyncio.to_thread(store.create_session, self._engine, owner=owner, title=title)

    async def list(self, *, owner: str, limit: int, offset: int) -> Sequence[ChatSession]:
        return await asyncio.to_thread(
            store.list_sessions, self._engine, owner=owner, limit=limit, offset=offset
        )

    async def get(self, session_id: int, *, owner: str) -> ChatSession:
        """The owner's session, or 404 ``session_not_found``."""
        row = await asyncio.to_thread(store.get_session, self._engine, session_id, owner=owner)
        if row is None:
            raise session_not_found(session_id)
        return row

    async def messages(
        self, session_id: int, *, owner: str, limit: int | None
    ) -> Sequence[ChatMessage]:
        await self.get(session_id, owner=owner)
        return await asyncio.to_thread(store.list_messages, self._engine, session_id, limit=limit)

    async def delete(self, session_id: int, *, owner: str) -> None:
        await self.get(session_id, owner=owner)
        await self._cancel_answers(session_id)
        deleted = await asyncio.to_thread(
            store.delete_session, self._engine, session_id, owner=owner
        )
        if not deleted:  # deleted meanwhile by another request
            raise session_not_found(session_id)
        event = SessionDeletedEvent(session_id=session_id)
        await self._connections.broadcast_to_session(session_id, event.payload())
        await self._connections.close_session(
            session_id, code=CLOSE_SESSION_NOT_FOUND, reason="The chat session was deleted."
        )
