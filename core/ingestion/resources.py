"""What ingestion needs of a process's resources (``core.runtime.Resources`` has it all).

A protocol rather than the class itself: ``core.runtime`` builds the resources from every
feature, so a feature that imported it back would close an import cycle.
"""

from __future__ import annotations

from typing import Protocol

from sqlalchemy import Engine

from core.ingestion.storage import DocumentStorage
from core.search.vectorstore import VectorStore
from core.settings import Settings
from workflows.contracts import IngestOptions


class IngestionResources(Protocol):
    @property
    def settings(self) -> Settings: ...

    @property
    def engine(self) -> Engine: ...

    @property
    def storage(self) -> DocumentStorage: ...

    @property
    def vectors(self) -> VectorStore: ...


def ingest_options(settings: Settings) -> IngestOptions:
    return IngestOptions(
        extract_pages_per_activity=settings.extract_pages_per_activity,
        vectorize_chunks_per_activity=settings.vectorize_chunks_per_activity,
        max_attempts=settings.activity_max_attempts,
        heartbeat_timeout_seconds=settings.activity_heartbeat_timeout_seconds,
        failed_retention_hours=settings.failed_task_retention_hours,
        replace_grace_seconds=settings.replace_grace_seconds,
        extract_parallel_batches=settings.extract_parallel_batches,
        vectorize_parallel_batches=settings.vectorize_parallel_batches,
        text_task_queue=settings.text_task_queue,
        embedding_task_queue=settings.embedding_task_queue,
        continue_as_new_after_events=settings.continue_as_new_after_events,
    )
