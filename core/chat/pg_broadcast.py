"""Session events across API replicas through PostgreSQL ``LISTEN/NOTIFY`` (psycopg 3).

Every replica listens on one channel and publishes each event to it; an event carries the
publishing replica's random *origin*, so a replica skips its own events, which it has already
handed to its clients directly (no round trip, and its clients keep getting events while the
broker is away). Between replicas, the order of one replica's events is kept: one publishing
connection, one statement at a time, and PostgreSQL delivers notifications in commit order.

PostgreSQL refuses a payload of 8000 bytes or more, and an answer's ``complete`` event with its
sources can be larger, so a long event travels as numbered fragments in one transaction (they
arrive together) and is put back together on the other side.

Why not the ``broadcaster`` library's PostgreSQL backend: it LISTENs and NOTIFYs on one asyncpg
connection, so two events published at once (an answer streaming while a typing indicator
lapses) fail with "another operation is in progress" and leave the connection unusable; it
neither reconnects nor handles payloads over 8000 bytes; and it would add a second PostgreSQL
driver next to psycopg.

``sync`` is a read barrier: it publishes a marker and waits until the marker comes back on
this replica's listening connection. PostgreSQL delivers notifications in commit order, so
every event committed before the marker has been handed to ``deliver`` by then (used so that
``GET /chat/{id}/typing`` on any replica shows what a client was already told).

A replica that loses its connection reconnects within seconds; events published meanwhile do
not reach its clients (their history, ``GET /chat/sessions/{id}/messages``, has them).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import uuid
from collections import OrderedDict
from typing import Any

import psycopg
from psycopg import sql

from core.chat.broadcast import Deliver

log = logging.getLogger("docchat.chat.broadcast")

CHANNEL = "docchat_chat"
# PostgreSQL's limit is 8000 bytes per payload, header included.
MAX_PAYLOAD_BYTES = 7900
# Fragmented events being put back together, at most (the oldest is dropped beyond this).
MAX_PARTIAL = 64
# A sync marker's payload starts with this; older replicas ignore it (not six fields).
SYNC_PREFIX = "sync:"
# The longest ``sync`` waits for its marker; past it (a slow or absent broker) it gives up.
SYNC_TIMEOUT_SECONDS = 1.0
# Finds a dead connection that would otherwise wait for notifications forever.
KEEPALIVES: dict[str, Any] = {
    "keepalives": 1,
    "keepalives_idle": 10,
    "keepalives_interval": 5,
    "keepalives_count": 3,
}


class PostgresBroadcaster:
    def __init__(
        self,
        url: str,
        *,
        channel: str = CHANNEL,
        reconnect_delay: float = 1.0,
        connect_timeout: float = 10.0,
    ) -> None:
        self._url = url
        self._channel = channel
        self._reconnect_delay = reconnect_delay
        self._connect_timeout = connect_timeout
        self.origin = uuid.uuid4().hex[:16]
        self._deliver: Deliver | None = None
        self._listener: asyncio.Task[None] | None = None
        self._publisher: psycopg.AsyncConnection[Any] | None = None
        self._publish_lock = asyncio.Lock()
        self._sequence = itertools.count()
        self._partial: OrderedDict[tuple[str, str], list[str | None]] = OrderedDict()
        # Set while the listening connection is up (after LISTEN), cleared while it is down.
        self.listening = asyncio.Event()
        self._syncs: dict[str, asyncio.Future[None]] = {}

    # --- the Broadcaster interface ---

    async def start(self, deliver: Deliver) -> None:
        """Start listening; fails (like the database would) if PostgreSQL cannot be reached."""
        self._deliver = deliver
        connection = await self._connect()  # the first connection's failure is start-up's
        self._listener = asyncio.create_task(self._listen_forever(connection), name="chat-listen")

    async def publish(self, session_id: int, text: str) -> None:
        # This process's clients first, straight away; the other replicas through PostgreSQL.
        if self._deliver is not None:
            await self._deliver(session_id, text)
        payloads = self._fragments(session_id, text)
        async with self._publish_lock:
            for attempt in (1, 2):  # a connection broken since the last event is replaced once
                try:
                    await self._notify(payloads)
                    return
                except psycopg.Error as exc:
                    await self._drop_publisher()
                    if attempt == 2:
                        log.warning(
                            "event for session %s reached this replica only: %s", session_id, exc
                        )

    async def sync(self) -> None:
        if not self.listening.is_set():
            return  # nothing arrives from the other replicas now: nothing to wait for
        token = uuid.uuid4().hex[:16]
        arrived: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._syncs[token] = arrived
        try:
            async with asyncio.timeout(SYNC_TIMEOUT_SECONDS):
                async with self._publish_lock:
                    await self._notify([f"{SYNC_PREFIX}{self.origin}:{token}"])
                await arrived
        except (TimeoutError, psycopg.Error) as exc:
            log.debug("sync with the other replicas gave up: %r", exc)
        finally:
            self._syncs.pop(token, None)

    async def stop(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listener
            self._listener = None
        self.listening.clear()
        async with self._publish_lock:
            await self._drop_publisher()
        self._deliver = None

    # --- publishing ---

    def _fragments(self, session_id: int, text: str) -> list[str]:
        sequence = next(self._sequence)
        header_room = len(f"{self.origin}:{session_id}:{sequence}:9999:9999:")
        pieces = split_utf8(text, MAX_PAYLOAD_BYTES - header_room)
        count = len(pieces)
        return [
            f"{self.origin}:{session_id}:{sequence}:{index}:{count}:{piece}"
            for index, piece in enumerate(pieces)
        ]

    async def _notify(self, payloads: list[str]) -> None:
        if self._publisher is None or self._publisher.closed:
            self._publisher = await self._connect(listen=False)
        connection = self._publisher
        query = "SELECT pg_notify(%s, %s)"
        if len(payloads) == 1:
            await connection.execute(query, (self._channel, payloads[0]))
            return
        async with connection.transaction():  # the fragments arrive together, in order
            for payload in payloads:
                await connection.execute(query, (self._channel, payload))

    async def _drop_publisher(self) -> None:
        publisher, self._publisher = self._publisher, None
        if publisher is not None:
            with contextlib.suppress(Exception):
                await publisher.close()

    # --- listening ---

    async def _connect(self, *, listen: bool = True) -> psycopg.AsyncConnection[Any]:
        connection: psycopg.AsyncConnection[Any] = await psycopg.AsyncConnection.connect(
            self._url,
            autocommit=True,
            connect_timeout=max(1, round(self._connect_timeout)),
            application_name="docchat-broadcast",
            **KEEPALIVES,
        )
        if listen:
            await connection.execute(sql.SQL("LISTEN {}").format(sql.Identifier(self._channel)))
            self.listening.set()
        return connection

    async def _listen_forever(self, connection: psycopg.AsyncConnection[Any]) -> None:
        while True:
            try:
                async with connection:
                    async for notify in connection.notifies():
                        await self._receive(notify.payload)
            except psycopg.Error as exc:
                log.warning("broadcast listener lost its connection (%s); reconnecting", exc)
            self.listening.clear()
            while True:
                await asyncio.sleep(self._reconnect_delay)
                try:
                    connection = await self._connect()
                except psycopg.Error as exc:
                    log.warning("broadcast listener cannot reconnect yet: %s", exc)
                    continue
                log.info("broadcast listener reconnected")
                break

    async def _receive(self, payload: str) -> None:
        if payload.startswith(SYNC_PREFIX):
            origin, _, token = payload.removeprefix(SYNC_PREFIX).partition(":")
            arrived = self._syncs.get(token) if origin == self.origin else None
            if arrived is not None and not arrived.done():
                arrived.set_result(None)
            return
        parts = payload.split(":", 5)
        if len(parts) != 6:
            log.debug("ignoring a foreign notification on %s", self._channel)
            return
        origin, session, sequence, index, count, piece = parts
        if origin == self.origin:
            return  # delivered locally when it was published
        try:
            session_id, position, total = int(session), int(index), int(count)
        except ValueError:
            log.debug("ignoring a foreign notification on %s", self._channel)
            return
        if total == 1:
            await self._hand_over(session_id, piece)
            return
        key = (origin, sequence)
        slots = self._partial.setdefault(key, [None] * total)
        if len(slots) != total or not 0 <= position < total:
            self._partial.pop(key, None)
            return
        slots[position] = piece
        while len(self._partial) > MAX_PARTIAL:
            self._partial.popitem(last=False)
        if all(slot is not None for slot in slots):
            self._partial.pop(key, None)
            await self._hand_over(session_id, "".join(slot or "" for slot in slots))

    async def _hand_over(self, session_id: int, text: str) -> None:
        if self._deliver is None:
            return
        try:
            await self._deliver(session_id, text)
        except Exception:  # one bad delivery must not stop the listener
            log.exception("delivering a broadcast event to session %s failed", session_id)


def split_utf8(text: str, limit: int) -> list[str]:
    """``text`` in pieces of at most ``limit`` UTF-8 bytes, never splitting a character."""
    data = text.encode()
    pieces: list[str] = []
    start = 0
    while start < len(data):
        end = min(start + limit, len(data))
        while end < len(data) and data[end] & 0xC0 == 0x80:  # a continuation byte
            end -= 1
        pieces.append(data[start:end].decode())
        start = end
    return pieces or [""]
