"""How much ingestion work waits, from the SQL rows every API replica and worker shares.

The backpressure check (a principal's unfinished documents) and the queue metrics read the
same rows, so the 429 and the dashboard agree.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import REGISTRY, Collector
from sqlalchemy import Engine, func
from sqlmodel import col, select

from core.db import session_scope
from core.ingestion.tables import FileProcessingTask, ProcessingState

# Not finished and not waiting for a person: work the workers still owe.
UNFINISHED = (ProcessingState.QUEUED, ProcessingState.RUNNING, ProcessingState.RETRYING)


def unfinished_count(engine: Engine, *, owner: str) -> int:
    with session_scope(engine) as session:
        statement = (
            select(func.count())
            .select_from(FileProcessingTask)
            .where(FileProcessingTask.owner == owner)
            .where(col(FileProcessingTask.state).in_(list(UNFINISHED)))
        )
        return int(session.exec(statement).one())


@dataclass(frozen=True)
class QueueSnapshot:
    by_state: dict[str, int]
    oldest_queued_age_seconds: float


def queue_snapshot(engine: Engine, *, now: datetime | None = None) -> QueueSnapshot:
    now = now or datetime.now(UTC)
    with session_scope(engine) as session:
        rows = session.exec(
            select(FileProcessingTask.state, func.count())
            .where(col(FileProcessingTask.state).in_(list(UNFINISHED)))
            .group_by(FileProcessingTask.state)
        ).all()
        oldest = session.exec(
            select(func.min(FileProcessingTask.created_at)).where(
                FileProcessingTask.state == ProcessingState.QUEUED
            )
        ).one()
    by_state = {state.value: 0 for state in UNFINISHED}
    by_state.update({str(ProcessingState(state).value): int(count) for state, count in rows})
    age = 0.0
    if oldest is not None:
        if oldest.tzinfo is None:  # SQLite gives back naive UTC
            oldest = oldest.replace(tzinfo=UTC)
        age = max(0.0, (now - oldest).total_seconds())
    return QueueSnapshot(by_state=by_state, oldest_queued_age_seconds=age)


class QueueCollector(Collector):
    """``docchat_ingest_queue_depth{state}`` and the oldest queued task's age, read per scrape.

    One per process, registered once (``QUEUE_METRICS``): an app attaches its database while
    it serves and detaches it after. Only tests run two apps in one process; the collector
    then reports the one attached last (registering one collector per app would refuse the
    second app's: Prometheus names are unique per registry)."""

    def __init__(self) -> None:
        self._engines: list[Engine] = []
        self._lock = threading.Lock()

    def attach(self, engine: Engine) -> None:
        with self._lock:
            self._engines.append(engine)

    def detach(self, engine: Engine) -> None:
        with self._lock:
            if engine in self._engines:
                self._engines.remove(engine)

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            engine = self._engines[-1] if self._engines else None
        if engine is None:
            return
        snapshot = queue_snapshot(engine)
        depth = GaugeMetricFamily(
            "docchat_ingest_queue_depth",
            "Unfinished ingestion tasks of all principals, by state (queued, running, retrying).",
            labels=["state"],
        )
        for state, count in snapshot.by_state.items():
            depth.add_metric([state], count)
        yield depth
        yield GaugeMetricFamily(
            "docchat_ingest_queue_oldest_age_seconds",
            "Age of the oldest task still queued (0 when none is).",
            value=snapshot.oldest_queued_age_seconds,
        )


QUEUE_METRICS = QueueCollector()
REGISTRY.register(QUEUE_METRICS)
