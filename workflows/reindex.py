"""The re-index workflow: every document rebuilt into a new index version, then one swap.

``ReindexWorkflow`` lists the ready documents page by page (by when they last changed, so one
that finishes ingesting meanwhile is listed too) and rebuilds each in a ``ReindexDocument``
child workflow, at most ``window`` at a time. The children read the extracted text kept in
``artifacts/``: nothing is extracted or OCRed again. After ``documents_per_run`` documents the
workflow continues as new, carrying only its counters and cursor, so its history stays small
for any number of documents.

Search and chat keep reading the active version throughout. When every document is rebuilt
the target is made active in one alias operation; documents that finished ingesting between
the last listing and the swap are rebuilt right after it. Failed documents are listed in the
progress and block the swap until the ``retry_failed`` signal rebuilds them, or ``cancel``
drops the half-built version. ``pause`` stops new documents starting; ``resume`` goes on.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ChildWorkflowError, FailureError

with workflow.unsafe.imports_passed_through():
    from workflows.reindex_contracts import (
        REINDEX_DOCUMENT_WORKFLOW,
        REINDEX_PROGRESS_QUERY,
        REINDEX_WORKFLOW,
        CountResult,
        Cursor,
        DocumentInput,
        DocumentResult,
        FailedDocument,
        ListInput,
        ListResult,
        ReindexActivity,
        ReindexInput,
        ReindexOptions,
        ReindexProgress,
        ReindexSignal,
        ReindexStatus,
        document_workflow_id,
    )

SHORT = timedelta(minutes=2)
SHORT_RETRIES = RetryPolicy(maximum_interval=timedelta(seconds=10))


@workflow.defn(name=REINDEX_DOCUMENT_WORKFLOW)
class ReindexDocumentWorkflow:
    """One document: chunk its kept pages with the target's settings, embed, store."""

    @workflow.run
    async def run(self, job: DocumentInput) -> DocumentResult:
        opts = job.options
        result: DocumentResult = await workflow.execute_activity(
            ReindexActivity.DOCUMENT,
            job,
            result_type=DocumentResult,
            start_to_close_timeout=timedelta(hours=2),
            heartbeat_timeout=timedelta(seconds=opts.heartbeat_timeout_seconds),
            retry_policy=RetryPolicy(
                initial_interval=timedelta(seconds=1),
                maximum_interval=timedelta(seconds=30),
                maximum_attempts=opts.max_attempts,
            ),
        )
        return result


