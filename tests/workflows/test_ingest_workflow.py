"""IngestDocumentWorkflow on its own: the real workflow on the real Temporal dev server, its
activities replaced by fakes registered under the real names (the samples-python pattern).

The fakes are used because what is tested here is the workflow's own logic (which batches it
asks for, what it records, when it gives up), and the branches that need a step to fail at a
chosen moment, or a failed task to wait out its retention window, cannot be steered from a
real PDF. The real activities have their own tests (tests/activities/).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from temporalio import activity
from temporalio.client import Client, WorkflowFailureError
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from tests.helpers import until
from workflows.contracts import (
    PROGRESS_QUERY,
    RETRY_SIGNAL,
    Activity,
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
from workflows.ingest import IngestDocumentWorkflow


@dataclass
class FakeActivities:
    """What a document of ``pages`` pages and ``chunks`` chunks would make the real ones do;
    every call is recorded. ``fail_extract_from`` makes extraction fail from that page on
    while ``extract_down``; ``fault`` makes the upload check fail for good with that code."""

    pages: int = 5
    chunks: int = 7
    fail_extract_from: int | None = None
    extract_down: bool = True
    fault: str | None = None
    extracted: list[tuple[int, int]] = field(default_factory=list)
    vectorized: list[tuple[int, int]] = field(default_factory=list)
    recorded: list[Progress] = field(default_factory=list)
    discarded: list[str] = field(default_factory=list)

    def all(self) -> list[Any]:
        @activity.defn(name=Activity.VALIDATE)
        async def validate(job: ValidateInput) -> ValidateResult:
            if self.fault is not None:
                raise ApplicationError("not a document", type=self.fault, non_retryable=True)
            return ValidateResult(page_count=self.pages)

        @activity.defn(name=Activity.EXTRACT)
        async def extract(job: ExtractInput) -> ExtractResult:
            failing = self.fail_extract_from is not None and job.last_page >= self.fail_extract_from
            if failing and self.extract_down:
                raise RuntimeError("the extraction service is down")
            self.extracted.append((job.first_page, job.last_page))
            return ExtractResult(pages=job.last_page - job.first_page + 1, characters=100)

        @activity.defn(name=Activity.CHUNK)
        async def chunk(job: ChunkInput) -> ChunkResult:
            return ChunkResult(chunk_count=self.chunks)

        @activity.defn(name=Activity.VECTORIZE)
        async def vectorize(job: VectorizeInput) -> VectorizeResult:
            self.vectorized.append((job.start, job.stop))
            return VectorizeResult(job.stop - job.start)

        @activity.defn(name=Activity.RECORD_STATE)
        async def record(state: TaskState) -> None:
            self.recorded.append(state.progress)

        @activity.defn(name=Activity.DISCARD_DOCUMENT)
        async def discard(document_id: str) -> None:
            self.discarded.append(document_id)

        @activity.defn(name=Activity.DISCARD_VECTORS)
        async def discard_vectors(document_id: str) -> None:
            self.discarded.append(document_id)

        return [validate, extract, chunk, vectorize, record, discard, discard_vectors]


@dataclass
class Running:
    client: Client
    queue: str


@pytest.fixture
async def running(temporal_env: WorkflowEnvironment) -> AsyncIterator[Running]:
    yield Running(temporal_env.client, f"wf-test-{uuid.uuid4().hex[:12]}")


def options(**overrides: Any) -> IngestOptions:
    # One attempt per step: a failing step fails the task at once instead of backing off.
    values: dict[str, Any] = {
        "extract_pages_per_activity": 2,
        "vectorize_chunks_per_activity": 3,
        "max_attempts": 1,
    }
    values.update(overrides)
    return IngestOptions(**values)


async def start(running: Running, fakes: FakeActivities, opts: IngestOptions) -> Any:
    task_id = uuid.uuid4().hex
    return await running.client.start_workflow(
        IngestDocumentWorkflow.run,
        IngestInput(task_id, f"doc-{task_id}", opts),
        id=f"ingest-test-{task_id}",
        task_queue=running.queue,
    )


def worker(running: Running, fakes: FakeActivities) -> Worker:
    return Worker(
        running.client,
        task_queue=running.queue,
        workflows=[IngestDocumentWorkflow],
        activities=fakes.all(),
    )


async def test_every_batch_is_asked_for_once_and_the_task_ends_completed(
    running: Running,
) -> None:
    fakes = FakeActivities(pages=5, chunks=7)
    async with worker(running, fakes):
        handle = await start(running, fakes, options())
        result: Progress = await handle.result()
    assert fakes.extracted == [(1, 2), (3, 4), (5, 5)]
    assert fakes.vectorized == [(0, 3), (3, 6), (6, 7)]
    assert result.status == Status.COMPLETED and result.current_step == Step.DONE
    assert result.progress_percentage == 100.0
    assert fakes.recorded[-1].status == Status.COMPLETED
    assert fakes.discarded == []


async def test_a_retry_resumes_at_the_batch_that_failed(running: Running) -> None:
    fakes = FakeActivities(pages=6, fail_extract_from=3)
    async with worker(running, fakes):
        handle = await start(running, fakes, options())
        await until(lambda: any(p.status == Status.FAILED for p in fakes.recorded), within=30)
        waiting: Progress = await handle.query(PROGRESS_QUERY, result_type=Progress)
        assert waiting.status == Status.FAILED and waiting.retryable
        assert waiting.error_code == "step_failed"
        assert waiting.pages_extracted == 2
        fakes.extract_down = False
        await handle.signal(RETRY_SIGNAL)
        result: Progress = await handle.result()
    # Pages 1-2 were extracted once; the retry asked for 3-4 onwards only.
    assert fakes.extracted == [(1, 2), (3, 4), (5, 6)]
    assert result.status == Status.COMPLETED and result.resumes == 1
    assert fakes.discarded == []


async def test_a_failed_task_gives_up_after_its_retention_window(running: Running) -> None:
    fakes = FakeActivities(pages=4, fail_extract_from=3)
    window_s = 2.0
    async with worker(running, fakes):
        handle = await start(running, fakes, options(failed_retention_hours=window_s / 3600))
        with pytest.raises(WorkflowFailureError) as failure:
            await asyncio.wait_for(handle.result(), timeout=60)
    cause = failure.value.cause
    assert isinstance(cause, ApplicationError) and cause.non_retryable
    assert "Gave up waiting for a retry" in cause.message
    assert cause.type == "step_failed"
    # Failed and waiting first, then failed for good with the document's files discarded.
    assert [(p.status, p.retryable) for p in fakes.recorded[-2:]] == [
        (Status.FAILED, True),
        (Status.FAILED, False),
    ]
    assert fakes.discarded == [f"doc-{handle.id.removeprefix('ingest-test-')}"]
    assert fakes.extracted == [(1, 2)]


async def test_a_permanent_fault_ends_the_task_at_once_without_waiting(
    running: Running,
) -> None:
    fakes = FakeActivities(fault="encrypted_pdf")
    async with worker(running, fakes):
        handle = await start(running, fakes, options())
        with pytest.raises(WorkflowFailureError) as failure:
            await asyncio.wait_for(handle.result(), timeout=60)
    cause = failure.value.cause
    assert isinstance(cause, ApplicationError) and cause.type == "encrypted_pdf"
    last = fakes.recorded[-1]
    assert last.status == Status.FAILED and not last.retryable
    assert last.error_code == "encrypted_pdf"
    assert len(fakes.discarded) == 1 and fakes.extracted == []
