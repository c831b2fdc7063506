"""The latest view of each running task, kept fresh by one refresher per task while anyone reads it.

A status read of a running task costs a Temporal describe and a ``progress`` query. Under ingest
load that round trip takes tens of milliseconds, and hundreds while a burst of uploads starts its
workflows. Here each running task that somebody reads gets one background refresher, which asks
the workflow every ``refresh_s``; reads answer with its latest view at once. So a status poll
takes about a millisecond, and a thousand clients watching one task cost the workflow service
what one does. The price is that a view can be up to ``refresh_s`` plus one round trip old,
never more than ``max_age_s``.

A refresher stops once its task ends or leaves the running states, or when nobody has read it
for ``linger_s``. Callers about to act on a task (retry, cancel) read it fresh, not from here.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Generic, Protocol, TypeVar

log = logging.getLogger(__name__)


class CachedView(Protocol):
    @property
    def owner(self) -> str: ...

    @property
    def live(self) -> bool:
        """Still worth refreshing: running, and answered by the workflow or about to be."""


V = TypeVar("V", bound=CachedView)
# Reads ``task_id`` anew: None when the task is gone.
Fetch = Callable[[str], Awaitable[V | None]]


@dataclass
class _Entry(Generic[V]):
    view: V
    taken_at: float
    read_at: float
    refresher: asyncio.Task[None] | None = field(default=None, repr=False)


class ProgressCache(Generic[V]):
    def __init__(
        self,
        fetch: Fetch[V],
        *,
        refresh_s: float = 0.25,
        max_age_s: float = 1.0,
        linger_s: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._fetch = fetch
        self.refresh_s = refresh_s
        self.max_age_s = max_age_s
        self.linger_s = linger_s
        self._clock = clock
        self._entries: dict[str, _Entry[V]] = {}
        self._closed = False

    def get(self, task_id: str, *, owner: str) -> V | None:
        """The task's latest view if it is fresh enough, and starts refreshing it; else None.
        A view of another owner's task is never returned."""
        entry = self._entries.get(task_id)
        now = self._clock()
        if entry is None or entry.view.owner != owner or now - entry.taken_at > self.max_age_s:
            return None
        entry.read_at = now
        self._ensure_refresher(task_id, entry)
        return entry.view

    def put(self, task_id: str, view: V) -> None:
        """Remember ``view``, just read; a live one is refreshed from the next read on."""
        if self._closed or not view.live:
            self.forget(task_id)
            return
        now = self._clock()
        entry = self._entries.get(task_id)
        if entry is None:
            self._entries[task_id] = _Entry(view, taken_at=now, read_at=now)
        else:
            entry.view, entry.taken_at = view, now

    def forget(self, task_id: str) -> None:
        """Drop the task's view: the next read asks the workflow (after a cancel, a deletion)."""
        entry = self._entries.pop(task_id, None)
        if entry is not None and entry.refresher is not None:
            entry.refresher.cancel()

    @property
    def refreshing(self) -> int:
        return sum(
            1 for e in self._entries.values() if e.refresher is not None and not e.refresher.done()
        )

    async def aclose(self) -> None:
        self._closed = True
        refreshers = [e.refresher for e in self._entries.values() if e.refresher is not None]
        self._entries.clear()
        for refresher in refreshers:
            refresher.cancel()
        for refresher in refreshers:
            with contextlib.suppress(asyncio.CancelledError):
                await refresher

    def _ensure_refresher(self, task_id: str, entry: _Entry[V]) -> None:
        if self._closed or (entry.refresher is not None and not entry.refresher.done()):
            return
        entry.refresher = asyncio.create_task(
            self._refresh(task_id, entry), name=f"progress-refresh-{task_id}"
        )

    async def _refresh(self, task_id: str, entry: _Entry[V]) -> None:
        while self._entries.get(task_id) is entry:
            await asyncio.sleep(self.refresh_s)
            if self._clock() - entry.read_at > self.linger_s:
                break  # nobody is looking any more
            asked_at = self._clock()
            try:
                view = await self._fetch(task_id)
            except Exception as exc:
                # Reads fall back to asking directly once the view is older than max_age_s,
                # and report the failure themselves.
                log.debug("refreshing task %s failed: %s", task_id, exc)
                continue
            if self._entries.get(task_id) is not entry:
                return  # forgotten while we asked
            if asked_at < entry.taken_at:
                continue  # a reader put a newer view meanwhile: never step back to ours
            if view is None or not view.live:
                break
            entry.view, entry.taken_at = view, self._clock()
        if self._entries.get(task_id) is entry:
            del self._entries[task_id]