@workflow.defn(name=REINDEX_WORKFLOW)
class ReindexWorkflow:
    def __init__(self) -> None:
        self._p = ReindexProgress()
        self._paused = False
        self._paused_since: datetime | None = None
        self._cancel = False
        self._retry = False
        self._in_flight: set[asyncio.Future[None]] = set()

    @workflow.query(name=REINDEX_PROGRESS_QUERY)
    def progress(self) -> ReindexProgress:
        return self._p

    @workflow.signal(name=ReindexSignal.PAUSE)
    def pause(self) -> None:
        if self._p.status == ReindexStatus.RUNNING:
            self._paused = True
            self._paused_since = workflow.now()
            self._p.status = ReindexStatus.PAUSED

    @workflow.signal(name=ReindexSignal.RESUME)
    def resume(self) -> None:
        if self._paused:
            self._paused = False
            if self._paused_since is not None:
                self._p.paused_seconds += (workflow.now() - self._paused_since).total_seconds()
            self._paused_since = None
            self._p.status = ReindexStatus.RUNNING

    @workflow.signal(name=ReindexSignal.CANCEL)
    def cancel(self) -> None:
        if not self._p.swapped:
            self._cancel = True

    @workflow.signal(name=ReindexSignal.RETRY_FAILED)
    def retry_failed(self) -> None:
        self._retry = True

    @workflow.run
    async def run(self, job: ReindexInput) -> ReindexProgress:
        opts = job.options
        if job.progress is None:
            # Queries answered while the count runs already name the version.
            self._p.version = job.version
            counted: CountResult = await workflow.execute_activity(
                ReindexActivity.COUNT,
                job.version,
                result_type=CountResult,
                start_to_close_timeout=SHORT,
                retry_policy=SHORT_RETRIES,
            )
            self._p = ReindexProgress(
                version=job.version,
                previous_version=counted.active_version,
                documents_total=counted.documents,
                chunks_total=counted.chunks,
                started_at=workflow.now().isoformat(),
            )
        else:
            self._p = job.progress
        p = self._p
        if job.paused or self._paused:  # carried over, or signalled before the count was in
            self._paused = True
            self._paused_since = self._paused_since or workflow.now()
            p.status = ReindexStatus.PAUSED
        cursor = job.cursor
        handled = 0
        while True:
            listed = await self._list(cursor, opts)
            if not listed.documents:
                break
            await self._rebuild(job, [d.document_id for d in listed.documents])
            if self._cancel:
                return await self._cancelled(job)
            last = listed.documents[-1]
            cursor = Cursor(last.updated_at, last.document_id)
            handled += len(listed.documents)
            if handled >= opts.documents_per_run or workflow.info().is_continue_as_new_suggested():
                p.runs += 1
                workflow.continue_as_new(
                    ReindexInput(job.version, job.collection, opts, p, cursor, self._paused)
                )
        while p.failed:
            p.status = ReindexStatus.WAITING_FOR_RETRY
            await workflow.wait_condition(lambda: self._retry or self._cancel)
            if self._cancel:
                return await self._cancelled(job)
            self._retry = False
            again = [failed.document_id for failed in p.failed]
            p.failed = []
            p.status = ReindexStatus.RUNNING
            await self._rebuild(job, again)
            if self._cancel:
                return await self._cancelled(job)
        p.status = ReindexStatus.SWAPPING
        await workflow.execute_activity(
            ReindexActivity.SWAP,
            job.version,
            start_to_close_timeout=SHORT,
            retry_policy=SHORT_RETRIES,
        )
        p.swapped = True
        # Documents that finished ingesting into the old version after the last listing.
        while True:
            listed = await self._list(cursor, opts)
            if not listed.documents:
                break
            await self._rebuild(job, [d.document_id for d in listed.documents])
            last = listed.documents[-1]
            cursor = Cursor(last.updated_at, last.document_id)
        p.status = ReindexStatus.COMPLETED
        p.finished_at = workflow.now().isoformat()
        return p

    async def _list(self, cursor: Cursor, opts: ReindexOptions) -> ListResult:
        listed: ListResult = await workflow.execute_activity(
            ReindexActivity.LIST,
            ListInput(cursor, opts.page_size),
            result_type=ListResult,
            start_to_close_timeout=SHORT,
            retry_policy=SHORT_RETRIES,
        )
        return listed

    async def _rebuild(self, job: ReindexInput, document_ids: list[str]) -> None:
        """Rebuild ``document_ids`` with at most ``window`` children at once (a sliding
        window: the next starts as soon as any finishes), then wait for the last ones."""
        window = max(1, job.options.window)
        for document_id in document_ids:
            await workflow.wait_condition(
                lambda: self._cancel or (not self._paused and len(self._in_flight) < window)
            )
            if self._cancel:
                break
            task = asyncio.ensure_future(self._one(job, document_id))
            self._in_flight.add(task)
            task.add_done_callback(self._in_flight.discard)
        await workflow.wait_condition(lambda: not self._in_flight)

    async def _one(self, job: ReindexInput, document_id: str) -> None:
        p = self._p
        try:
            result: DocumentResult = await workflow.execute_child_workflow(
                REINDEX_DOCUMENT_WORKFLOW,
                DocumentInput(document_id, job.version, job.collection, job.options),
                id=document_workflow_id(job.version, document_id),
                result_type=DocumentResult,
            )
        except ChildWorkflowError as err:
            p.failed.append(FailedDocument(document_id, _describe(err)))
            return
        if result.skipped:
            p.documents_total = max(p.documents_done, p.documents_total - 1)
            return
        p.documents_done += 1
        p.chunks_done += result.chunks
        p.chunks_total = max(p.chunks_done, p.chunks_total + result.chunks - result.previous_chunks)
        p.documents_total = max(p.documents_total, p.documents_done + len(p.failed))

    async def _cancelled(self, job: ReindexInput) -> ReindexProgress:
        await workflow.execute_activity(
            ReindexActivity.DROP,
            job.version,
            start_to_close_timeout=SHORT,
            retry_policy=SHORT_RETRIES,
        )
        self._p.status = ReindexStatus.CANCELLED
        self._p.finished_at = workflow.now().isoformat()
        return self._p


def _describe(err: FailureError) -> str:
    # The innermost message is the one a person can act on.
    cause: BaseException | None = err
    message = str(err)
    while cause is not None:
        if isinstance(cause, FailureError) and cause.message:
            message = cause.message
        cause = cause.__cause__
    return message
