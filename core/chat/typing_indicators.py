"""Who is typing in a session: persisted, broadcast, and lapsing without a refresh."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import timedelta

from sqlalchemy import Engine

from core.chat import store
from core.chat.connections import ConnectionManager
from core.chat.models import TypingPublic, as_utc
from core.chat.protocol import TypingUpdateEvent
from core.models import utcnow

log = logging.getLogger("docchat.chat")


class TypingIndicators:
    def __init__(self, engine: Engine, connections: ConnectionManager, *, ttl: float) -> None:
        self._engine = engine
        self._connections = connections
        self._ttl = timedelta(seconds=ttl)
        # Lapses are reported within a quarter of the TTL (and at most a second) of happening.
        self._sweep_interval = min(1.0, ttl / 4)
        self._sweeper: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._sweeper = asyncio.create_task(self._sweep_forever(), name="chat-typing-sweep")

    async def stop(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper

    async def update(self, *, session_id: int, user_id: str, is_typing: bool) -> TypingUpdateEvent:
        """Tell the session that ``user_id`` started, refreshed or stopped typing; record it."""
        # Broadcast first: under load the SQL write queues behind others, and nobody should
        # see a typing indicator late because of it. The caller still waits for the write.
        event = TypingUpdateEvent(session_id=session_id, user_id=user_id, is_typing=is_typing)
        await self._connections.broadcast_to_session(session_id, event.payload())
        if is_typing:
            await asyncio.to_thread(
                store.set_typing, self._engine, session_id=session_id, user_id=user_id
            )
        else:
            await asyncio.to_thread(
                store.clear_typing, self._engine, session_id=session_id, user_id=user_id
            )
        return event

    async def active(self, session_id: int) -> list[TypingPublic]:
        rows = await asyncio.to_thread(
            store.active_typing, self._engine, session_id=session_id, since=utcnow() - self._ttl
        )
        return [
            TypingPublic(
                session_id=row.session_id,
                user_id=row.user_id,
                updated_at=as_utc(row.updated_at),
                expires_at=as_utc(row.updated_at) + self._ttl,
            )
            for row in rows
        ]

    async def sweep(self) -> int:
        """Remove lapsed indicators and broadcast ``is_typing: false`` for each."""
        lapsed = await asyncio.to_thread(
            store.take_lapsed_typing, self._engine, cutoff=utcnow() - self._ttl
        )
        for row in lapsed:
            event = TypingUpdateEvent(
                session_id=row.session_id, user_id=row.user_id, is_typing=False
            )
            await self._connections.broadcast_to_session(row.session_id, event.payload())
        return len(lapsed)

    async def _sweep_forever(self) -> None:
        while True:
            await asyncio.sleep(self._sweep_interval)
            try:
                await self.sweep()
            except Exception:  # a failed sweep (e.g. the database blipped) is retried next tick
                log.exception("sweeping lapsed typing indicators failed")
