"""Starting, reading and stopping ingestion tasks: the API's side of the workflow.

Workflows are addressed by workflow id, never by run id, so a reset from the Temporal Web UI
(which starts a new run) is followed transparently.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections.abc import AsyncIterator, Awaitable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError
from temporalio.api.enums.v1 import PendingActivityState
from temporalio.client import (
    Client,
    WorkflowExecutionDescription,
    WorkflowExecutionStatus,
    WorkflowHandle,
)
from temporalio.common import Priority
from temporalio.service import RPCError, RPCStatusCode

from core.errors import (
    ConflictError,
    NotFoundError,
    ServiceUnavailableError,
    TooManyRequestsError,
)
from core.ingestion import records
from core.ingestion.backlog import unfinished_count
from core.ingestion.closed_tasks import closed_progress, needs_repair
from core.ingestion.progress_cache import ProgressCache
from core.ingestion.resources import IngestionResources, ingest_options
from core.ingestion.storage import DocumentStorage
from core.ingestion.tables import Document, DocumentStatus, FileProcessingTask, ProcessingState
from core.ingestion.task_history import TaskHistory, summarize
from core.ingestion.uploads import ReceivedFile
from core.ingestion.workflow_calls import unavailable, workflow_call, workflow_closed
from core.observability.metrics import UPLOADS_REFUSED
from core.texts import PageText
from workflows.contracts import (
    PROGRESS_QUERY,
    RETRY_SIGNAL,
    WORKFLOW_NAME,
    IngestInput,
    Progress,
    Replacement,
    Status,
    Step,
    StepProgress,
    public_status,
    task_state,
    workflow_id_for,
)

log = logging.getLogger(__name__)
R = TypeVar("R")

QUERY_TIMEOUT = timedelta(seconds=2)
ACTIVE_STATES = (ProcessingState.QUEUED, ProcessingState.RUNNING, ProcessingState.RETRYING)
# A failed task is not final: a retryable failure waits in its open workflow for a retry.
FINAL_STATES = (ProcessingState.COMPLETED, ProcessingState.CANCELLED)
FAILED_STATES = (ProcessingState.WAITING_FOR_RETRY, ProcessingState.FAILED)


@dataclass(frozen=True)
class StartedTask:
    task: FileProcessingTask
    duplicate: bool


@dataclass
class RetrySummary:
    resumed: list[str] = field(default_factory=list)
    skipped: list[dict[str, str]] = field(default_factory=list)


@dataclass(frozen=True)
class ActivityAttempt:
    attempt: int
    last_failure: str | None


@dataclass(frozen=True)
class TaskView:
    """A task as clients see it: live workflow state when running, the SQL row otherwise."""

    task: FileProcessingTask
    progress: Progress
    source: str
    activity: ActivityAttempt | None

    @property
    def owner(self) -> str:
        return self.task.owner

    @property
    def live(self) -> bool:
        """Still running by its row and its workflow: worth keeping fresh for readers."""
        return self.task.state in ACTIVE_STATES and not self.ended

    @property
    def ended(self) -> bool:
        """Nothing will change any more: completed, cancelled, or failed beyond a retry."""
        status = self.progress.status
        return status in (Status.COMPLETED, Status.CANCELLED) or (
            status == Status.FAILED and not self.progress.retryable
        )

    @property
    def state(self) -> str:
        """The lifecycle (``workflows.contracts.State``): ``running``, ``waiting_for_retry``..."""
        return task_state(self.progress.status, retryable=self.progress.retryable)

    @property
    def status(self) -> str:
        """The seed's stage: ``pending``, ``extracting``, ..., ``completed``, ``failed``."""
        return public_status(self.state, self.progress.current_step)

    def as_dict(self) -> dict[str, Any]:
        p = self.progress
        return {
            "task_id": self.task.id,
            "document_id": self.task.document_id,
            "workflow_id": self.task.workflow_id,
            "status": self.status,
            "state": self.state,
            "current_step": p.current_step,
            **{name: getattr(p, name) for name in records.MIRRORED_FIELDS},
            "retryable": p.retryable,
            "attempt": self.activity.attempt if self.activity else None,
            "last_failure": self.activity.last_failure if self.activity else None,
            "created_at": _iso(self.task.created_at),
            "started_at": _iso(self.task.started_at),
            "updated_at": _iso(self.task.updated_at),
            "completed_at": _iso(self.task.completed_at),
            "source": self.source,
        }


