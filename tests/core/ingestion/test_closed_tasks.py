"""core/ingestion/closed_tasks.py: which rows a closed workflow leaves behind, and the end
they get."""

from __future__ import annotations

import pytest
from temporalio.client import WorkflowExecutionStatus as Closed

from core.ingestion.closed_tasks import closed_progress, needs_repair
from core.ingestion.tables import FileProcessingTask, ProcessingState
from workflows.contracts import Progress


def row(state: ProcessingState) -> FileProcessingTask:
    return FileProcessingTask(document_id="d", workflow_id="ingest-t", state=state)


@pytest.mark.parametrize(
    "status", [ProcessingState.QUEUED, ProcessingState.RUNNING, ProcessingState.RETRYING]
)
def test_an_active_row_behind_a_closed_workflow_needs_repair(status: ProcessingState) -> None:
    for closed in (Closed.COMPLETED, Closed.CANCELED, Closed.TERMINATED, Closed.TIMED_OUT):
        assert needs_repair(row(status), closed)
    assert not needs_repair(row(status), Closed.RUNNING)
    assert not needs_repair(row(status), Closed.CONTINUED_AS_NEW)


def test_only_a_failure_that_waits_for_a_retry_needs_repair() -> None:
    assert needs_repair(row(ProcessingState.WAITING_FOR_RETRY), Closed.TERMINATED)
    assert not needs_repair(row(ProcessingState.FAILED), Closed.FAILED)
    assert not needs_repair(row(ProcessingState.COMPLETED), Closed.COMPLETED)
    assert not needs_repair(row(ProcessingState.CANCELLED), Closed.CANCELED)


def test_the_end_follows_the_closed_status() -> None:
    running = Progress(status="running", current_step="vectorize", chunks_embedded=6)
    cancelled = closed_progress(running, Closed.CANCELED, None)
    assert (cancelled.status, cancelled.retryable, cancelled.chunks_embedded) == (
        "cancelled",
        False,
        6,
    )
    terminated = closed_progress(running, Closed.TERMINATED, None)
    assert (terminated.status, terminated.retryable) == ("failed", False)
    assert terminated.error_code == "workflow_terminated"
    assert terminated.error_message is not None and "terminated" in terminated.error_message
    timed_out = closed_progress(running, Closed.TIMED_OUT, None)
    assert timed_out.error_code == "workflow_timed_out"
    assert timed_out.error_message is not None and "timed out" in timed_out.error_message

    waiting = Progress(status="failed", error_code="step_failed", error_message="qdrant down")
    waiting.retryable = True
    given_up = closed_progress(waiting, Closed.TERMINATED, None)
    assert (given_up.error_code, given_up.error_message) == ("step_failed", "qdrant down")
    assert given_up.retryable is False

    finished = Progress(status="completed", current_step="done", chunk_count=9)
    assert closed_progress(running, Closed.COMPLETED, finished) == finished
    unread = closed_progress(running, Closed.COMPLETED, None)
    assert (unread.status, unread.current_step) == ("completed", "done")
