"""Two ``python worker.py`` processes drain one task queue against one PostgreSQL database.

The workers share the uploads and artifacts folders (DOCCHAT_UPLOADS_DIR, DOCCHAT_ARTIFACTS_DIR,
as a volume does in production: any step of a document may run on either worker) but each has
its own DOCCHAT_DATA_DIR, so each keeps its own local Qdrant store, which shows where every
vector went. Ten documents are started through ``IngestionService`` from this process, which
never opens Qdrant.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
import uuid
from pathlib import Path

from sqlalchemy import Engine
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from core.ingestion import records
from core.ingestion.service import IngestionService
from core.ingestion.tables import FileProcessingTask, ProcessingStatus
from core.ingestion.uploads import ReceivedFile
from core.runtime import open_resources
from core.search.index_versions import alias_name
from core.search.vectorstore import VectorStore
from core.settings import Settings
from tests.helpers import load_worker_healthcheck
from tests.postgres import PostgresCluster
from tests.processes import Service, services, start_worker

SOURCES = ["minimal-document.pdf", "pdflatex-4-pages.pdf", "crazyones-pdfa.pdf"]
DOCUMENTS = 10


def unique_copy(source: Path, uploads: Path) -> ReceivedFile:
    """The PDF with a random comment after %%EOF: same text, new bytes, a new document."""
    data = source.read_bytes() + f"\n%{uuid.uuid4().hex}\n".encode()
    stored_name = f"{uuid.uuid4().hex}.pdf"
    (uploads / stored_name).write_bytes(data)
    return ReceivedFile(
        filename=source.name,
        stored_name=stored_name,
        path=uploads / stored_name,
        size_bytes=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
    )


def pid_of(identity: str) -> int:
    return int(identity.split("@", 1)[0])  # the SDK's default identity: <pid>@<host>


async def wait_for_pollers(client: Client, task_queue: str, workers: list[Service]) -> None:
    pollers = load_worker_healthcheck().poller_identities
    wanted = {worker.pid for worker in workers}
    deadline = time.monotonic() + 180
    while {pid_of(identity) for identity in await pollers(client, task_queue)} != wanted:
        for worker in workers:
            worker.check_running()
        assert time.monotonic() < deadline, "the workers did not start polling"
        await asyncio.sleep(0.5)


async def test_two_workers_ingest_each_document_exactly_once(
    tmp_path: Path,
    postgres: PostgresCluster,
    temporal_env: WorkflowEnvironment,
    corpus: Path,
) -> None:
    settings = Settings(
        data_dir=tmp_path / "api",
        uploads_dir=tmp_path / "shared" / "uploads",
        artifacts_dir=tmp_path / "shared" / "artifacts",
        database_url=postgres.url(postgres.create_database()),
        temporal_address=temporal_env.client.service_client.config.target_host,
        temporal_task_queue=f"test-{uuid.uuid4().hex[:12]}",
        embedding_threads=1,  # two workers on a 2-core machine
    )
    common = settings.model_dump(
        include={
            "uploads_dir",
            "artifacts_dir",
            "database_url",
            "temporal_address",
            "temporal_task_queue",
            "embedding_threads",
        }
    )
    resources = open_resources(settings)  # migrates; Qdrant stays closed in this process
    client = temporal_env.client
    workers = [
        start_worker(name, tmp_path, data_dir=tmp_path / name, **common)
        for name in ("worker-1", "worker-2")
    ]
    try:
        with services(*workers):
            await wait_for_pollers(client, settings.temporal_task_queue, workers)
            ingestion = IngestionService(resources, client)
            started = [
                await ingestion.start(
                    unique_copy(corpus / SOURCES[n % len(SOURCES)], settings.uploads_dir),
                    owner="local",
                )
                for n in range(DOCUMENTS)
            ]
            assert not any(item.duplicate for item in started)
            rows = await wait_until_done(resources.engine, [s.task.id for s in started])
            histories = [
                await client.get_workflow_handle(s.task.workflow_id).fetch_history()
                for s in started
            ]
            for worker in workers:  # their local Qdrant stores are free once they exit
                assert worker.stop() == 0, worker.log_tail()
    finally:
        resources.close()

    assert {row.status for row in rows} == {ProcessingStatus.COMPLETED}
    documents = [records.get_document(resources.engine, s.task.document_id) for s in started]
    chunk_counts = {d.id: d.chunk_count or 0 for d in documents if d is not None}
    assert len(chunk_counts) == DOCUMENTS and all(chunk_counts.values())

    vectors: dict[str, list[int]] = {document_id: [] for document_id in chunk_counts}
    for worker in workers:
        store = VectorStore.connect(
            url=None,
            api_key=None,
            path=tmp_path / worker.name / "qdrant",
            collection=alias_name(settings.qdrant_collection),
        )
        try:
            for document_id in chunk_counts:
                vectors[document_id].append(store.count(document_id))
        finally:
            store.close()
    for document_id, counts in vectors.items():
        assert sum(counts) == chunk_counts[document_id], (document_id, counts)
        assert 0 in counts, f"{document_id} has vectors in both workers' stores: {counts}"
    assert sum(map(sum, vectors.values())) == sum(chunk_counts.values())

    started_by = {
        pid_of(event.activity_task_started_event_attributes.identity)
        for history in histories
        for event in history.events
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED
    }
    assert started_by == {worker.pid for worker in workers}, "both workers did work"


async def wait_until_done(
    engine: Engine, task_ids: list[str], timeout: float = 240
) -> list[FileProcessingTask]:
    deadline = time.monotonic() + timeout
    while True:
        found = [await asyncio.to_thread(records.get_task, engine, task_id) for task_id in task_ids]
        rows = [row for row in found if row is not None]
        assert len(rows) == len(task_ids)
        if all(row.status.is_terminal for row in rows):
            return rows
        failed = [row for row in rows if row.status == ProcessingStatus.FAILED]
        assert not failed, [(row.id, row.error_code, row.error_message) for row in failed]
        assert time.monotonic() < deadline, [row.status for row in rows]
        await asyncio.sleep(0.5)
