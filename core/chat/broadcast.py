"""Fan-out of session events between API processes, behind one small interface.

``LocalBroadcaster`` serves a single process: a published event goes straight to this
process's sockets. A cross-process broker implements the same three methods: ``publish`` sends
the text to the session's channel, and a listener task started in ``start`` hands everything it
receives on those channels to ``deliver``, so every replica reaches its own sockets. Events
travel as JSON text, so nothing in them needs to be shared in memory. The choice of one
(``core.chat.broadcasters``) lives apart from this interface, so that the brokers import the
interface and nothing imports back.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Protocol

# Hands one JSON text published to a session to this process's clients of that session.
Deliver = Callable[[int, str], Awaitable[None]]


class Broadcaster(Protocol):
    async def start(self, deliver: Deliver) -> None:
        """Begin handing published events to ``deliver``."""
        ...

    async def publish(self, session_id: int, text: str) -> None:
        """Send ``text`` to every client of the session, in every process."""
        ...

    async def sync(self) -> None:
        """Return once every event any process published before the call reached ``deliver``
        here (best effort: without the broker, at once)."""
        ...

    async def stop(self) -> None: ...


class LocalBroadcaster:
    """One process: publishing is delivering."""

    def __init__(self) -> None:
        self._deliver: Deliver | None = None

    async def start(self, deliver: Deliver) -> None:
        self._deliver = deliver

    async def publish(self, session_id: int, text: str) -> None:
        if self._deliver is not None:
            await self._deliver(session_id, text)

    async def sync(self) -> None:
        """Publishing is delivering: everything published is delivered already."""

    async def stop(self) -> None:
        self._deliver = None
