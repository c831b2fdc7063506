"""``TaskWatchers`` on their own, with a fake task source: what a watch sends to whom, a task
that disappears while watched, the per-session limit, stopping."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest

from core.chat import task_progress
from core.chat.connections import ConnectionManager
from core.chat.task_progress import TaskWatchers
from core.errors import ConflictError, NotFoundError
from tests.core.chat.test_connections import RecordingSocket
from tests.helpers import until


@dataclass
class State:
    task_id: str
    status: str = "running"

    @property
    def ended(self) -> bool:
        return self.status == "completed"

    def as_dict(self) -> dict[str, Any]:
        return {"task_id": self.task_id, "status": self.status}


class FakeSource:
    """Tasks ``t…`` exist; a watcher gets the states put on its task's queue (None: deleted)."""

    def __init__(self) -> None:
        self.queues: dict[str, asyncio.Queue[State | None]] = {}

    async def view(self, task_id: str, *, owner: str) -> State:
        if not task_id.startswith("t"):
            raise NotFoundError(f"No processing task {task_id}.", error_code="task_not_found")
        return State(task_id, "completed" if task_id.startswith("tdone") else "running")

    def queue(self, task_id: str) -> asyncio.Queue[State | None]:
        return self.queues.setdefault(task_id, asyncio.Queue())

    async def events(self, task_id: str, *, owner: str) -> AsyncIterator[State]:
        queue = self.queue(task_id)
        while (state := await queue.get()) is not None:
            yield state
            if state.ended:
                return
        raise NotFoundError(f"No processing task {task_id}.", error_code="task_not_found")


@pytest.fixture
async def setup() -> AsyncIterator[tuple[TaskWatchers, FakeSource, list[RecordingSocket], Any]]:
    manager = ConnectionManager(ping_interval=3600)
    await manager.start()
    sockets = [RecordingSocket(), RecordingSocket()]
    connections = [await manager.connect(socket, 1) for socket in sockets]
    source = FakeSource()
    watchers = TaskWatchers(manager, source)
    yield watchers, source, sockets, connections[0]
    await watchers.stop()
    await manager.stop()


async def test_a_deleted_task_ends_its_watch_with_an_error_for_the_session(setup: Any) -> None:
    watchers, source, sockets, requester = setup
    await watchers.watch(1, ["t1", "t1"], owner="me", requester=requester)
    assert watchers.watching(1) == {"t1"}
    await source.queue("t1").put(State("t1"))
    await source.queue("t1").put(None)
    await until(lambda: not watchers.watching(1))
    await until(lambda: all(len(socket.sent) == 2 for socket in sockets))
    for socket in sockets:
        progress, error = socket.sent
        assert progress == {"type": "task_progress", "session_id": 1, "final": False} | {
            "task_id": "t1",
            "status": "running",
        }
        assert error["type"] == "error" and error["task_id"] == "t1"
        assert error["error"]["error_code"] == "task_not_found"


async def test_refusals_start_nothing(setup: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    watchers, _, sockets, requester = setup
    with pytest.raises(NotFoundError) as missing:
        await watchers.watch(1, ["t1", "x2"], owner="me", requester=requester)
    assert missing.value.details == {"task_ids": ["x2"]}
    monkeypatch.setattr(task_progress, "MAX_WATCHED_TASKS_PER_SESSION", 2)
    with pytest.raises(ConflictError):
        await watchers.watch(1, ["t1", "t2", "t3"], owner="me", requester=requester)
    await watchers.watch(1, ["tdone1"], owner="me", requester=requester)  # ended: no watcher
    assert watchers.watching(1) == set()
    await until(lambda: len(sockets[0].sent) == 1)
    assert sockets[0].sent[0]["final"] is True and sockets[1].sent == []


async def test_stopping_a_session_cancels_only_its_watchers(setup: Any) -> None:
    watchers, _, _, requester = setup
    await watchers.watch(1, ["t1"], owner="me", requester=requester)
    await watchers.watch(2, ["t1"], owner="me", requester=requester)
    await watchers.stop_session(1)
    assert watchers.watching(1) == set() and watchers.watching(2) == {"t1"}
