"""The ingestion workflow: upload check -> extract -> chunk -> vectorize, resumable per step.

The workflow keeps how far each step got (pages extracted, chunks embedded). When a step fails
after its activity retries run out, the task is marked failed and the workflow waits for a
``retry`` signal (from the API or the Temporal Web UI), then resumes at exactly that point.
Permanent document faults end the workflow at once: retrying cannot help them.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any, TypeVar

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import (
    ActivityError,
    ApplicationError,
    FailureError,
    is_cancelled_exception,
)

# Plain dataclasses and constants, identical in every run: shared with the sandbox rather than
# re-executed for each new workflow instance, which cost ~10 ms of the event loop per start.
with workflow.unsafe.imports_passed_through():
    from workflows.contracts import (
        PROGRESS_QUERY,
        RETRY_SIGNAL,
        WORKFLOW_NAME,
        Activity,
        CarriedState,
        ChunkInput,
        ChunkResult,
        ExtractInput,
        ExtractResult,
        IngestInput,
        IngestOptions,
        Progress,
        Status,
        Step,
        TaskState,
        ValidateInput,
        ValidateResult,
        VectorizeInput,
        VectorizeResult,
    )

ResultT = TypeVar("ResultT")
CANCEL_AFTER_COMPLETED_STEP = "cancel-after-completed-step"
DISCARD_ON_PERMANENT_FAILURE = "discard-document-on-permanent-failure"
COMPLETION_OUTLASTS_CANCEL = "completion-record-outlasts-cancel"
DISCARD_DOCUMENT_ON_CANCEL = "discard-document-on-cancel"
# A new version of an existing document (``IngestInput.replacement``): commit, finish, discard.
REPLACE_DOCUMENT_VERSION = "replace-document-version"
# Batches of a step run in a bounded window, and text and embedding work go to their own
# task queues (IngestOptions); runs that started before keep the one-at-a-time path.
PARALLEL_BATCHES_ON_QUEUES = "parallel-batches-on-task-queues"


@workflow.defn(name=WORKFLOW_NAME)
class IngestDocumentWorkflow:
    def __init__(self) -> None:
        self._progress = Progress()
        self._retry_requested = False
        # The text the finished extract batches found, for the next batch's share of the cap.
        # Rebuilt on replay from the recorded results, so it needs no patch.
        self._characters_extracted = 0
        self._ocr_pages = 0
        # The batches (by first page, by first chunk) that finished: a resume after a failure
        # runs only the others. Rebuilt on replay like the counts above.
        self._extracted_batches: set[int] = set()
        self._embedded_batches: set[int] = set()
        # Whether this run takes the parallel path: fixed once, at its first step.
        self._parallel: bool | None = None
        # Batches this run finished: a run continues as new only after one, so a limit below
        # what a run needs to start can never make runs that hand over without progress.
        self._finished_here = 0

    @workflow.query(name=PROGRESS_QUERY)
    def progress(self) -> Progress:
        return self._progress

    @workflow.signal(name=RETRY_SIGNAL)
    def retry(self) -> None:
        # Only a failed, retryable task waits for this; elsewhere it is a harmless no-op.
        if self._progress.status == Status.FAILED and self._progress.retryable:
            self._retry_requested = True

    @workflow.run
    async def run(self, job: IngestInput) -> Progress:
        if job.carried is not None:
            self._resume_carried(job.carried)
        p = self._progress
        try:
            while True:
                try:
                    await self._run_steps(job)
                    break
                except ActivityError as err:
                    if is_cancelled_exception(err):
                        raise
                    await self._fail(job, err)
                    await self._wait_for_retry(job)
        except (asyncio.CancelledError, ActivityError) as err:
            # A cancel reaches us as CancelledError, or as the running activity's cancellation.
            if not is_cancelled_exception(err):
                raise
            await self._cancel(job)
            raise
        if workflow.patched(COMPLETION_OUTLASTS_CANCEL):
            await self._record_completion(job)
        else:
            await self._record(job, status=Status.COMPLETED, current_step=Step.DONE)
        if self._replacing(job):
            await self._finish_replacement(job)
        return p

    def _replacing(self, job: IngestInput) -> bool:
        """Whether this run makes a new version of an existing document. Runs recorded before
        replacements existed have none, so they never reach these steps; the patch marks the
        histories that do."""
        return job.replacement is not None and workflow.patched(REPLACE_DOCUMENT_VERSION)

    async def _finish_replacement(self, job: IngestInput) -> None:
        """The new version is committed and recorded: after a grace period (searches that
        read the old version as current still find its points), remove the old version.
        Shielded: a cancel now comes too late, and the old vectors must not stay behind."""

        async def finish() -> None:
            await workflow.sleep(timedelta(seconds=job.options.replace_grace_seconds))
            await workflow.execute_activity(
                Activity.FINISH_REPLACEMENT,
                job,
                start_to_close_timeout=timedelta(minutes=2),
                retry_policy=RetryPolicy(maximum_interval=timedelta(seconds=30)),
            )

        cleanup = asyncio.ensure_future(finish())
        try:
            await asyncio.shield(cleanup)
        except asyncio.CancelledError:
            await cleanup

    def _resume_carried(self, carried: CarriedState) -> None:
        self._progress = carried.progress
        self._characters_extracted = carried.characters_extracted
        self._ocr_pages = carried.ocr_pages
        self._extracted_batches = set(carried.extracted_batches)
        self._embedded_batches = set(carried.embedded_batches)
        self._parallel = True  # only the parallel path continues as new

    def _history_is_long(self, opts: IngestOptions) -> bool:
        limit = opts.continue_as_new_after_events
        return (
            limit > 0
            and self._finished_here > 0
            and workflow.info().get_current_history_length() >= limit
        )

    def _continue_as_new_if_long(self, job: IngestInput) -> None:
        """Between batches, with none running: hand the counts to a new run of this workflow
        id (queries, signals, cancels and results by id follow it)."""
        if not self._history_is_long(job.options):
            return
        carried = CarriedState(
            progress=self._progress,
            characters_extracted=self._characters_extracted,
            ocr_pages=self._ocr_pages,
            extracted_batches=sorted(self._extracted_batches),
            embedded_batches=sorted(self._embedded_batches),
        )
        workflow.continue_as_new(dataclasses.replace(job, carried=carried))

    async def _record_completion(self, job: IngestInput) -> None:
        """Every step is done: writing `completed` is the commit point, and a cancel that
        arrives while it is written comes too late. Cancelling the write instead closed the
        workflow CANCELED with the row left `running` (or `completed` behind a cancelled
        workflow that kept its vectors); shielded, the write finishes, retries included, and
        the workflow completes. A cancel that arrives before this point is honoured."""
        record = asyncio.ensure_future(
            self._record(job, status=Status.COMPLETED, current_step=Step.DONE)
        )
        try:
            await asyncio.shield(record)
        except asyncio.CancelledError:
            workflow.logger.info("cancel arrived while %s was recorded completed", job.task_id)
            await record

    async def _run_steps(self, job: IngestInput) -> None:
        p = self._progress
        opts = job.options
        p.status = Status.RUNNING
        if p.page_count is None:
            p.current_step = Step.UPLOAD
            validated: ValidateResult = await self._call(
                Activity.VALIDATE,
                ValidateInput(job.task_id, job.document_id, job.replacement),
                ValidateResult,
                opts,
                start_to_close=timedelta(minutes=2),
            )
            p.page_count = validated.page_count
            p.upload_progress = 100.0
            p.refresh_overall()

        # After validate, which stays on the workflows' queue (the text workers serve it):
        # every history, old or new, begins the same way.
        if self._parallel is None:
            self._parallel = workflow.patched(PARALLEL_BATCHES_ON_QUEUES)
        text_queue = opts.text_task_queue if self._parallel else None
        page_count = p.page_count
        p.current_step = Step.EXTRACT
        if self._parallel:
            await self._extract_in_parallel(job, page_count)
        while not self._parallel and p.pages_extracted < page_count:
            first = p.pages_extracted + 1
            last = min(page_count, p.pages_extracted + opts.extract_pages_per_activity)
            extracted = await self._extract(job, first, last, page_count, task_queue=None)
            self._characters_extracted += extracted.characters
            self._ocr_pages += extracted.ocr_pages
            p.pages_extracted = last
            p.extraction_progress = _percent(last, page_count)
            p.refresh_overall()

        if p.chunk_count is None:
            p.current_step = Step.CHUNK
            chunked: ChunkResult = await self._call(
                Activity.CHUNK,
                ChunkInput(job.task_id, job.document_id, job.replacement),
                ChunkResult,
                opts,
                start_to_close=timedelta(minutes=10),
                task_queue=text_queue,
            )
            p.chunk_count = chunked.chunk_count
            p.chunking_progress = 100.0
            p.refresh_overall()

        chunk_count = p.chunk_count
        p.current_step = Step.VECTORIZE
        if self._parallel:
            await self._vectorize_in_parallel(job, chunk_count)
        while not self._parallel and p.chunks_embedded < chunk_count:
            stop = min(chunk_count, p.chunks_embedded + opts.vectorize_chunks_per_activity)
            vectorized = await self._vectorize(
                job, p.chunks_embedded, stop, chunk_count, task_queue=None
            )
            p.chunks_embedded = stop
            p.chunks_reused += vectorized.reused
            p.vectorization_progress = _percent(stop, chunk_count)
            p.refresh_overall()

        if self._replacing(job):
            # The commit point of a new version: from here search shows it, not the old one.
            await self._call(
                Activity.COMMIT_REPLACEMENT,
                job,
                type(None),
                opts,
                start_to_close=timedelta(minutes=2),
            )

    async def _extract_in_parallel(self, job: IngestInput, page_count: int) -> None:
        """Every batch but the last in a window of ``extract_parallel_batches``, then the last.

        What is order-dependent in extraction is the whole-document part: the text and OCR
        caps count every page, and the no-text check reads them all. Each windowed batch gets
        the counts of the batches finished when it starts (so it alone never passes a cap),
        and the last batch runs alone, after the others, with their exact sums: it enforces
        the caps on the whole document and makes the whole-document checks, as before.
        """
        p = self._progress
        p.running_batches = []  # this step's batches only
        opts = job.options
        size = opts.extract_pages_per_activity
        batches = [
            (first, min(page_count, first + size - 1)) for first in range(1, page_count + 1, size)
        ]
        *body, final = batches

        def extract(first: int, last: int) -> Callable[[], Awaitable[ExtractResult]]:
            def call() -> Awaitable[ExtractResult]:
                _running(p).append(first - 1)  # its heartbeats start at the page before it
                return self._extract(job, first, last, page_count, task_queue=opts.text_task_queue)

            return call

        def extracted(batch: tuple[int, int], result: ExtractResult) -> None:
            first, last = batch
            _running(p).remove(first - 1)
            self._extracted_batches.add(first)
            self._finished_here += 1
            self._characters_extracted += result.characters
            self._ocr_pages += result.ocr_pages
            p.pages_extracted += last - first + 1
            p.extraction_progress = _percent(p.pages_extracted, page_count)
            p.refresh_overall()

        todo = [batch for batch in body if batch[0] not in self._extracted_batches]
        await _in_window(
            [(batch, extract(*batch)) for batch in todo],
            opts.extract_parallel_batches,
            extracted,
            stop=lambda: self._history_is_long(opts),
        )
        self._continue_as_new_if_long(job)
        if final[0] not in self._extracted_batches:
            extracted(final, await extract(*final)())

    async def _vectorize_in_parallel(self, job: IngestInput, chunk_count: int) -> None:
        """Vectorize batches in a window of ``vectorize_parallel_batches``: each writes its own
        chunks' vectors (by chunk id), so they need nothing from one another."""
        p = self._progress
        p.running_batches = []  # this step's batches only
        opts = job.options
        size = opts.vectorize_chunks_per_activity

        def vectorize(start: int, stop: int) -> Callable[[], Awaitable[VectorizeResult]]:
            def call() -> Awaitable[VectorizeResult]:
                _running(p).append(start)
                return self._vectorize(
                    job, start, stop, chunk_count, task_queue=opts.embedding_task_queue
                )

            return call

        def embedded(batch: tuple[int, int], result: VectorizeResult) -> None:
            start, stop = batch
            _running(p).remove(start)
            self._embedded_batches.add(start)
            self._finished_here += 1
            p.chunks_embedded += stop - start
            p.chunks_reused += result.reused
            p.vectorization_progress = _percent(p.chunks_embedded, chunk_count)
            p.refresh_overall()

        todo = [
            (start, min(chunk_count, start + size))
            for start in range(0, chunk_count, size)
            if start not in self._embedded_batches
        ]
        await _in_window(
            [(batch, vectorize(*batch)) for batch in todo],
            opts.vectorize_parallel_batches,
            embedded,
            stop=lambda: self._history_is_long(opts),
        )
        self._continue_as_new_if_long(job)

    def _extract(
        self, job: IngestInput, first: int, last: int, page_count: int, *, task_queue: str | None
    ) -> Awaitable[ExtractResult]:
        """One extract batch, given the counts of the batches finished so far (the caps)."""
        return self._call(
            Activity.EXTRACT,
            ExtractInput(
                job.task_id,
                job.document_id,
                first,
                last,
                page_count,
                characters_before=self._characters_extracted,
                ocr_pages_before=self._ocr_pages,
                replacement=job.replacement,
            ),
            ExtractResult,
            job.options,
            start_to_close=timedelta(minutes=10),
            task_queue=task_queue,
        )

    def _vectorize(
        self, job: IngestInput, start: int, stop: int, chunk_count: int, *, task_queue: str | None
    ) -> Awaitable[VectorizeResult]:
        return self._call(
            Activity.VECTORIZE,
            VectorizeInput(
                job.task_id,
                job.document_id,
                start,
                stop,
                chunk_count,
                replacement=job.replacement,
            ),
            VectorizeResult,
            job.options,
            start_to_close=timedelta(minutes=15),
            task_queue=task_queue,
        )

    async def _call(
        self,
        activity: str,
        arg: object,
        result_type: type[ResultT],
        opts: IngestOptions,
        *,
        start_to_close: timedelta,
        task_queue: str | None = None,
    ) -> ResultT:
        result: ResultT = await workflow.execute_activity(
            activity,
            arg,
            result_type=result_type,
            # None: the workflow's own queue (and the call the histories before it recorded).
            task_queue=task_queue,
            # Queued too long: no worker is serving the task queue.
            schedule_to_start_timeout=timedelta(seconds=opts.schedule_to_start_timeout_seconds),
            # Too slow: a hung extraction or embedding.
            start_to_close_timeout=start_to_close,
            # Worker died: another worker takes the step over this soon.
            heartbeat_timeout=timedelta(seconds=opts.heartbeat_timeout_seconds),
            retry_policy=RetryPolicy(
                initial_interval=timedelta(seconds=1),
                backoff_coefficient=2.0,
                maximum_interval=timedelta(seconds=30),
                maximum_attempts=opts.max_attempts,
            ),
            # Wait until a cancelled activity has stopped, so cleanup never races its writes.
            cancellation_type=workflow.ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
        )
        # An activity that finishes before it sees the cancel returns its result normally, and
        # the cancel would be lost; honour it before the next step. Guarded by a patch so
        # histories recorded before this check replay unchanged.
        if workflow.cancellation_reason() is not None and workflow.patched(
            CANCEL_AFTER_COMPLETED_STEP
        ):
            raise asyncio.CancelledError("cancel requested while the step completed")
        return result

    async def _fail(self, job: IngestInput, err: ActivityError) -> None:
        p = self._progress
        cause = err.cause
        permanent = isinstance(cause, ApplicationError) and cause.non_retryable
        if permanent:
            await self._discard(job)
        p.status = Status.FAILED
        p.retryable = not permanent
        if isinstance(cause, ApplicationError) and cause.type:
            p.error_code = cause.type if permanent else "step_failed"
        else:
            p.error_code = "step_failed" if not permanent else "document_fault"
        p.error_message = _describe(err)
        await self._record(job)
        if permanent:
            raise ApplicationError(p.error_message, type=p.error_code, non_retryable=True)

    async def _wait_for_retry(self, job: IngestInput) -> None:
        p = self._progress
        try:
            await workflow.wait_condition(
                lambda: self._retry_requested,
                timeout=timedelta(hours=job.options.failed_retention_hours),
            )
        except TimeoutError:
            await self._discard(job)
            p.retryable = False
            await self._record(job)
            raise ApplicationError(
                f"Gave up waiting for a retry: {p.error_message}",
                type=p.error_code or "step_failed",
                non_retryable=True,
            ) from None
        self._retry_requested = False
        p.resumes += 1
        p.status = Status.RUNNING
        p.retryable = False
        p.error_code = None
        p.error_message = None
        await self._record(job)

    async def _cancel(self, job: IngestInput) -> None:
        short = timedelta(minutes=1)
        if self._replacing(job):
            # The document stays as it was: only the new version's file, text and vectors go.
            await workflow.execute_activity(
                Activity.DISCARD_REPLACEMENT, job, start_to_close_timeout=short
            )
        elif workflow.patched(DISCARD_DOCUMENT_ON_CANCEL):
            # A cancelled document keeps its rows (uploading the same bytes again starts it
            # afresh) but not its file, extracted text or vectors.
            await workflow.execute_activity(
                Activity.DISCARD_DOCUMENT, job.document_id, start_to_close_timeout=short
            )
        else:
            await workflow.execute_activity(
                Activity.DISCARD_VECTORS, job.document_id, start_to_close_timeout=short
            )
        await self._record(job, status=Status.CANCELLED, retryable=False)

    async def _discard(self, job: IngestInput) -> None:
        """A task that failed for good keeps its rows and history (the record of why) but
        nothing else: the file, the extracted text and any vectors are removed. Guarded by a
        patch so histories recorded before this step replay unchanged."""
        if not workflow.patched(DISCARD_ON_PERMANENT_FAILURE):
            return
        replacing = self._replacing(job)
        try:
            await workflow.execute_activity(
                Activity.DISCARD_REPLACEMENT if replacing else Activity.DISCARD_DOCUMENT,
                job if replacing else job.document_id,
                start_to_close_timeout=timedelta(minutes=2),
                retry_policy=RetryPolicy(
                    maximum_interval=timedelta(seconds=30), maximum_attempts=10
                ),
            )
        except ActivityError as err:
            if is_cancelled_exception(err):
                raise
            # The failure itself must still be recorded; the leftovers are logged.
            workflow.logger.warning("could not discard document %s: %s", job.document_id, err)

    async def _record(self, job: IngestInput, **changes: Any) -> None:
        """Write the state, with ``changes``, to the row; only then show ``changes`` to queries,
        so a client that sees `completed` or `cancelled` never finds the row behind it."""
        state = dataclasses.replace(self._progress, **changes)
        await workflow.execute_activity(
            Activity.RECORD_STATE,
            TaskState(job.task_id, job.document_id, state, replacement=job.replacement is not None),
            start_to_close_timeout=timedelta(seconds=30),
            retry_policy=RetryPolicy(maximum_interval=timedelta(seconds=10)),
        )
        for name, value in changes.items():
            setattr(self._progress, name, value)


