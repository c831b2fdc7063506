"""The connection manager's queueing, on its own.

These use fake sockets on purpose: what is tested is the manager's per-client queue, sender
task and drop policy, and a real client that "never reads" is not something a test can hold
still (TCP buffers absorb megabytes first). ``test_websocket.py`` covers real sockets.
"""

from __future__ import annotations

import asyncio
import gc
import json
from typing import Any

from core.chat.connections import CLOSE_GOING_AWAY, CLOSE_TOO_SLOW, ConnectionManager


class RecordingSocket:
    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []
        self.closed: tuple[int, str | None] | None = None

    async def send_text(self, data: str) -> None:
        self.sent.append(json.loads(data))

    async def close(self, code: int = 1000, reason: str | None = None) -> None:
        self.closed = (code, reason)


class StuckSocket(RecordingSocket):
    """A client that never drains: every send waits forever, and so does its close."""

    async def send_text(self, data: str) -> None:
        await asyncio.Event().wait()

    async def close(self, code: int = 1000, reason: str | None = None) -> None:
        self.closed = (code, reason)
        await asyncio.Event().wait()


class DeadSocket(RecordingSocket):
    async def send_text(self, data: str) -> None:
        raise ConnectionResetError("the peer went away")


async def settle(condition, *, within: float = 2.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not condition():
        assert loop.time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.005)


async def started(**options) -> ConnectionManager:
    manager = ConnectionManager(close_timeout=0.1, **options)
    await manager.start()
    return manager


async def test_a_slow_client_is_dropped_without_stalling_the_others() -> None:
    manager = await started(queue_size=4)
    fast, stuck = RecordingSocket(), StuckSocket()
    await manager.connect(fast, 1)
    await manager.connect(stuck, 1)
    try:
        async with asyncio.timeout(1):  # broadcasting never waits on a socket
            for number in range(50):
                await manager.broadcast_to_session(1, {"n": number})
                await asyncio.sleep(0)  # let the fast client's sender run, as a server would
        await settle(lambda: len(fast.sent) == 50)
        assert [m["n"] for m in fast.sent] == list(range(50))
        await settle(lambda: manager.count(1) == 1)
        assert stuck.closed is not None and stuck.closed[0] == CLOSE_TOO_SLOW
    finally:
        await manager.stop()


async def test_a_client_whose_socket_fails_is_removed() -> None:
    manager = await started()
    alive, dead = RecordingSocket(), DeadSocket()
    await manager.connect(alive, 7)
    await manager.connect(dead, 7)
    try:
        await manager.broadcast_to_session(7, {"hello": 1})
        await settle(lambda: manager.count(7) == 1)
        assert alive.sent == [{"hello": 1}]
    finally:
        await manager.stop()


async def test_broadcasts_stay_in_their_session_and_personal_messages_with_their_client() -> None:
    manager = await started()
    first, second, elsewhere = RecordingSocket(), RecordingSocket(), RecordingSocket()
    one = await manager.connect(first, 1)
    await manager.connect(second, 1)
    await manager.connect(elsewhere, 2)
    try:
        await manager.broadcast_to_session(1, {"to": "session 1"})
        await manager.send_personal_message(one, {"to": "first"})
        await settle(lambda: len(first.sent) == 2 and len(second.sent) == 1)
        assert first.sent == [{"to": "session 1"}, {"to": "first"}]
        assert second.sent == [{"to": "session 1"}]
        assert elsewhere.sent == []
        assert (manager.count(1), manager.count(2), manager.count()) == (2, 1, 3)

        await manager.disconnect(one)
        await manager.disconnect(one)  # twice is harmless
        assert first.closed == (1000, None) and manager.count(1) == 1
    finally:
        await manager.stop()
    assert second.closed is not None and second.closed[0] == CLOSE_GOING_AWAY
    assert manager.count() == 0


async def test_every_client_is_pinged_periodically() -> None:
    manager = await started(ping_interval=0.02)
    socket = RecordingSocket()
    await manager.connect(socket, 3)
    try:
        await settle(lambda: len(socket.sent) >= 2)
        assert {m["type"] for m in socket.sent} == {"ping"}
        assert all(m["timestamp"] for m in socket.sent)
    finally:
        await manager.stop()


class ClosedByPeerSocket(RecordingSocket):
    """What a socket does once its client has closed it: every call raises."""

    async def close(self, code: int = 1000, reason: str | None = None) -> None:
        raise ConnectionResetError("already closed by the client")


async def test_a_socket_the_client_closed_is_not_closed_again() -> None:
    manager = await started()
    try:
        gone = ClosedByPeerSocket()
        connection = await manager.connect(gone, 1)
        gc.collect()
        gc.disable()  # the count below must be of what this disconnect leaves, nothing else
        try:
            await manager.disconnect(connection, peer_closed=True)
            await asyncio.sleep(0)
            # A close attempt would raise inside wait_for's task: an exception whose traceback
            # and task refer to each other, a cycle per client that only a full collection frees.
            leftovers = gc.collect()
        finally:
            gc.enable()
        assert gone.closed is None
        assert manager.count(1) == 0 and not connection.open
        assert leftovers == 0
    finally:
        await manager.stop()
