"""WebSocket connections of chat sessions: many clients per session, none can stall another.

Every connection has a bounded queue and its own sender task, so broadcasting only puts text
on queues and never waits on a socket. A client whose queue fills up (it stopped reading, or
reads slower than the session talks) is dropped with close code ``CLOSE_TOO_SLOW``; a client
whose socket fails is removed. A periodic ``ping`` event keeps idle connections alive through
proxies and finds dead ones.

Observers see every event this process delivers (its own and, through the broadcaster, every
other replica's) before any client does, and a joining client is first sent what observers
say it missed (``on_join``), with no await between registering it and sending that: every
later event reaches it live, every earlier one is in what it was sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, Protocol

from core.chat.broadcast import Broadcaster, LocalBroadcaster
from core.chat.client_limits import TooManyConnectionsError
from core.chat.protocol import PingEvent

log = logging.getLogger("docchat.chat")

CLOSE_NORMAL = 1000
CLOSE_GOING_AWAY = 1001  # the server is shutting down
CLOSE_SESSION_NOT_FOUND = 4404  # no such chat session (or it was deleted)
CLOSE_TOO_SLOW = 4408  # the client did not read its messages fast enough

# Sees one delivered event: the session and its JSON text. Runs inside delivery: keep it cheap.
Observer = Callable[[int, str], None]
# The JSON texts a client joining the session is sent before any live event.
JoinReplay = Callable[[int], list[str]]


class MessageSocket(Protocol):
    """What the manager needs of a socket; Starlette's ``WebSocket`` is one."""

    async def send_text(self, data: str) -> None: ...

    async def close(self, code: int = 1000, reason: str | None = None) -> None: ...


class Connection:
    def __init__(self, websocket: MessageSocket, session_id: int, *, queue_size: int) -> None:
        self.id = uuid.uuid4().hex[:12]
        self.session_id = session_id
        self.websocket = websocket
        self.queue: asyncio.Queue[str] = asyncio.Queue(maxsize=queue_size)
        self.open = True
        self.sender: asyncio.Task[None] | None = None

    def offer(self, text: str) -> bool:
        """Queue ``text`` for sending; ``False`` when the queue is full."""
        try:
            self.queue.put_nowait(text)
        except asyncio.QueueFull:
            return False
        return True


def encode(message: Mapping[str, Any]) -> str:
    return json.dumps(message, separators=(",", ":"), default=_json_default)


def _json_default(value: object) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


