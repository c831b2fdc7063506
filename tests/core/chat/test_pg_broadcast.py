"""PostgresBroadcaster against the tests' real PostgreSQL: two "replicas" in one process, each
with its own connections, exactly as two API processes would have."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator

import psycopg
import pytest

from core.chat.broadcast import LocalBroadcaster
from core.chat.broadcasters import broadcaster_for
from core.chat.pg_broadcast import MAX_PAYLOAD_BYTES, PostgresBroadcaster, split_utf8
from tests.helpers import until
from tests.postgres import PostgresCluster

Received = list[tuple[int, str]]


@pytest.fixture
def url(postgres: PostgresCluster) -> str:
    return postgres.url(driver="")


async def replica(url: str, channel: str) -> tuple[PostgresBroadcaster, Received]:
    received: Received = []

    async def deliver(session_id: int, text: str) -> None:
        received.append((session_id, text))

    broadcaster = PostgresBroadcaster(url, channel=channel, reconnect_delay=0.1)
    await broadcaster.start(deliver)
    return broadcaster, received


@pytest.fixture
async def pair(url: str) -> AsyncIterator[tuple[PostgresBroadcaster, Received, Received]]:
    channel = f"test_{uuid.uuid4().hex[:8]}"
    a, from_a = await replica(url, channel)
    b, from_b = await replica(url, channel)
    try:
        yield a, from_a, from_b
    finally:
        await a.stop()
        await b.stop()


async def test_events_reach_the_other_replica_and_this_one_once(
    pair: tuple[PostgresBroadcaster, Received, Received],
) -> None:
    a, at_a, at_b = pair
    await a.publish(7, '{"type":"typing_update"}')
    await until(lambda: len(at_b) == 1)
    assert at_b == [(7, '{"type":"typing_update"}')]
    await asyncio.sleep(0.2)  # its own notification comes back to A too: it is skipped
    assert at_a == [(7, '{"type":"typing_update"}')]


async def test_concurrent_events_all_arrive_in_each_publishers_order(
    pair: tuple[PostgresBroadcaster, Received, Received],
) -> None:
    a, _, at_b = pair

    async def stream(session_id: int) -> None:
        for index in range(30):
            await a.publish(session_id, json.dumps({"index": index}))

    # Two answers streaming at once, as when a typing lapse is swept mid-answer.
    await asyncio.gather(stream(1), stream(2), *(a.publish(3, "{}") for _ in range(10)))
    await until(lambda: len(at_b) == 70)
    for session_id in (1, 2):
        indexes = [json.loads(text)["index"] for sid, text in at_b if sid == session_id]
        assert indexes == list(range(30))


async def test_events_over_the_notify_limit_are_fragmented_and_rebuilt(
    pair: tuple[PostgresBroadcaster, Received, Received],
) -> None:
    a, _, at_b = pair
    big = json.dumps({"type": "complete", "content": "Dänemark — København ✓ " * 2000})
    assert len(big.encode()) > 5 * MAX_PAYLOAD_BYTES
    await a.publish(4, big)
    await a.publish(4, "after")
    await until(lambda: len(at_b) == 2)
    assert at_b == [(4, big), (4, "after")]


async def test_listener_and_publisher_survive_a_lost_connection(
    pair: tuple[PostgresBroadcaster, Received, Received], url: str
) -> None:
    a, _, at_b = pair
    await a.publish(5, "before")
    await until(lambda: len(at_b) == 1)
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as admin:
        await admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE application_name = 'docchat-broadcast'"
        )
    await asyncio.sleep(0.5)  # both listeners notice and reconnect (0.1 s delay)
    await until(lambda: a.listening.is_set())
    await a.publish(5, "after")  # the publisher's connection was dropped too: replaced
    await until(lambda: len(at_b) == 2)
    assert at_b[-1] == (5, "after")


async def test_foreign_notifications_are_ignored(
    pair: tuple[PostgresBroadcaster, Received, Received], url: str
) -> None:
    a, _, at_b = pair
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as other:
        for payload in ("hello", "x:y:z:a:b:c", "o:1:2:0:0:x", "o:1:2:5:2:x"):
            await other.execute("SELECT pg_notify(%s, %s)", (a._channel, payload))
    await a.publish(6, "real")
    await until(lambda: (6, "real") in at_b)
    assert at_b == [(6, "real")]


async def test_start_fails_when_postgres_cannot_be_reached() -> None:
    broadcaster = PostgresBroadcaster("postgresql://nobody@127.0.0.1:9/none", connect_timeout=2)

    async def deliver(session_id: int, text: str) -> None:
        raise AssertionError("nothing to deliver")

    with pytest.raises(psycopg.OperationalError):
        await broadcaster.start(deliver)


def test_split_utf8_never_cuts_a_character() -> None:
    text = "aé✓😀" * 50
    pieces = split_utf8(text, 7)
    assert "".join(pieces) == text
    assert all(len(piece.encode()) <= 7 for piece in pieces)
    assert split_utf8("", 10) == [""]


def test_unset_url_means_this_process_only() -> None:
    assert isinstance(broadcaster_for(None), LocalBroadcaster)
    assert isinstance(broadcaster_for("postgresql://h/db"), PostgresBroadcaster)


async def test_sync_returns_once_everything_published_before_it_arrived(url: str) -> None:
    channel = f"test_{uuid.uuid4().hex[:8]}"
    a, _ = await replica(url, channel)
    b, at_b = await replica(url, channel)
    try:
        # Another replica's 200 events, committed at once: all still on their way to B.
        async with await psycopg.AsyncConnection.connect(url) as connection:
            async with connection.transaction():
                for index in range(200):
                    payload = f"elsewhere:4:{index}:0:1:" + json.dumps({"index": index})
                    await connection.execute("SELECT pg_notify(%s, %s)", (channel, payload))
        await b.sync()  # once it returns B has heard them all, without waiting any longer
        assert [json.loads(text)["index"] for _, text in at_b] == list(range(200))
        await b.stop()
        await b.sync()  # not listening: returns at once instead of waiting for nothing
    finally:
        await a.stop()
        await b.stop()
