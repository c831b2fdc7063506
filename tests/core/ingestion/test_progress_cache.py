"""``ProgressCache`` with a scripted task source: what reads cost, when refreshing starts and
stops, how old a view may get, and that one owner never sees another's task."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest

from core.ingestion.progress_cache import ProgressCache
from tests.helpers import until

REFRESH_S = 0.01


@dataclass(frozen=True)
class View:
    owner: str
    step: int
    live: bool = True


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Source:
    """The task's current state, and how often it was asked."""

    def __init__(self) -> None:
        self.state: View | None = View("alice", 1)
        self.calls = 0
        self.failing = False

    async def fetch(self, task_id: str) -> View | None:
        self.calls += 1
        if self.failing:
            raise ConnectionError("workflow service unreachable")
        return self.state


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def source() -> Source:
    return Source()


@pytest.fixture
async def cache(source: Source, clock: Clock) -> AsyncIterator[ProgressCache[View]]:
    views = ProgressCache(
        source.fetch, refresh_s=REFRESH_S, max_age_s=1.0, linger_s=5.0, clock=clock
    )
    yield views
    await views.aclose()


def watch(cache: ProgressCache[View]) -> None:
    """A running task that somebody reads: its refresher runs."""
    cache.put("t1", View("alice", 1))
    assert cache.get("t1", owner="alice") == View("alice", 1)


async def test_a_put_view_answers_its_owner_only(
    cache: ProgressCache[View], source: Source
) -> None:
    assert cache.get("t1", owner="alice") is None
    cache.put("t1", View("alice", 1))
    assert cache.get("t1", owner="alice") == View("alice", 1)
    assert cache.get("t1", owner="mallory") is None
    assert source.calls == 0


async def test_a_view_that_is_not_live_is_not_kept(cache: ProgressCache[View]) -> None:
    cache.put("t1", View("alice", 1))
    cache.put("t1", View("alice", 4, live=False))
    assert cache.get("t1", owner="alice") is None
    assert cache.refreshing == 0


async def test_a_put_alone_starts_no_refresher(cache: ProgressCache[View], source: Source) -> None:
    cache.put("t1", View("alice", 1))
    await asyncio.sleep(REFRESH_S * 5)
    assert source.calls == 0 and cache.refreshing == 0


async def test_many_readers_cost_one_refresh_per_interval(
    cache: ProgressCache[View], source: Source
) -> None:
    cache.put("t1", View("alice", 1))
    for _ in range(1000):
        assert cache.get("t1", owner="alice") is not None
    assert source.calls == 0 and cache.refreshing == 1
    source.state = View("alice", 2)
    await until(lambda: cache.get("t1", owner="alice") == View("alice", 2))
    # The refresher asks once per interval, not once per read.
    calls = source.calls
    await asyncio.sleep(REFRESH_S * 10)
    assert source.calls - calls <= 12


@pytest.mark.parametrize(
    "latest", [View("alice", 4, live=False), None], ids=["stopped running", "gone"]
)
async def test_refreshing_stops_when_the_task_stops_running_or_is_gone(
    cache: ProgressCache[View], source: Source, latest: View | None
) -> None:
    watch(cache)
    source.state = latest
    await until(lambda: cache.refreshing == 0)
    # The last running view is not served on: the next reader asks afresh.
    assert cache.get("t1", owner="alice") is None


async def test_refreshing_stops_when_nobody_reads(
    cache: ProgressCache[View], source: Source, clock: Clock
) -> None:
    watch(cache)
    await until(lambda: source.calls >= 2)
    clock.now += cache.linger_s + 0.1
    await until(lambda: cache.refreshing == 0)
    calls = source.calls
    await asyncio.sleep(REFRESH_S * 5)
    assert source.calls == calls


async def test_a_view_older_than_max_age_is_not_served(
    cache: ProgressCache[View], source: Source, clock: Clock
) -> None:
    watch(cache)
    source.failing = True  # the refresher keeps failing: the view cannot be renewed
    await until(lambda: source.calls >= 2)
    clock.now += cache.max_age_s / 2
    assert cache.get("t1", owner="alice") == View("alice", 1)
    clock.now += cache.max_age_s
    assert cache.get("t1", owner="alice") is None


async def test_forget_drops_the_view_and_its_refresher(
    cache: ProgressCache[View], source: Source
) -> None:
    watch(cache)
    assert cache.refreshing == 1
    cache.forget("t1")
    assert cache.get("t1", owner="alice") is None
    await asyncio.sleep(0)
    assert cache.refreshing == 0


async def test_after_close_nothing_is_kept_or_refreshed(source: Source, clock: Clock) -> None:
    views = ProgressCache(source.fetch, refresh_s=REFRESH_S, clock=clock)
    views.put("t1", View("alice", 1))
    views.get("t1", owner="alice")
    await views.aclose()
    assert views.refreshing == 0
    views.put("t2", View("alice", 1))
    assert views.get("t2", owner="alice") is None


async def test_a_slow_refresh_never_replaces_a_newer_view(
    cache: ProgressCache[View], source: Source, clock: Clock
) -> None:
    release = asyncio.Event()
    asked = asyncio.Event()

    calls = 0

    async def slow_fetch(task_id: str) -> View | None:
        nonlocal calls
        calls += 1
        if calls > 1:
            await asyncio.Event().wait()  # later refreshes never answer: the first one decides
        asked.set()
        await release.wait()
        return View("alice", 1)  # what the workflow said when this refresh began

    cache._fetch = slow_fetch
    watch(cache)
    await asyncio.wait_for(asked.wait(), 2)
    clock.now += 0.5
    cache.put("t1", View("alice", 3))  # a reader's own, newer answer
    release.set()
    await until(lambda: calls > 1)
    assert cache.get("t1", owner="alice") == View("alice", 3)
