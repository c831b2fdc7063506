"""Who is typing in a session: broadcast at once, persisted in batches, lapsing without a
refresh.

Typing arrives in bursts (every keystroke of every person in every session), so it is written
behind: changes gather for ``flush_interval`` and go to SQL in one transaction. Reads are
consistent with the broadcast all the same: every replica delivers every session's
``typing_update`` events, and each remembers the latest one per person (for a TTL) from what it
delivered. A read waits for the broadcaster to deliver everything already published (``sync``),
then merges those events with the SQL rows, the later of the two deciding for each person: so
once a client was told X is typing, ``GET /chat/{id}/typing`` on any replica lists X.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from datetime import datetime, timedelta

from sqlalchemy import Engine

from core.chat import store
from core.chat.connections import ConnectionManager
from core.chat.protocol import TypingUpdateEvent
from core.chat.tables import TypingPublic, as_utc
from core.ingestion.tables import utcnow

log = logging.getLogger("docchat.chat")


class TypingIndicators:
    def __init__(
        self,
        engine: Engine,
        connections: ConnectionManager,
        *,
        ttl: float,
        flush_interval: float = 0.05,
    ) -> None:
        self._engine = engine
        self._connections = connections
        self._ttl = timedelta(seconds=ttl)
        # Lapses are reported within a quarter of the TTL (and at most a second) of happening.
        self._sweep_interval = min(1.0, ttl / 4)
        self._flush_interval = flush_interval
        self._pending: dict[tuple[int, str], datetime | None] = {}
        self._changed = asyncio.Event()
        self._flush_lock = asyncio.Lock()
        self._tasks: list[asyncio.Task[None]] = []
        # The latest typing_update delivered here per (session, person): (when, is_typing).
        self._seen: dict[int, dict[str, tuple[datetime, bool]]] = {}
        connections.observe(self._observe)

    def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._sweep_forever(), name="chat-typing-sweep"),
            asyncio.create_task(self._flush_forever(), name="chat-typing-flush"),
        ]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        with contextlib.suppress(Exception):  # the database may be gone at shutdown
            await self.flush()

    async def update(self, *, session_id: int, user_id: str, is_typing: bool) -> TypingUpdateEvent:
        """Tell the session that ``user_id`` started, refreshed or stopped typing; record it
        (within ``flush_interval``)."""
        event = TypingUpdateEvent(session_id=session_id, user_id=user_id, is_typing=is_typing)
        await self._connections.broadcast_to_session(session_id, event.payload())
        # The event's own time, as every replica remembers it: the merge compares like with like.
        self._pending[(session_id, user_id)] = event.timestamp if is_typing else None
        self._changed.set()
        return event

    async def flush(self) -> None:
        """Write the pending changes now."""
        async with self._flush_lock:
            if not self._pending:
                return
            batch, self._pending = self._pending, {}
            try:
                await asyncio.to_thread(store.write_typing, self._engine, batch)
            except BaseException:
                # Keep them for the next flush, under any newer change of the same person.
                self._pending = {**batch, **self._pending}
                raise

    async def active(self, session_id: int) -> list[TypingPublic]:
        await self._connections.sync()  # what other replicas published has been seen here
        await self.flush()
        since = utcnow() - self._ttl
        rows = await asyncio.to_thread(
            store.active_typing, self._engine, session_id=session_id, since=since
        )
        latest = {row.user_id: (as_utc(row.updated_at), True) for row in rows}
        for user_id, (at, is_typing) in self._seen.get(session_id, {}).items():
            stored = latest.get(user_id)
            if stored is None or at >= stored[0]:
                latest[user_id] = (at, is_typing)
        return [
            TypingPublic(
                session_id=session_id,
                user_id=user_id,
                updated_at=at,
                expires_at=at + self._ttl,
            )
            for user_id, (at, is_typing) in sorted(latest.items())
            if is_typing and at > since
        ]

    def _observe(self, session_id: int, text: str) -> None:
        # Every event of every session passes here: only typing updates are parsed.
        if not text.startswith('{"type":"typing_update"'):
            return
        event = TypingUpdateEvent.model_validate(json.loads(text))
        seen = self._seen.setdefault(session_id, {})
        known = seen.get(event.user_id)
        if known is None or event.timestamp >= known[0]:
            seen[event.user_id] = (event.timestamp, event.is_typing)

    def _forget_lapsed(self) -> None:
        cutoff = utcnow() - self._ttl
        for session_id, seen in list(self._seen.items()):
            for user_id, (at, _) in list(seen.items()):
                if at <= cutoff:
                    del seen[user_id]
            if not seen:
                del self._seen[session_id]

    async def sweep(self) -> int:
        """Remove lapsed indicators and broadcast ``is_typing: false`` for each."""
        self._forget_lapsed()
        await self.flush()  # a refresh still in memory must not be swept as a lapse
        lapsed = await asyncio.to_thread(
            store.take_lapsed_typing, self._engine, cutoff=utcnow() - self._ttl
        )
        for row in lapsed:
            event = TypingUpdateEvent(
                session_id=row.session_id, user_id=row.user_id, is_typing=False
            )
            await self._connections.broadcast_to_session(row.session_id, event.payload())
        return len(lapsed)

    async def _flush_forever(self) -> None:
        while True:
            await self._changed.wait()
            # A burst of keystrokes (across sessions too) becomes one write.
            await asyncio.sleep(self._flush_interval)
            self._changed.clear()
            try:
                await self.flush()
            except Exception:  # kept for the next flush; the database may have blipped
                log.exception("writing typing indicators failed")
                self._changed.set()
                await asyncio.sleep(1.0)

    async def _sweep_forever(self) -> None:
        while True:
            await asyncio.sleep(self._sweep_interval)
            try:
                await self.sweep()
            except Exception:  # a failed sweep (e.g. the database blipped) is retried next tick
                log.exception("sweeping lapsed typing indicators failed")