class IngestionService:
    def __init__(self, resources: IngestionResources, client: Client) -> None:
        self._resources = resources
        self._client = client
        self._views: ProgressCache[TaskView] = ProgressCache(self._read)

    async def aclose(self) -> None:
        await self._views.aclose()

    @property
    def _engine(self) -> Engine:
        return self._resources.engine

    async def admit(self, *, owner: str) -> None:
        """Backpressure: refuse (429, before the body is read) a principal whose unfinished
        documents reached ``max_unfinished_per_principal``; the others are not slowed."""
        settings = self._resources.settings
        cap = settings.max_unfinished_per_principal
        if cap <= 0:
            return
        unfinished = await asyncio.to_thread(unfinished_count, self._engine, owner=owner)
        if unfinished < cap:
            return
        UPLOADS_REFUSED.inc()
        raise TooManyRequestsError(
            f"{unfinished} of your documents are still being ingested (the cap is {cap}): "
            "upload more once some have finished.",
            error_code="ingest_backlog_full",
            details={
                "unfinished": unfinished,
                "limit": cap,
                "retry_after_seconds": settings.backlog_retry_after_seconds,
            },
        )

    async def start(self, received: ReceivedFile, *, owner: str) -> StartedTask:
        """Start ingesting ``received``, or answer with the document that has the same bytes."""
        try:
            existing = await self._existing_copy(received, owner=owner)
            if existing is not None:
                return existing
            try:
                task = await self._start_new(received, owner=owner)
            except IntegrityError:
                # A concurrent upload of the same bytes won the race: answer with its document.
                existing = await self._existing_copy(received, owner=owner)
                if existing is None:
                    raise
                return existing
        except BaseException:
            # Whatever went wrong (the database, the workflow service, a client that hung up),
            # no row owns the received file now: it must not stay behind in uploads/.
            await asyncio.shield(asyncio.to_thread(received.path.unlink, missing_ok=True))
            raise
        # Until the workflow runs its first task, the row's "queued" is its whole state: polls
        # right after the upload need not wait for that task (under a burst, a query does).
        self._views.put(task.id, TaskView(task, _progress_from_row(task), "database", None))
        return StartedTask(task=task, duplicate=False)

    async def _existing_copy(self, received: ReceivedFile, *, owner: str) -> StartedTask | None:
        found = await asyncio.to_thread(
            records.find_document_by_hash, self._engine, owner=owner, sha256=received.sha256
        )
        if found is None:
            return None
        document, task = found
        cancelled = document.status == DocumentStatus.CANCELLED
        if task is not None and not cancelled:
            # The row may lag the workflow by a moment; the workflow's own word decides.
            cancelled = (await self._view(task)).progress.status == Status.CANCELLED
        if cancelled or task is None:
            # A cancelled copy was never ingested: uploading it again means "do it now".
            await self.delete_document(document.id, owner=owner)
            return None
        await asyncio.to_thread(received.path.unlink, missing_ok=True)
        return StartedTask(task=task, duplicate=True)

    async def _start_new(self, received: ReceivedFile, *, owner: str) -> FileProcessingTask:
        document = Document(
            filename=received.filename,
            stored_name=received.stored_name,
            size_bytes=received.size_bytes,
            sha256=received.sha256,
            owner=owner,
        )
        task = FileProcessingTask(document_id=document.id, workflow_id="", owner=owner)
        task.workflow_id = workflow_id_for(task.id)
        # A failure here leaves no row; start() removes the file.
        await asyncio.to_thread(
            records.create_document_and_task, self._engine, document=document, task=task
        )
        try:
            await self._client.start_workflow(
                WORKFLOW_NAME,
                IngestInput(task.id, document.id, ingest_options(self._resources.settings)),
                id=task.workflow_id,
                task_queue=self._resources.settings.temporal_task_queue,
                # Inherited by every activity: Temporal dispatches principals round-robin.
                priority=fair_share_priority(owner, enabled=self._resources.settings.fair_shares),
            )
        except RPCError as exc:
            # Nothing half-made stays behind: the client can simply upload again.
            await asyncio.to_thread(self._forget, document)
            raise ServiceUnavailableError(
                f"The workflow service is unavailable, the upload was not kept: {exc.message}",
                error_code="temporal_unavailable",
            ) from exc
        except BaseException:
            # Rows with no workflow would read `queued` forever (a workflow that did start
            # finds no document and ends at its first step).
            await asyncio.shield(asyncio.to_thread(self._forget, document))
            raise
        return task

    async def replace(self, document_id: str, received: ReceivedFile, *, owner: str) -> StartedTask:
        """Start making ``received`` the new version of ``document_id``: the same workflow, with
        the new file's own upload and artifacts, committed at its end (docs/replace.md). The
        same bytes as the current version: nothing to do, answered like a duplicate upload."""
        try:
            document = await asyncio.to_thread(records.get_document, self._engine, document_id)
            if document is None or document.owner != owner:
                raise NotFoundError(f"No document {document_id}.", error_code="document_not_found")
            if document.sha256 == received.sha256:
                latest = await asyncio.to_thread(records.latest_task_for, self._engine, document_id)
                if latest is not None:
                    await asyncio.to_thread(received.path.unlink, missing_ok=True)
                    return StartedTask(task=latest, duplicate=True)
            other = await asyncio.to_thread(
                records.find_document_by_hash, self._engine, owner=owner, sha256=received.sha256
            )
            if other is not None and other[0].id != document_id:
                raise ConflictError(
                    f"These bytes are already document {other[0].id}.",
                    error_code="duplicate_document",
                    details={"document_id": other[0].id},
                )
            task = await self._start_replacement(document, received)
        except BaseException:
            await asyncio.shield(asyncio.to_thread(received.path.unlink, missing_ok=True))
            raise
        self._views.put(task.id, TaskView(task, _progress_from_row(task), "database", None))
        return StartedTask(task=task, duplicate=False)

    async def _start_replacement(
        self, document: Document, received: ReceivedFile
    ) -> FileProcessingTask:
        task = FileProcessingTask(document_id=document.id, workflow_id="", owner=document.owner)
        task.workflow_id = workflow_id_for(task.id)
        generation = await asyncio.to_thread(
            records.start_replacement,
            self._engine,
            document_id=document.id,
            task=task,
            stored_name=received.stored_name,
        )
        replacement = Replacement(
            generation=generation,
            stored_name=received.stored_name,
            filename=received.filename,
            size_bytes=received.size_bytes,
            sha256=received.sha256,
        )
        job = IngestInput(
            task.id, document.id, ingest_options(self._resources.settings), replacement
        )
        try:
            await self._client.start_workflow(
                WORKFLOW_NAME,
                job,
                id=task.workflow_id,
                task_queue=self._resources.settings.temporal_task_queue,
            )
        except BaseException as exc:
            # The document stays as it was; the new version leaves nothing behind.
            await asyncio.shield(asyncio.to_thread(self._abandon, task))
            if isinstance(exc, RPCError):
                raise ServiceUnavailableError(
                    f"The workflow service is unavailable, the file was not kept: {exc.message}",
                    error_code="temporal_unavailable",
                ) from exc
            raise
        return task

    def _abandon(self, task: FileProcessingTask) -> None:
        records.delete_task(self._engine, task.id)
        records.end_replacement(self._engine, task.document_id)

    def _forget(self, document: Document) -> None:
        records.delete_document_rows(self._engine, document.id)
        self._resources.storage.remove_document(document.id, document.stored_name)

    async def view(self, task_id: str, *, owner: str) -> TaskView:
        """The task as clients see it; a running one's view may be a refresh interval old."""
        cached = self._views.get(task_id, owner=owner)
        if cached is not None:
            return cached
        return await self._cached_view(await self._row(task_id, owner=owner))

    async def fresh_view(self, task_id: str, *, owner: str) -> TaskView:
        """The task as it is now: for deciding what to do with it."""
        return await self._view(await self._row(task_id, owner=owner))

    async def _row(self, task_id: str, *, owner: str) -> FileProcessingTask:
        task = await asyncio.to_thread(records.get_task, self._engine, task_id)
        if task is None or task.owner != owner:
            raise NotFoundError(f"No processing task {task_id}.", error_code="task_not_found")
        return task

    async def active(self, *, owner: str) -> list[TaskView]:
        rows = await asyncio.to_thread(
            records.list_tasks, self._engine, owner=owner, states=ACTIVE_STATES
        )
        return list(await asyncio.gather(*(self._cached_view(task) for task in rows)))

    async def _cached_view(self, task: FileProcessingTask) -> TaskView:
        cached = self._views.get(task.id, owner=task.owner)
        if cached is not None:
            return cached
        view = await self._view(task)
        self._views.put(task.id, view)
        return view

    async def _read(self, task_id: str) -> TaskView | None:
        task = await asyncio.to_thread(records.get_task, self._engine, task_id)
        return None if task is None else await self._view(task)

    async def _view(self, task: FileProcessingTask) -> TaskView:
        if task.state in FINAL_STATES:
            # The workflow writes an end it never leaves to the row before it shows it, so the
            # row is the whole answer, without round trips to a busy workflow service.
            return TaskView(task, _progress_from_row(task), "database", None)
        handle = self._client.get_workflow_handle(task.workflow_id)
        description: WorkflowExecutionDescription | BaseException
        progress: Progress | BaseException | None = None
        if task.state in ACTIVE_STATES:
            # Almost surely running: ask both at once, one round trip instead of two.
            description, progress = await asyncio.gather(
                handle.describe(), self._query(handle), return_exceptions=True
            )
            for outcome in (description, progress):
                if isinstance(outcome, BaseException) and not isinstance(outcome, RPCError):
                    raise outcome
        else:
            # A failed task's workflow may have closed, and querying a closed workflow makes
            # a worker replay its whole history: ask only if the description says it runs.
            description = await _settle(handle.describe())
            if (
                isinstance(description, WorkflowExecutionDescription)
                and description.status == WorkflowExecutionStatus.RUNNING
            ):
                progress = await _settle(self._query(handle))
        if isinstance(description, WorkflowExecutionDescription) and description.status:
            if needs_repair(task, description.status):
                return await self._repair(task, description.status)
        if (
            isinstance(description, WorkflowExecutionDescription)
            and description.status == WorkflowExecutionStatus.RUNNING
            and isinstance(progress, Progress)
        ):
            pending = description.raw_description.pending_activities
            attempt = _pending_attempt(pending)
            _refine_status(progress, attempt, pending)
            reported = combine_step_progress(progress, await self._step_progress(pending))
            if reported is not None:
                apply_step_progress(progress, reported)
            return TaskView(task, progress, "workflow", attempt)
        # Closed, or unreachable, or no worker polling to answer the query: the row, fast.
        log.debug("workflow %s not answering, reading the row", task.workflow_id)
        row = _progress_from_row(task)
        if (
            isinstance(description, WorkflowExecutionDescription)
            and description.status != WorkflowExecutionStatus.RUNNING
        ):
            row.retryable = False  # its workflow has closed: nothing waits for a retry any more
        return TaskView(task, row, "database", None)

    async def _repair(self, task: FileProcessingTask, closed: WorkflowExecutionStatus) -> TaskView:
        """Write the end of a workflow that closed without writing it
        (core.ingestion.closed_tasks)."""
        # The row may have been read just before the workflow wrote its end and closed.
        current = await asyncio.to_thread(records.get_task, self._engine, task.id)
        if current is None or not needs_repair(current, closed):
            latest = current or task
            return TaskView(latest, _progress_from_row(latest), "database", None)
        task = current
        result: Progress | None = None
        if closed == WorkflowExecutionStatus.COMPLETED:
            handle = self._client.get_workflow_handle(task.workflow_id, result_type=Progress)
            with contextlib.suppress(Exception):  # unreadable: the row's counts will do
                result = await handle.result(rpc_timeout=QUERY_TIMEOUT)
        progress = closed_progress(_progress_from_row(task), closed, result)
        log.warning(
            "task %s: workflow %s closed %s, row said %s: recording %s",
            task.id,
            task.workflow_id,
            closed.name,
            task.status.value,
            progress.status,
        )
        await asyncio.to_thread(self._record_end, task, progress)
        repaired = await asyncio.to_thread(records.get_task, self._engine, task.id)
        return TaskView(repaired or task, progress, "database", None)

    def _record_end(self, task: FileProcessingTask, progress: Progress) -> None:
        records.record_progress(self._engine, task.id, progress)
        if progress.status == Status.COMPLETED:
            return
        # Ended for good without its own clean-up: nothing of it is used again.
        self._resources.vectors.delete_document(task.document_id)
        document = records.get_document(self._engine, task.document_id)
        if document is not None:
            self._resources.storage.remove_document(document.id, document.stored_name)

    async def _step_progress(self, pending: Any) -> list[StepProgress]:
        """How far each running activity got, from its last heartbeat's details: already in
        the description, so it costs a decode and no round trip."""
        reports: list[StepProgress] = []
        for activity in pending:
            if not activity.HasField("heartbeat_details"):
                continue
            payloads = activity.heartbeat_details.payloads
            if not payloads:
                continue
            try:
                details = await self._client.data_converter.decode(payloads[:1])
            except Exception as exc:  # a worker of another version may send other details
                log.debug("unreadable heartbeat details: %s", exc)
                continue
            reported = StepProgress.from_details(details[0]) if details else None
            if reported is not None:
                reports.append(reported)
        return reports

    @staticmethod
    async def _query(handle: WorkflowHandle[Any, Any]) -> Progress:
        progress: Progress = await handle.query(
            PROGRESS_QUERY, result_type=Progress, rpc_timeout=QUERY_TIMEOUT
        )
        return progress

    async def retry(self, task_id: str, *, owner: str) -> TaskView:
        """Resume a failed task at the step that failed, keeping all finished work."""
        view = await self.fresh_view(task_id, owner=owner)
        progress = view.progress
        if view.source == "database" and progress.status == Status.FAILED:
            # The workflow did not answer (no worker polling, or it closed): the row alone
            # cannot tell whether the failed workflow still waits, so ask the server.
            await self._require_waiting(view)
        elif progress.status != Status.FAILED:
            raise ConflictError(
                f"Task {task_id} is {view.state}; only a failed task can be retried.",
                error_code="task_not_failed",
                details={"status": view.status, "state": view.state},
            )
        elif not progress.retryable:
            raise ConflictError(
                f"A retry cannot help this task: {progress.error_message}",
                error_code="retry_not_possible",
                details={"reason": progress.error_code, "status": view.status, "state": view.state},
            )
        handle = self._client.get_workflow_handle(view.task.workflow_id)
        with workflow_call(
            task_id,
            closed_code="retry_not_possible",
            closed_message=f"Task {task_id} cannot be retried: its workflow has closed.",
        ):
            await handle.signal(RETRY_SIGNAL)
        # The signal is handled on the workflow's next task; wait briefly so the answer shows it.
        for _ in range(40):
            view = await self.fresh_view(task_id, owner=owner)
            if view.progress.status != Status.FAILED:
                break
            await asyncio.sleep(0.05)
        self._views.put(task_id, view)
        return view

    async def _require_waiting(self, view: TaskView) -> None:
        """Refuse a retry only if the task's workflow has closed; an open one takes the signal
        (a no-op unless it waits for a retry), handled once a worker polls again."""
        try:
            description = await self._client.get_workflow_handle(view.task.workflow_id).describe()
        except RPCError as exc:
            if exc.status != RPCStatusCode.NOT_FOUND:
                raise ServiceUnavailableError(
                    f"The workflow service is unavailable: {exc.message}",
                    error_code="temporal_unavailable",
                ) from exc
            description = None
        if description is None or description.status != WorkflowExecutionStatus.RUNNING:
            raise ConflictError(
                f"A retry cannot help this task: {view.progress.error_message}",
                error_code="retry_not_possible",
                details={
                    "reason": view.progress.error_code,
                    "status": view.status,
                    "state": "failed",
                },
            )

    async def retry_failed(self, *, owner: str) -> RetrySummary:
        # The row can lag the workflow by a moment, so candidates include running ones and the
        # workflow's own status decides which have failed.
        rows = await asyncio.to_thread(
            records.list_tasks,
            self._engine,
            owner=owner,
            states=[*ACTIVE_STATES, *FAILED_STATES],
        )
        summary = RetrySummary()
        for task in rows:
            if (await self._view(task)).progress.status != Status.FAILED:
                continue
            try:
                await self.retry(task.id, owner=owner)
            except ConflictError as refused:
                summary.skipped.append({"task_id": task.id, "reason": refused.message})
            else:
                summary.resumed.append(task.id)
        return summary

    async def cancel(self, task_id: str, *, owner: str) -> TaskView:
        view = await self.fresh_view(task_id, owner=owner)
        if view.progress.status in (Status.COMPLETED, Status.CANCELLED) or (
            view.progress.status == Status.FAILED and not view.progress.retryable
        ):
            raise ConflictError(
                f"Task {task_id} has already ended ({view.state}).",
                error_code="task_finished",
                details={"status": view.status, "state": view.state},
            )
        with workflow_call(
            task_id,
            closed_code="task_finished",
            closed_message=f"Task {task_id} has already ended: its workflow has closed.",
        ):
            await self._client.get_workflow_handle(view.task.workflow_id).cancel()
        self._views.forget(task_id)
        return view

    async def history(self, task_id: str, *, owner: str) -> TaskHistory:
        task = await self._row(task_id, owner=owner)
        handle = self._client.get_workflow_handle(task.workflow_id)
        try:
            description = await handle.describe()
            history = await handle.fetch_history()
        except RPCError as exc:
            raise ServiceUnavailableError(
                f"The workflow history is not available: {exc.message}",
                error_code="history_unavailable",
            ) from exc
        return summarize(history, description.run_id)

    async def cancel_and_wait(self, workflow_id: str, *, timeout: float = 20.0) -> None:
        """Stop the workflow if it runs. A closed (or never started) one is fine; an unreachable
        service is ``temporal_unavailable``, so nothing is deleted under a running workflow."""
        handle: WorkflowHandle[Any, Any] = self._client.get_workflow_handle(workflow_id)
        try:
            description = await handle.describe()
            if description.status != WorkflowExecutionStatus.RUNNING:
                return
            await handle.cancel()
            try:
                await asyncio.wait_for(_wait_closed(handle), timeout)
            except TimeoutError:
                await handle.terminate("document deleted; cancellation timed out")
        except RPCError as exc:
            if not workflow_closed(exc):  # closed meanwhile: stopped, which was the point
                raise unavailable(exc) from exc

    async def document(self, document_id: str, *, owner: str) -> Document:
        """The owner's document, or 404 ``document_not_found``."""
        document = await asyncio.to_thread(
            records.get_owned_document, self._engine, document_id, owner=owner
        )
        if document is None:
            raise NotFoundError(f"No document {document_id}.", error_code="document_not_found")
        return document

    async def documents(self, *, owner: str, limit: int, offset: int) -> Sequence[Document]:
        return await asyncio.to_thread(
            records.list_documents, self._engine, owner=owner, limit=limit, offset=offset
        )

    async def document_details(self, document_id: str, *, owner: str) -> DocumentDetails:
        """The owner's document with its latest task and the number of its vectors."""
        document = await self.document(document_id, owner=owner)
        task = await asyncio.to_thread(records.latest_task_for, self._engine, document_id)
        vectors = await asyncio.to_thread(self._resources.vectors.count, document_id)
        return DocumentDetails(document, task.id if task else None, vectors)

    async def page_text(self, document_id: str, page: int, *, owner: str) -> PageOfDocument:
        """One page's (unit's) extracted text, or 404 ``page_not_found``."""
        document = await self.document(document_id, owner=owner)
        found = await asyncio.to_thread(_read_page, self._resources.storage, document_id, page)
        if found is None:
            raise NotFoundError(
                f"Page {page} of {document.filename} has no extracted text"
                + (f" (it has {document.page_count} pages)." if document.page_count else "."),
                error_code="page_not_found",
                details={"page": page, "page_count": document.page_count},
            )
        return PageOfDocument(document, found)

    async def delete_document(self, document_id: str, *, owner: str) -> None:
        document = await self.document(document_id, owner=owner)
        task = await asyncio.to_thread(records.latest_task_for, self._engine, document_id)
        if task is not None:
            self._views.forget(task.id)
            await self.cancel_and_wait(task.workflow_id)
        await asyncio.to_thread(self._resources.vectors.delete_document, document_id)
        await asyncio.to_thread(self._forget, document)

    async def events(self, task_id: str, *, owner: str) -> AsyncIterator[TaskView]:
        """Yield the task whenever it changes, until it reaches an end state."""
        last: dict[str, Any] | None = None
        while True:
            view = await self.view(task_id, owner=owner)
            snapshot = view.as_dict()
            snapshot.pop("updated_at", None)
            if snapshot != last:
                last = snapshot
                yield view
            if view.ended:
                return
            await asyncio.sleep(0.25)