class ConnectionManager:
    def __init__(
        self,
        broadcaster: Broadcaster | None = None,
        *,
        queue_size: int = 256,
        ping_interval: float = 20.0,
        close_timeout: float = 2.0,
        max_per_session: int | None = None,
        max_total: int | None = None,
    ) -> None:
        self._broadcaster = broadcaster or LocalBroadcaster()
        self._max_per_session = max_per_session
        self._max_total = max_total
        self._queue_size = queue_size
        self._ping_interval = ping_interval
        self._close_timeout = close_timeout
        self._sessions: dict[int, dict[str, Connection]] = {}
        self._background: set[asyncio.Task[None]] = set()
        self._pinger: asyncio.Task[None] | None = None
        self._observers: list[Observer] = []
        self._join_replays: list[JoinReplay] = []

    def observe(self, observer: Observer) -> None:
        """Show ``observer`` every event delivered to this process's clients from now on."""
        self._observers.append(observer)

    def on_join(self, replay: JoinReplay) -> None:
        """Send a joining client what ``replay`` gives for its session, before live events."""
        self._join_replays.append(replay)

    async def sync(self) -> None:
        """Return once every event published (by any replica) before the call was delivered."""
        await self._broadcaster.sync()

    # --- lifecycle ---

    async def start(self) -> None:
        await self._broadcaster.start(self._deliver)
        self._pinger = asyncio.create_task(self._ping_forever(), name="chat-ws-ping")

    async def stop(self) -> None:
        if self._pinger is not None:
            self._pinger.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._pinger
        for connection in self._all():
            await self.disconnect(
                connection, code=CLOSE_GOING_AWAY, reason="The server is shutting down."
            )
        for task in list(self._background):
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)
        await self._broadcaster.stop()

    # --- the four operations ---

    async def connect(
        self,
        websocket: MessageSocket,
        session_id: int,
        *,
        greeting: Callable[[Connection], Mapping[str, Any]] | None = None,
    ) -> Connection:
        """Register an accepted socket as a client of ``session_id`` and start its sender;
        ``TooManyConnectionsError`` when a connection cap is reached (nothing is registered).
        Its first messages are ``greeting``, then what the ``on_join`` replays give."""
        self._check_caps(session_id)
        connection = Connection(websocket, session_id, queue_size=self._queue_size)
        connection.sender = asyncio.create_task(
            self._send_forever(connection), name=f"chat-ws-send-{connection.id}"
        )
        # From here to the end, no await: no event can fall between the replay and live ones.
        self._sessions.setdefault(session_id, {})[connection.id] = connection
        if greeting is not None:
            connection.offer(encode(greeting(connection)))
        for replay in self._join_replays:
            for text in replay(session_id):
                if not connection.offer(text):
                    self._drop(connection)
        log.debug("client %s joined session %s", connection.id, session_id)
        return connection

    async def disconnect(
        self,
        connection: Connection,
        *,
        code: int = CLOSE_NORMAL,
        reason: str | None = None,
        peer_closed: bool = False,
    ) -> None:
        """Remove the client, stop its sender and close its socket (unless the client closed it
        already: ``peer_closed``); safe to call twice."""
        if not connection.open:
            return
        connection.open = False
        clients = self._sessions.get(connection.session_id, {})
        clients.pop(connection.id, None)
        if not clients:
            self._sessions.pop(connection.session_id, None)
        sender = connection.sender
        if sender is not None and sender is not asyncio.current_task():
            sender.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sender
        if peer_closed:
            # Closing a closed socket only raises, and the failed close (an exception, its
            # traceback and wait_for's task) is a reference cycle per client: garbage that
            # only a full collection frees, a pause of 100-250 ms after 1,000 clients leave.
            return
        # A client that stopped reading may never take the close frame; do not wait on it.
        # The socket may already be gone too: closing is best effort.
        with contextlib.suppress(Exception):
            await asyncio.wait_for(
                connection.websocket.close(code=code, reason=reason), self._close_timeout
            )
        log.debug("client %s left session %s (%s)", connection.id, connection.session_id, code)

    async def send_personal_message(
        self, connection: Connection, message: Mapping[str, Any]
    ) -> None:
        """Send ``message`` to this one client."""
        if connection.open and not connection.offer(encode(message)):
            self._drop(connection)

    async def broadcast_to_session(self, session_id: int, message: Mapping[str, Any]) -> None:
        """Send ``message`` to every client of the session (through the broadcaster)."""
        await self._broadcaster.publish(session_id, encode(message))

    # --- inspection ---

    def count(self, session_id: int | None = None) -> int:
        if session_id is not None:
            return len(self._sessions.get(session_id, {}))
        return sum(len(clients) for clients in self._sessions.values())

    async def close_session(self, session_id: int, *, code: int, reason: str) -> None:
        """Disconnect this process's clients of a session (e.g. when it is deleted), after
        giving each a moment to receive what is already queued for it."""
        clients = list(self._sessions.get(session_id, {}).values())
        await asyncio.gather(
            *(self.close(connection, code=code, reason=reason) for connection in clients)
        )

    async def close(self, connection: Connection, *, code: int, reason: str) -> None:
        """Disconnect one client after giving it a moment to receive what is queued for it."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(connection.queue.join(), self._close_timeout)
        await self.disconnect(connection, code=code, reason=reason)

    # --- internals ---

    def _check_caps(self, session_id: int) -> None:
        if self._max_per_session is not None and self.count(session_id) >= self._max_per_session:
            raise TooManyConnectionsError(
                f"Chat session {session_id} already has {self._max_per_session} connections; "
                "try again later.",
                details={"limit": self._max_per_session, "scope": "session"},
            )
        if self._max_total is not None and self.count() >= self._max_total:
            raise TooManyConnectionsError(
                "The server has as many chat connections as it accepts; try again later.",
                details={"limit": self._max_total, "scope": "server"},
            )

    async def _deliver(self, session_id: int, text: str) -> None:
        for observer in self._observers:
            try:
                observer(session_id, text)
            except Exception:  # an observer's bug must not keep the event from the clients
                log.exception("an observer of session %s events failed", session_id)
        for connection in list(self._sessions.get(session_id, {}).values()):
            if not connection.offer(text):
                self._drop(connection)

    def _drop(self, connection: Connection) -> None:
        """Disconnect a client whose queue is full, without making the caller wait for it."""
        if not connection.open:
            return
        log.info(
            "dropping client %s of session %s: %d messages unsent",
            connection.id,
            connection.session_id,
            connection.queue.qsize(),
        )
        self._in_background(
            self.disconnect(
                connection,
                code=CLOSE_TOO_SLOW,
                reason="Too slow: messages were arriving faster than the client read them.",
            )
        )

    def _in_background(self, coroutine: Any) -> None:
        task: asyncio.Task[None] = asyncio.create_task(coroutine)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _send_forever(self, connection: Connection) -> None:
        try:
            while True:
                text = await connection.queue.get()
                try:
                    await connection.websocket.send_text(text)
                finally:
                    connection.queue.task_done()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the socket is gone, however it went: the client is dead
            log.debug("send to client %s failed: %r", connection.id, exc)
            self._in_background(self.disconnect(connection, code=CLOSE_GOING_AWAY))

    async def _ping_forever(self) -> None:
        while True:
            await asyncio.sleep(self._ping_interval)
            text = encode(PingEvent().payload())
            for connection in self._all():
                if not connection.offer(text):
                    self._drop(connection)

    def _all(self) -> list[Connection]:
        return [c for clients in self._sessions.values() for c in clients.values()]
