"""Two API replicas in one process, each with its own PostgreSQL broadcaster (LISTEN/NOTIFY on
the tests' real PostgreSQL) and connection manager, sharing one database, as two processes
would: what a client was told on one replica, the other one serves."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest
from sqlalchemy import Engine

from core import migrate
from core.chat import store
from core.chat.answer_streams import AnswerStreams
from core.chat.connections import ConnectionManager, encode
from core.chat.pg_broadcast import PostgresBroadcaster
from core.chat.protocol import TypingUpdateEvent
from core.chat.typing_indicators import TypingIndicators
from core.db import make_engine
from tests.postgres import PostgresCluster


class RecordingSocket:
    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []

    async def send_text(self, data: str) -> None:
        self.sent.append(json.loads(data))

    async def close(self, code: int = 1000, reason: str | None = None) -> None:
        return None


@dataclass
class Replica:
    connections: ConnectionManager
    typing: TypingIndicators
    streams: AnswerStreams


@pytest.fixture
def engine(postgres: PostgresCluster) -> Iterator[Engine]:
    engine = make_engine(postgres.url(postgres.create_database()))
    migrate.upgrade(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def channel() -> str:
    return f"test_{uuid.uuid4().hex[:8]}"


@pytest.fixture
async def replicas(
    postgres: PostgresCluster, engine: Engine, channel: str
) -> AsyncIterator[tuple[Replica, Replica]]:
    made: list[Replica] = []
    for _ in range(2):
        broadcaster = PostgresBroadcaster(postgres.url(driver=""), channel=channel)
        connections = ConnectionManager(broadcaster)
        streams = AnswerStreams()
        connections.observe(streams.observe)
        connections.on_join(streams.replay)
        # A write-behind far slower than the test: reads cannot be served by the other
        # replica's SQL write, only by what the broadcast delivered.
        typing = TypingIndicators(engine, connections, ttl=30.0, flush_interval=60.0)
        await connections.start()
        made.append(Replica(connections, typing, streams))
    try:
        yield made[0], made[1]
    finally:
        for replica in made:
            await replica.connections.stop()


async def test_typing_told_on_one_replica_is_listed_by_the_other_at_once(
    engine: Engine, replicas: tuple[Replica, Replica], postgres: PostgresCluster, channel: str
) -> None:
    a, b = replicas
    session_id = store.create_session(engine, owner="local", title="t").id
    assert session_id is not None
    await a.typing.update(session_id=session_id, user_id="user123", is_typing=True)
    # No waiting: the read waits for the broadcast itself (sync), not for a write-behind.
    listed = await b.typing.active(session_id)
    assert [row.user_id for row in listed] == ["user123"]
    ever = datetime(2000, 1, 1, tzinfo=UTC)
    assert store.active_typing(engine, session_id=session_id, since=ever) == [], (
        "served from the broadcast: replica A has not written it yet"
    )

    await a.typing.update(session_id=session_id, user_id="user123", is_typing=False)
    assert await b.typing.active(session_id) == []

    await b.typing.update(session_id=session_id, user_id="bob", is_typing=True)
    assert [row.user_id for row in await a.typing.active(session_id)] == ["bob"]

    # A third replica's burst, committed at once: still on its way to B when B is asked; B's
    # read waits for it (the sync itself is proved in test_pg_broadcast).
    people = [f"p{index:03}" for index in range(100)]
    events = [
        TypingUpdateEvent(session_id=session_id, user_id=person, is_typing=True).payload()
        for person in people
    ]
    await notify_at_once(postgres.url(driver=""), channel, session_id, events)
    assert [row.user_id for row in await b.typing.active(session_id)] == ["bob", *people]


async def notify_at_once(
    url: str, channel: str, session_id: int, events: list[dict[str, Any]]
) -> None:
    """Publish ``events`` as another replica would, in one transaction: they arrive together."""
    async with await psycopg.AsyncConnection.connect(url) as connection:
        async with connection.transaction():
            for sequence, event in enumerate(events):
                payload = f"elsewhere:{session_id}:{sequence}:0:1:{encode(event)}"
                await connection.execute("SELECT pg_notify(%s, %s)", (channel, payload))


async def test_a_client_joining_another_replica_mid_answer_gets_all_of_it(
    replicas: tuple[Replica, Replica],
) -> None:
    a, b = replicas
    session_id, reply_to = 5, 11
    words = [f"w{index} " for index in range(30)]

    async def chunk(content: str) -> None:
        payload = {"type": "chunk", "session_id": session_id, "reply_to": reply_to}
        await a.connections.broadcast_to_session(session_id, payload | {"content": content})

    for word in words[:10]:
        await chunk(word)
    await b.connections.sync()  # replica B has heard the first ten: the replay is not empty
    socket = RecordingSocket()

    async def stream_rest() -> None:
        for word in words[10:]:
            await chunk(word)
            await asyncio.sleep(0)
        complete = {"type": "complete", "session_id": session_id, "reply_to": reply_to}
        await a.connections.broadcast_to_session(session_id, complete)

    streaming = asyncio.create_task(stream_rest())
    await asyncio.sleep(0.005)  # join while the rest is on its way
    await b.connections.connect(socket, session_id)
    await streaming
    deadline = asyncio.get_running_loop().time() + 10
    while not socket.sent or socket.sent[-1]["type"] != "complete":
        assert asyncio.get_running_loop().time() < deadline, socket.sent
        await asyncio.sleep(0.01)
    chunks = [message for message in socket.sent if message["type"] == "chunk"]
    assert chunks[0]["resumed"] is True
    assert "".join(message["content"] for message in chunks) == "".join(words)
    assert b.streams.in_progress(session_id) == {}
