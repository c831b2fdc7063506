"""Starting, reading and steering the re-index workflow, and the index versions around it:
the API's and the CLI's side of ``workflows.reindex``."""

from __future__ import annotations

import asyncio
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHandle
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from core.errors import ConflictError, NotFoundError
from core.search.index_versions import IndexState, IndexVersionConflictError, IndexVersions
from core.settings import Settings
from workflows.reindex_contracts import (
    REINDEX_PROGRESS_QUERY,
    REINDEX_WORKFLOW,
    ReindexInput,
    ReindexOptions,
    ReindexProgress,
    ReindexSignal,
    ReindexStatus,
    reindex_workflow_id,
)

QUERY_TIMEOUT = timedelta(seconds=5)
SIGNALS = {
    "pause": ReindexSignal.PAUSE,
    "resume": ReindexSignal.RESUME,
    "cancel": ReindexSignal.CANCEL,
    "retry": ReindexSignal.RETRY_FAILED,
}


class ReindexResources(Protocol):
    """What the re-index service needs of a process's resources (``core.runtime.Resources``
    has it; a protocol, since ``core.runtime`` imports the features and none imports it back)."""

    @property
    def settings(self) -> Settings: ...

    @property
    def versions(self) -> IndexVersions: ...


class ReindexRunningError(ConflictError):
    error_code = "reindex_running"


class ReindexNotRunningError(ConflictError):
    error_code = "reindex_not_running"


class ReindexNotFoundError(NotFoundError):
    error_code = "reindex_not_found"


class ReindexService:
    def __init__(self, resources: ReindexResources, temporal: Client) -> None:
        self._resources = resources
        self._temporal = temporal
        self._versions = resources.versions
        self._workflow_id = reindex_workflow_id(resources.settings.temporal_task_queue)

    def _handle(self) -> WorkflowHandle[Any, ReindexProgress]:
        return self._temporal.get_workflow_handle(self._workflow_id, result_type=ReindexProgress)

    async def running(self) -> bool:
        try:
            description = await self._handle().describe()
        except RPCError as err:
            if err.status == RPCStatusCode.NOT_FOUND:
                return False
            raise
        return description.status == WorkflowExecutionStatus.RUNNING

    async def start(self) -> dict[str, Any]:
        """Build the configured settings' version from the kept text, then switch to it."""
        if await self.running():
            raise ReindexRunningError(
                "A re-index is already running: see GET /index/reindex.",
                details={"workflow_id": self._workflow_id},
            )
        target = await asyncio.to_thread(self._versions.prepare_target, self._versions.configured)
        settings = self._resources.settings
        job = ReindexInput(
            version=target.version,
            collection=target.collection,
            options=ReindexOptions(
                window=settings.reindex_window,
                documents_per_run=settings.reindex_documents_per_run,
                max_attempts=settings.activity_max_attempts,
                heartbeat_timeout_seconds=settings.activity_heartbeat_timeout_seconds,
            ),
        )
        try:
            await self._temporal.start_workflow(
                REINDEX_WORKFLOW,
                job,
                id=self._workflow_id,
                task_queue=settings.temporal_task_queue,
            )
        except WorkflowAlreadyStartedError as err:
            raise ReindexRunningError("A re-index is already running.") from err
        return await self.status()

    async def status(self) -> dict[str, Any]:
        handle = self._handle()
        try:
            description = await handle.describe()
        except RPCError as err:
            if err.status == RPCStatusCode.NOT_FOUND:
                raise ReindexNotFoundError("No re-index has run on this install.") from err
            raise
        state = description.status
        if state == WorkflowExecutionStatus.RUNNING:
            progress: ReindexProgress = await handle.query(
                REINDEX_PROGRESS_QUERY, result_type=ReindexProgress, rpc_timeout=QUERY_TIMEOUT
            )
        elif state == WorkflowExecutionStatus.COMPLETED:
            progress = await handle.result()
        else:
            # Terminated or failed outright (not a document failure: those are listed).
            progress = ReindexProgress(status=str(state.name if state else "unknown").lower())
        return view(progress, workflow_id=self._workflow_id)

    async def signal(self, action: str) -> dict[str, Any]:
        if not await self.running():
            raise ReindexNotRunningError(f"No re-index is running to {action}.")
        await self._handle().signal(SIGNALS[action])
        return await self.status()

    async def delete_version(self, version: str) -> None:
        chosen = await asyncio.to_thread(self._versions.get, version)
        if chosen.state == IndexState.BUILDING and await self.running():
            raise IndexVersionConflictError(
                f"Index version {version} is being built by the running re-index: cancel it "
                "first (POST /index/reindex/cancel).",
                details={"version": version},
            )
        await asyncio.to_thread(self._versions.delete, version)


def view(
    progress: ReindexProgress, *, workflow_id: str, now: datetime | None = None
) -> dict[str, Any]:
    """The progress as clients read it, with the rate and the time left."""
    data = asdict(progress)
    rate: float | None = None
    eta: float | None = None
    if progress.started_at:
        started = datetime.fromisoformat(progress.started_at)
        end = datetime.fromisoformat(progress.finished_at) if progress.finished_at else None
        elapsed = ((end or now or datetime.now(UTC)) - started).total_seconds()
        elapsed -= progress.paused_seconds
        if elapsed > 0 and progress.chunks_done:
            rate = round(progress.chunks_done / elapsed, 2)
            left = max(0, progress.chunks_total - progress.chunks_done)
            eta = round(left / rate, 1) if progress.status not in _ENDED else 0.0
    data["workflow_id"] = workflow_id
    data["chunks_per_second"] = rate
    data["eta_seconds"] = eta
    data["progress_percentage"] = (
        round(100.0 * progress.chunks_done / progress.chunks_total, 2)
        if progress.chunks_total
        else (100.0 if progress.status == ReindexStatus.COMPLETED else 0.0)
    )
    return data


_ENDED = (ReindexStatus.COMPLETED, ReindexStatus.CANCELLED)