def fair_share_priority(owner: str, *, enabled: bool) -> Priority:
    """The principal as the fairness key (Temporal keeps at most 64 bytes of it: a longer
    one is shortened to a digest, still one key per principal)."""
    if not enabled:
        return Priority.default
    key = owner
    if len(key.encode()) > 64:
        key = "sha256:" + hashlib.sha256(key.encode()).hexdigest()[:48]
    return Priority(fairness_key=key)


async def _wait_closed(handle: WorkflowHandle[Any, Any]) -> None:
    with contextlib.suppress(Exception):
        await handle.result()


async def _settle(call: Awaitable[R]) -> R | BaseException:
    try:
        return await call
    except RPCError as exc:
        return exc


def _pending_attempt(pending: Any) -> ActivityAttempt | None:
    for activity in pending:
        failure = activity.last_failure.message if activity.HasField("last_failure") else None
        return ActivityAttempt(attempt=activity.attempt, last_failure=failure or None)
    return None


def _refine_status(progress: Progress, attempt: ActivityAttempt | None, pending: Any) -> None:
    # The workflow cannot see its activities' attempts; the server's description can.
    if progress.status != Status.RUNNING or not pending:
        return
    activity = pending[0]
    if attempt is not None and attempt.attempt > 1:
        progress.status = Status.RETRYING
    elif activity.state == PendingActivityState.PENDING_ACTIVITY_STATE_SCHEDULED:
        progress.status = Status.QUEUED


