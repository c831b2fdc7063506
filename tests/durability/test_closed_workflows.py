"""A task's row and its workflow end the same way, even when the workflow closes around a cancel.

Issue 14, item 6. A cancel that arrived while the workflow recorded `completed` used to cancel
that write: the workflow closed CANCELED and the row stayed `running` for ever (status, SSE and
`docchat ingest` never ended; a later cancel answered 500). Now the write outlasts the cancel,
and a row whose workflow closed without writing its end is repaired by the status view.

Temporal, the worker, pypdf, MiniLM and Qdrant local mode are real. Two stand-ins, each said
where it is used: a failed first attempt of the final write, and a workflow that closes
without writing its row (as a run of the old code did).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from temporalio import workflow
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHandle
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from core.ingestion import records
from core.ingestion.tables import ProcessingState, ProcessingStatus
from core.search.embeddings import Embedder
from core.settings import Settings
from tests.helpers import api_client, upload, wait_for_status
from workflows.contracts import PROGRESS_QUERY, WORKFLOW_NAME, IngestInput, Progress, Status


class FinalRecordGate:
    """Holds the first write of `completed` until released, then fails it.

    The failure stands in for a write that did not happen: in the field, the cancel found the
    record activity not yet started, and the server dropped it with the closing workflow. A
    failed attempt makes that deterministic: only a workflow still waiting for the write
    retries it."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()
        self.attempts = 0

    def install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        real = records.record_progress

        def gated(engine: Any, task_id: str, progress: Progress, **kwargs: Any) -> None:
            if progress.status == Status.COMPLETED:
                self.attempts += 1
                if self.attempts == 1:
                    self.entered.set()
                    self.release.wait(60)
                    raise ConnectionError("database connection lost (simulated)")
            real(engine, task_id, progress, **kwargs)

        monkeypatch.setattr(records, "record_progress", gated)


@pytest.fixture
def gate(monkeypatch: pytest.MonkeyPatch) -> Iterator[FinalRecordGate]:
    held = FinalRecordGate()
    held.install(monkeypatch)
    try:
        yield held
    finally:
        held.release.set()


def services(client: httpx.AsyncClient) -> Any:
    return client._transport.app.state.services  # type: ignore[attr-defined]


