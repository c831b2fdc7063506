"""The end a task's row should show once its workflow has closed.

The workflow writes its end state to the row before it closes, so the row and the workflow
agree. A workflow that closed without that write leaves the row behind: one terminated from
the Temporal Web UI or CLI, one that timed out, or a run of the code before the
``completion-record-outlasts-cancel`` patch, cancelled while it wrote ``completed`` (it closed
CANCELED with the row still ``running``). Such a row would read ``running`` forever. The status
view repairs it from the closed workflow's status, with these functions.
"""

from __future__ import annotations

import dataclasses

from temporalio.client import WorkflowExecutionStatus

from core.ingestion.tables import FileProcessingTask, ProcessingState
from workflows.contracts import Progress, Status, Step

_CLOSED = {
    WorkflowExecutionStatus.COMPLETED: "completed",
    WorkflowExecutionStatus.CANCELED: "cancelled",
    WorkflowExecutionStatus.FAILED: "failed",
    WorkflowExecutionStatus.TERMINATED: "terminated",
    WorkflowExecutionStatus.TIMED_OUT: "timed_out",
}
_ACTIVE = (ProcessingState.QUEUED, ProcessingState.RUNNING, ProcessingState.RETRYING)


def needs_repair(task: FileProcessingTask, workflow_status: WorkflowExecutionStatus) -> bool:
    """The workflow has closed, yet its row still waits for something: work, or a retry."""
    if workflow_status not in _CLOSED:
        return False  # running, or continued as new (the next run writes the row)
    # Active, or a failure that waits for a retry (``state`` stores which failures do).
    return task.state in _ACTIVE or task.state == ProcessingState.WAITING_FOR_RETRY


def closed_progress(
    row: Progress, workflow_status: WorkflowExecutionStatus, result: Progress | None
) -> Progress:
    """The row's progress with the end ``workflow_status`` means; ``result`` is what a
    completed workflow returned (its own final progress), when it could be read."""
    if workflow_status == WorkflowExecutionStatus.COMPLETED:
        if result is not None and result.status == Status.COMPLETED:
            return result
        return dataclasses.replace(row, status=Status.COMPLETED, current_step=Step.DONE)
    if workflow_status == WorkflowExecutionStatus.CANCELED:
        return dataclasses.replace(row, status=Status.CANCELLED, retryable=False)
    ended = _CLOSED[workflow_status]
    return dataclasses.replace(
        row,
        status=Status.FAILED,
        retryable=False,
        error_code=row.error_code or f"workflow_{ended}",
        error_message=row.error_message
        or f"The ingestion workflow {ended.replace('_', ' ')} before it finished; "
        "upload the file again.",
    )
