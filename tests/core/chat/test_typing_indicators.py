"""Typing is written behind the broadcast, in batches, and never lost to a failed write."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from sqlalchemy import Engine

from core.chat import store
from core.chat.connections import ConnectionManager
from core.chat.typing_indicators import TypingIndicators
from core.ingestion.tables import utcnow


@pytest.fixture
async def indicators(engine: Engine) -> AsyncIterator[TypingIndicators]:
    connections = ConnectionManager()
    await connections.start()
    typing = TypingIndicators(engine, connections, ttl=30.0, flush_interval=0.05)
    typing.start()
    yield typing
    await typing.stop()
    await connections.stop()


def _typing_rows(engine: Engine, session_id: int) -> list[str]:
    since = utcnow() - timedelta(minutes=1)
    return [row.user_id for row in store.active_typing(engine, session_id=session_id, since=since)]


async def test_a_burst_is_written_without_any_reader(
    engine: Engine, indicators: TypingIndicators, monkeypatch: pytest.MonkeyPatch
) -> None:
    sessions = [store.create_session(engine, owner="o", title=str(n)).id for n in range(5)]
    writes: list[int] = []
    write = store.write_typing

    def counting(engine: Engine, changes: store.TypingChanges) -> None:
        write(engine, changes)
        writes.append(len(changes))  # counted once written

    monkeypatch.setattr(store, "write_typing", counting)
    for session_id in sessions:
        assert session_id is not None
        for user in ("ann", "ben"):
            await indicators.update(session_id=session_id, user_id=user, is_typing=True)
    # The background writer batches what arrived meanwhile: wait for all ten, then see how.
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 10
    while sum(writes) < 10:
        assert loop.time() < deadline, writes
        await asyncio.sleep(0.01)
    assert sum(writes) == 10 and len(writes) < 10, writes  # batched, all of it
    for session_id in sessions:
        assert session_id is not None
        assert _typing_rows(engine, session_id) == ["ann", "ben"]


async def test_readers_here_see_what_was_broadcast_at_once(
    engine: Engine, indicators: TypingIndicators
) -> None:
    session_id = store.create_session(engine, owner="o", title="t").id
    assert session_id is not None
    await indicators.update(session_id=session_id, user_id="cy", is_typing=True)
    assert [t.user_id for t in await indicators.active(session_id)] == ["cy"]
    await indicators.update(session_id=session_id, user_id="cy", is_typing=False)
    assert await indicators.active(session_id) == []


async def test_a_failed_write_keeps_the_changes_for_the_next(
    engine: Engine, indicators: TypingIndicators, monkeypatch: pytest.MonkeyPatch
) -> None:
    session_id = store.create_session(engine, owner="o", title="t").id
    assert session_id is not None
    write = store.write_typing

    def unavailable(engine: Engine, changes: store.TypingChanges) -> None:
        raise ConnectionError("database unavailable")

    monkeypatch.setattr(store, "write_typing", unavailable)
    await indicators.update(session_id=session_id, user_id="dee", is_typing=True)
    with pytest.raises(ConnectionError):
        await indicators.flush()
    monkeypatch.setattr(store, "write_typing", write)
    await indicators.flush()
    assert _typing_rows(engine, session_id) == ["dee"]