def combine_step_progress(progress: Progress, reports: list[StepProgress]) -> StepProgress | None:
    """One figure for the running step from every running batch's heartbeat. The workflow
    counts the finished batches; each running batch adds what it did since its own start,
    so batches that run at once (``IngestOptions.*_parallel_batches``) are summed, not
    mistaken for one another. Details without a start (older workers) count as before."""
    current = [r for r in reports if r.step == progress.current_step and r.total > 0]
    if not current:
        return None
    if any(r.start is None for r in current):
        return max(current, key=lambda r: r.done)
    finished = {Step.EXTRACT: progress.pages_extracted, Step.VECTORIZE: progress.chunks_embedded}
    running = progress.running_batches
    if running is not None and progress.current_step in finished:
        # The heartbeats come from a describe read apart from the query: a batch the
        # workflow already counts as finished must not be counted again.
        current = [r for r in current if r.start in running]
        if not current:
            return None
    done = finished.get(progress.current_step, 0) + sum(
        max(0, r.done - (r.start or 0)) for r in current
    )
    return StepProgress(progress.current_step, min(done, current[0].total), current[0].total)


def apply_step_progress(progress: Progress, reported: StepProgress) -> None:
    """Show how far the running step got inside its activity. Only ever raises what the
    workflow's state says: the workflow's own counts stay the floor."""
    if reported.step != progress.current_step or reported.total <= 0:
        return
    done = max(0, min(reported.done, reported.total))
    share = round(100.0 * done / reported.total, 2)
    if reported.step == Step.UPLOAD:
        progress.upload_progress = max(progress.upload_progress, share)
    elif reported.step == Step.EXTRACT:
        progress.pages_extracted = max(progress.pages_extracted, done)
        progress.extraction_progress = max(progress.extraction_progress, share)
    elif reported.step == Step.CHUNK:  # counted in pages: the chunks are not known yet
        progress.chunking_progress = max(progress.chunking_progress, share)
    elif reported.step == Step.VECTORIZE:
        progress.chunks_embedded = max(progress.chunks_embedded, done)
        progress.vectorization_progress = max(progress.vectorization_progress, share)
    else:
        return
    progress.refresh_overall()


def _progress_from_row(task: FileProcessingTask) -> Progress:
    # The row's state says whether a failure waits for a retry (a mirrored field may too).
    state = task.state
    waiting = state == ProcessingState.WAITING_FOR_RETRY
    mirrored = {"retryable": waiting} | {
        name: getattr(task, name) for name in records.MIRRORED_FIELDS
    }
    status = Status.FAILED if waiting else state.value
    return Progress(status=status, current_step=task.current_step.value, **mirrored)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


@dataclass(frozen=True)
class DocumentDetails:
    document: Document
    task_id: str | None
    vector_count: int


@dataclass(frozen=True)
class PageOfDocument:
    document: Document
    page: PageText


def _read_page(storage: DocumentStorage, document_id: str, page: int) -> PageText | None:
    try:
        return next((p for p in storage.read_pages(document_id) if p.page == page), None)
    except FileNotFoundError:  # removed while being read (the document was deleted)
        return None