BatchT = TypeVar("BatchT")


def _running(progress: Progress) -> list[int]:
    """The in-flight batches of the running step (the parallel path always has a list)."""
    if progress.running_batches is None:
        progress.running_batches = []
    return progress.running_batches


async def _in_window(
    batches: list[tuple[BatchT, Callable[[], Awaitable[ResultT]]]],
    window: int,
    finished: Callable[[BatchT, ResultT], None],
    *,
    stop: Callable[[], bool] = lambda: False,
) -> None:
    """Run the batches in order, at most ``window`` at once, and call ``finished`` for each
    one that ends, in the order they end.

    A batch that fails stops new ones from starting; those already running finish (and count)
    before the first failure is raised, so a resume runs only what is missing. ``stop`` true
    (a history grown long) also starts no more: the running ones finish and it returns. A
    cancel stops every running batch, and waits for them to stop, before it goes on.
    """
    waiting = iter(batches)
    running: list[tuple[BatchT, asyncio.Task[ResultT]]] = []
    failure: BaseException | None = None
    try:
        while True:
            while failure is None and not stop() and len(running) < max(1, window):
                following = next(waiting, None)
                if following is None:
                    break
                batch, start = following
                running.append((batch, asyncio.ensure_future(start())))
            if not running:
                break
            await workflow.wait([task for _, task in running], return_when=asyncio.FIRST_COMPLETED)
            still: list[tuple[BatchT, asyncio.Task[ResultT]]] = []
            for batch, task in running:  # in the order they started: the same on replay
                if not task.done():
                    still.append((batch, task))
                elif task.cancelled():
                    failure = failure or asyncio.CancelledError()
                elif task.exception() is not None:
                    failure = failure or task.exception()
                else:
                    finished(batch, task.result())
            running = still
    except asyncio.CancelledError:
        for _, task in running:
            task.cancel()
        await asyncio.gather(*(task for _, task in running), return_exceptions=True)
        raise
    if failure is not None:
        raise failure


def _percent(done: int, total: int) -> float:
    return round(100.0 * done / total, 2) if total else 100.0


def _describe(err: FailureError) -> str:
    # The innermost message is the one a person can act on (e.g. "connection refused").
    cause: BaseException | None = err
    message = str(err)
    while cause is not None:
        if isinstance(cause, FailureError) and cause.message:
            message = cause.message
        cause = cause.__cause__
    return message
