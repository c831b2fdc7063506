"""Processing tasks under ``/docs/processing``: live status, retry, cancel and history."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter
from sse_starlette import EventSourceResponse, ServerSentEvent

from api.deps import IngestionDep, PrincipalDep
from api.envelope import Envelope, error_responses, ok
from api.schemas import RetryAllResult, TaskStatus

router = APIRouter(prefix="/docs/processing", tags=["processing"])


@router.get(
    "/active",
    response_model=Envelope[list[TaskStatus]],
    summary="Tasks whose state is queued, running or retrying",
)
async def active_tasks(ingestion: IngestionDep, owner: PrincipalDep) -> Envelope[list[TaskStatus]]:
    views = await ingestion.active(owner=owner)
    return ok([TaskStatus(**view.as_dict()) for view in views])


@router.post(
    "/retry",
    response_model=Envelope[RetryAllResult],
    summary="Retry every failed task that a retry can help (e.g. after an outage)",
)
async def retry_all(ingestion: IngestionDep, owner: PrincipalDep) -> Envelope[RetryAllResult]:
    summary = await ingestion.retry_failed(owner=owner)
    result = RetryAllResult(resumed=summary.resumed, skipped=summary.skipped)
    return ok(result, resumed=len(summary.resumed), skipped=len(summary.skipped))


@router.get(
    "/{task_id}/status",
    response_model=Envelope[TaskStatus],
    summary="A task's status and per-step progress",
    responses=error_responses(404),
    description="`status` is the seed's stage (`pending`, `uploading`, `extracting`, `chunking`, "
    "`vectorizing`, `completed`, `failed`, or `cancelled`); `state` the lifecycle behind it "
    "(`queued`, `running`, `retrying`, `waiting_for_retry`, `failed`, `completed`, "
    "`cancelled`). A running task's is its workflow's own (`source: workflow`). Polls "
    "of one task share a view that is renewed every 0.25 s while anyone reads it, so it can be "
    "up to about a second old. Just after the upload, and once the task has finished, the "
    "stored row answers (`source: database`).",
)
async def task_status(
    task_id: str, ingestion: IngestionDep, owner: PrincipalDep
) -> Envelope[TaskStatus]:
    view = await ingestion.view(task_id, owner=owner)
    return ok(TaskStatus(**view.as_dict()))


@router.get(
    "/{task_id}/events",
    summary="Server-Sent Events: the task's status whenever it changes, until it ends",
    responses=error_responses(404),
    description="Each `progress` event carries the same data as the status endpoint; the first "
    "one is the current state, the last is an `end` event. Comments keep the stream alive.",
    response_class=EventSourceResponse,
)
async def task_events(
    task_id: str, ingestion: IngestionDep, owner: PrincipalDep
) -> EventSourceResponse:
    await ingestion.view(task_id, owner=owner)  # 404 before the stream starts

    async def stream() -> AsyncIterator[ServerSentEvent]:
        last: dict[str, Any] | None = None
        async for view in ingestion.events(task_id, owner=owner):
            last = TaskStatus(**view.as_dict()).model_dump(mode="json")
            yield ServerSentEvent(data=json.dumps(last), event="progress")
        yield ServerSentEvent(data=json.dumps(last), event="end")

    return EventSourceResponse(stream(), ping=10)


@router.post(
    "/{task_id}/retry",
    response_model=Envelope[TaskStatus],
    summary="Resume a failed task at the step that failed",
    responses=error_responses(404, 409),
    description="Finished steps and stored chunk batches are kept. 409 `retry_not_possible` "
    "for a permanent document fault, 409 `task_not_failed` when the task has not failed.",
)
async def retry_task(
    task_id: str, ingestion: IngestionDep, owner: PrincipalDep
) -> Envelope[TaskStatus]:
    view = await ingestion.retry(task_id, owner=owner)
    return ok(TaskStatus(**view.as_dict()))


@router.post(
    "/{task_id}/cancel",
    response_model=Envelope[TaskStatus],
    summary="Cancel a task: the running step stops within seconds, partial vectors are removed",
    responses=error_responses(404, 409),
)
async def cancel_task(
    task_id: str, ingestion: IngestionDep, owner: PrincipalDep
) -> Envelope[TaskStatus]:
    view = await ingestion.cancel(task_id, owner=owner)
    return ok(TaskStatus(**view.as_dict()), cancel_requested=True)


@router.get(
    "/{task_id}/history",
    response_model=Envelope[dict[str, Any]],
    summary="Steps with start and end times, attempts and errors, from the workflow history",
    responses=error_responses(404, 503),
)
async def task_history(
    task_id: str, ingestion: IngestionDep, owner: PrincipalDep
) -> Envelope[dict[str, Any]]:
    history = await ingestion.history(task_id, owner=owner)
    return ok(history.as_dict())