async def wait_for_events(
    handle: WorkflowHandle[Any, Any], *kinds: EventType.ValueType, timeout: float = 30
) -> None:
    """Until the history holds ``kinds`` in this order (others may come between)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        wanted = list(kinds)
        async for event in handle.fetch_history_events():
            if wanted and event.event_type == wanted[0]:
                wanted.pop(0)
        if not wanted:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"{handle.id} never recorded {[EventType.Name(k) for k in kinds]}")


async def test_a_cancel_during_the_final_record_ends_completed_everywhere(
    settings: Settings, embedder: Embedder, corpus: Path, gate: FinalRecordGate
) -> None:
    async with api_client(settings, embedder) as client:
        accepted = (await upload(client, corpus / "minimal-document.pdf")).json()
        task_id = accepted["task_id"]
        assert await asyncio.to_thread(gate.entered.wait, 120), "never reached the final record"

        cancelled = await client.post(f"/docs/processing/{task_id}/cancel")
        assert cancelled.status_code == 200, cancelled.text
        handle = services(client).temporal.get_workflow_handle(accepted["data"]["workflow_id"])
        # The workflow has taken the cancel in (a workflow task completed after it) before the
        # write is let go: the old code had closed CANCELED by then.
        await wait_for_events(
            handle,
            EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CANCEL_REQUESTED,
            EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED,
        )
        gate.release.set()

        final, _ = await wait_for_status(client, task_id, timeout=60)
        assert final["status"] == "completed"
        assert final["progress_percentage"] == 100.0
        assert (await handle.describe()).status == WorkflowExecutionStatus.COMPLETED
        assert gate.attempts == 2  # the failed write was retried
        row = records.get_task(services(client).resources.engine, task_id)
        assert row is not None and row.status == ProcessingStatus.COMPLETED
        document = (await client.get(f"/docs/{accepted['document_id']}")).json()["data"]
        assert document["status"] == "ready"
        assert document["vector_count"] == document["chunk_count"] > 0

        again = await client.post(f"/docs/processing/{task_id}/cancel")
        assert again.status_code == 409
        assert again.json()["error"]["error_code"] == "task_finished"


@workflow.defn(name=WORKFLOW_NAME)
class ClosesWithoutRecording:
    """Stands in for a workflow that closes without writing its end to the row, as a run of
    the code before the fix did when a cancel met its final record. It answers the progress
    query as running, and writes nothing."""

    def __init__(self) -> None:
        self._progress = Progress(status=Status.RUNNING)

    @workflow.query(name=PROGRESS_QUERY)
    def progress(self) -> Progress:
        return self._progress

    @workflow.run
    async def run(self, job: IngestInput) -> Progress:
        await workflow.wait_condition(lambda: False)
        return self._progress


@contextlib.asynccontextmanager
async def stand_in_worker(client: Client, task_queue: str) -> AsyncIterator[None]:
    # Unsandboxed: the sandbox would re-import this test module and everything it imports.
    async with Worker(
        client,
        task_queue=task_queue,
        workflows=[ClosesWithoutRecording],
        workflow_runner=UnsandboxedWorkflowRunner(),
    ):
        yield


async def test_a_row_whose_workflow_closed_is_repaired_by_the_status_view(
    settings: Settings, embedder: Embedder, corpus: Path
) -> None:
    settings.embedded_worker = False
    async with api_client(settings, embedder) as client:
        temporal = services(client).temporal
        engine = services(client).resources.engine
        async with stand_in_worker(temporal, settings.temporal_task_queue):
            accepted = (await upload(client, corpus / "minimal-document.pdf")).json()
            task_id = accepted["task_id"]
            handle = temporal.get_workflow_handle(accepted["data"]["workflow_id"])
            running, _ = await wait_for_status(client, task_id, until={"running"}, timeout=30)
            assert running["source"] == "workflow"

            # Cancelled: the workflow closes CANCELED and the row still says queued.
            await handle.cancel()
            await wait_for_events(handle, EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CANCELED)
            row = records.get_task(engine, task_id)
            assert row is not None and row.state == ProcessingState.QUEUED

            final, _ = await wait_for_status(client, task_id, timeout=10)
            assert final["status"] == "cancelled"
            row = records.get_task(engine, task_id)
            assert row is not None and row.status == ProcessingStatus.CANCELLED
            document = records.get_document(engine, accepted["document_id"])
            assert document is not None and document.status.value == "cancelled"
            assert not (settings.uploads_dir / document.stored_name).exists()
            again = await client.post(f"/docs/processing/{task_id}/cancel")
            assert again.status_code == 409, again.text
            assert again.json()["error"]["error_code"] == "task_finished"

            # Terminated (from the Web UI, say): failed for good, and said so.
            other = (await upload(client, corpus / "002-trivial-libre-office-writer.pdf")).json()
            await temporal.get_workflow_handle(other["data"]["workflow_id"]).terminate("by hand")
            ended, _ = await wait_for_status(client, other["task_id"], timeout=10)
            assert ended["status"] == "failed"
            assert ended["retryable"] is False
            assert ended["error_code"] == "workflow_terminated"
            refused = await client.post(f"/docs/processing/{other['task_id']}/retry")
            assert refused.status_code == 409
            assert refused.json()["error"]["error_code"] == "retry_not_possible"
            events = await client.get(f"/docs/processing/{other['task_id']}/events")
            assert "event: end" in events.text  # the stream ends: it has an end to tell

    # A cancelled document can be uploaded again, and this time it is ingested for real.
    settings.embedded_worker = True
    async with api_client(settings, embedder) as client:
        again = (await upload(client, corpus / "minimal-document.pdf")).json()
        assert again["data"]["duplicate"] is False
        assert again["document_id"] != accepted["document_id"]
        done, _ = await wait_for_status(client, again["task_id"])
        assert done["status"] == "completed"
