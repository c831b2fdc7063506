"""Processing tasks under ``/docs/processing``: live status read from the workflow."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import IngestionDep, PrincipalDep
from api.envelope import Envelope, ok
from api.schemas import TaskStatus

router = APIRouter(prefix="/docs/processing", tags=["processing"])


@router.get(
    "/active",
    response_model=Envelope[list[TaskStatus]],
    summary="Tasks that are queued, running or retrying",
)
async def active_tasks(ingestion: IngestionDep, owner: PrincipalDep) -> Envelope[list[TaskStatus]]:
    views = await ingestion.active(owner=owner)
    return ok([TaskStatus(**view.as_dict()) for view in views])


@router.get(
    "/{task_id}/status",
    response_model=Envelope[TaskStatus],
    summary="A task's status and per-step progress",
)
async def task_status(
    task_id: str, ingestion: IngestionDep, owner: PrincipalDep
) -> Envelope[TaskStatus]:
    view = await ingestion.view(task_id, owner=owner)
    return ok(TaskStatus(**view.as_dict()))
