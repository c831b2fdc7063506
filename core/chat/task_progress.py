"""Ingestion progress pushed to a chat session's WebSocket clients.

A client sends ``watch_tasks``; from then on every client of the session gets a
``task_progress`` message (the status endpoint's fields) whenever a watched task changes,
until it ends. There is one watcher per (session, task), reading ``IngestionService.events``,
and a session's watchers stop when its last client in this process leaves.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from typing import Any, Protocol

from core.chat.connections import Connection, ConnectionManager
from core.errors import AppError, ConflictError, NotFoundError, ServiceUnavailableError

log = logging.getLogger("docchat.chat")

MAX_WATCHED_TASKS_PER_SESSION = 100


class TaskState(Protocol):
    """What a watcher needs of a task view (``core.ingestion.service.TaskView`` is one)."""

    @property
    def ended(self) -> bool: ...

    def as_dict(self) -> dict[str, Any]: ...


class TaskSource(Protocol):
    """Where task states come from (``core.ingestion.service.IngestionService`` is one)."""

    async def view(self, task_id: str, *, owner: str) -> TaskState: ...

    def events(self, task_id: str, *, owner: str) -> AsyncIterator[TaskState]: ...


def progress_message(session_id: int, state: TaskState) -> dict[str, Any]:
    """The ``task_progress`` message: the status endpoint's fields, and ``final`` on the last."""
    return {"type": "task_progress", "session_id": session_id, "final": state.ended} | (
        state.as_dict()
    )


def task_error_message(session_id: int, task_id: str, exc: AppError) -> dict[str, Any]:
    error = {
        "error_code": exc.error_code,
        "message": exc.message,
        "details": exc.details,
        "timestamp": datetime.now(UTC).isoformat(),
    }
    return {"type": "error", "session_id": session_id, "task_id": task_id, "error": error}


class TaskWatchers:
    def __init__(self, connections: ConnectionManager, source: TaskSource | None) -> None:
        self._connections = connections
        self._source = source
        self._watchers: dict[tuple[int, str], asyncio.Task[None]] = {}

    def watching(self, session_id: int) -> set[str]:
        """The tasks this process watches for the session."""
        return {task_id for (session, task_id) in self._watchers if session == session_id}

    async def watch(
        self, session_id: int, task_ids: Sequence[str], *, owner: str, requester: Connection
    ) -> None:
        """Watch ``task_ids`` for the session. A new watcher sends each state to every client,
        the current one first; a task watched already, or ended, sends its current state to
        ``requester`` alone (the others have it, or nothing is left to watch)."""
        states = await self._current(list(dict.fromkeys(task_ids)), owner=owner)
        new = [
            task_id
            for task_id, state in states.items()
            if (session_id, task_id) not in self._watchers and not state.ended
        ]
        if len(self.watching(session_id)) + len(new) > MAX_WATCHED_TASKS_PER_SESSION:
            raise ConflictError(
                f"A session can watch at most {MAX_WATCHED_TASKS_PER_SESSION} tasks at a time.",
                error_code="too_many_watched_tasks",
                details={"limit": MAX_WATCHED_TASKS_PER_SESSION},
            )
        for task_id, state in states.items():
            if task_id in new:
                self._start(session_id, task_id, owner)
            else:  # watched already, or over and done with: nothing will change for the others
                message = progress_message(session_id, state)
                await self._connections.send_personal_message(requester, message)

    async def _current(self, task_ids: list[str], *, owner: str) -> dict[str, TaskState]:
        """Each task's state now; ``task_not_found`` naming every unknown one."""
        source = self._require_source()
        results = await asyncio.gather(
            *(source.view(task_id, owner=owner) for task_id in task_ids), return_exceptions=True
        )
        missing = [
            task_id
            for task_id, result in zip(task_ids, results, strict=True)
            if isinstance(result, NotFoundError)
        ]
        if missing:
            raise NotFoundError(
                f"No processing task {', '.join(missing)}.",
                error_code="task_not_found",
                details={"task_ids": missing},
            )
        states: dict[str, TaskState] = {}
        for task_id, result in zip(task_ids, results, strict=True):
            if isinstance(result, BaseException):  # the service failed: not the client's fault
                raise result
            states[task_id] = result
        return states

    async def stop_session(self, session_id: int) -> None:
        """Stop the session's watchers (its last client here left)."""
        await _cancel([task for (s, _), task in self._watchers.items() if s == session_id])

    async def stop(self) -> None:
        await _cancel(list(self._watchers.values()))

    def _require_source(self) -> TaskSource:
        if self._source is None:
            raise ServiceUnavailableError(
                "Task progress is not available on this server.",
                error_code="task_progress_unavailable",
            )
        return self._source

    def _start(self, session_id: int, task_id: str, owner: str) -> None:
        key = (session_id, task_id)
        task = asyncio.create_task(
            self._run(session_id, task_id, owner), name=f"chat-watch-{session_id}-{task_id}"
        )
        self._watchers[key] = task
        task.add_done_callback(lambda done: self._forget(key, done))

    def _forget(self, key: tuple[int, str], task: asyncio.Task[None]) -> None:
        if self._watchers.get(key) is task:
            del self._watchers[key]

    async def _run(self, session_id: int, task_id: str, owner: str) -> None:
        source = self._require_source()
        try:
            async for state in source.events(task_id, owner=owner):
                message = progress_message(session_id, state)
                await self._connections.broadcast_to_session(session_id, message)
        except AppError as exc:  # e.g. the document was deleted while it was watched
            message = task_error_message(session_id, task_id, exc)
            await self._connections.broadcast_to_session(session_id, message)
        except Exception:
            log.exception("watching task %s for session %s failed", task_id, session_id)
            failed = AppError("Watching the task failed; the error has been logged.")
            message = task_error_message(session_id, task_id, failed)
            await self._connections.broadcast_to_session(session_id, message)


async def _cancel(tasks: list[asyncio.Task[None]]) -> None:
    for task in tasks:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
