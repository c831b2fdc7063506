"""The ingest workflow's batch window, against the real Temporal dev server.

Stand-in activities (registered under the real names) replace pypdf, MiniLM and the stores:
what is tested is the workflow's scheduling — how many batches run at once, that the last
extract batch runs after every other one with their exact sums, that progress is exact, and
that a resume after a failure runs only the batches that are missing. The real activities over
two real worker processes: tests/durability/test_parallel_batches.py.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from temporalio import activity
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowHandle
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from workflows.contracts import (
    PROGRESS_QUERY,
    RETRY_SIGNAL,
    WORKFLOW_NAME,
    Activity,
    ChunkInput,
    ChunkResult,
    ExtractInput,
    ExtractResult,
    IngestInput,
    IngestOptions,
    Progress,
    Status,
    TaskState,
    ValidateInput,
    ValidateResult,
    VectorizeInput,
    VectorizeResult,
)
from workflows.ingest import IngestDocumentWorkflow

PAGES = 10
CHUNKS = 23
CHARACTERS_PER_PAGE = 100


@dataclass
class StandIns:
    """Activities that count what they are asked to do, and can fail a batch once."""

    fail_vectorize_from: int | None = None
    running: Counter[str] = field(default_factory=Counter)
    most_at_once: Counter[str] = field(default_factory=Counter)
    extracts: list[ExtractInput] = field(default_factory=list)
    # ("start" | "end", first page) of every extract batch, in the order they happened.
    extract_events: list[tuple[str, int]] = field(default_factory=list)
    vectorized: Counter[int] = field(default_factory=Counter)
    recorded: list[Progress] = field(default_factory=list)

    async def _hold(self, kind: str) -> None:
        self.running[kind] += 1
        self.most_at_once[kind] = max(self.most_at_once[kind], self.running[kind])
        try:
            # Long enough that batches scheduled together overlap on the worker.
            await asyncio.sleep(0.3)
        finally:
            self.running[kind] -= 1

    def activities(self) -> list[Callable[..., Any]]:
        @activity.defn(name=Activity.VALIDATE)
        async def validate(_: ValidateInput) -> ValidateResult:
            return ValidateResult(page_count=PAGES)

        @activity.defn(name=Activity.EXTRACT)
        async def extract(job: ExtractInput) -> ExtractResult:
            self.extracts.append(job)
            self.extract_events.append(("start", job.first_page))
            await self._hold("extract")
            self.extract_events.append(("end", job.first_page))
            pages = job.last_page - job.first_page + 1
            return ExtractResult(pages, pages * CHARACTERS_PER_PAGE, ocr_pages=1)

        @activity.defn(name=Activity.CHUNK)
        async def chunk(_: ChunkInput) -> ChunkResult:
            return ChunkResult(chunk_count=CHUNKS)

        @activity.defn(name=Activity.VECTORIZE)
        async def vectorize(job: VectorizeInput) -> VectorizeResult:
            await self._hold("vectorize")
            if self.fail_vectorize_from is not None and job.start >= self.fail_vectorize_from:
                raise ApplicationError("vector store unreachable (stand-in)")
            self.vectorized[job.start] += 1
            return VectorizeResult(job.stop - job.start)

        @activity.defn(name=Activity.RECORD_STATE)
        async def record(state: TaskState) -> None:
            self.recorded.append(state.progress)

        @activity.defn(name=Activity.DISCARD_DOCUMENT)
        async def discard(_: str) -> None:
            return None

        return [validate, extract, chunk, vectorize, record, discard]


@pytest.fixture
async def worker(temporal_env: WorkflowEnvironment) -> AsyncIterator[tuple[Client, str, StandIns]]:
    queue = f"test-{uuid.uuid4().hex[:12]}"
    stand_ins = StandIns()
    async with Worker(
        temporal_env.client,
        task_queue=queue,
        workflows=[IngestDocumentWorkflow],
        activities=stand_ins.activities(),
    ):
        yield temporal_env.client, queue, stand_ins


def options(**overrides: object) -> IngestOptions:
    defaults: dict[str, object] = {
        "extract_pages_per_activity": 2,
        "vectorize_chunks_per_activity": 5,
        "extract_parallel_batches": 3,
        "vectorize_parallel_batches": 2,
        "max_attempts": 1,
        "heartbeat_timeout_seconds": 10,
    }
    return IngestOptions(**(defaults | overrides))  # type: ignore[arg-type]


async def start(client: Client, queue: str, opts: IngestOptions) -> WorkflowHandle[Any, Progress]:
    task_id = uuid.uuid4().hex
    return await client.start_workflow(
        WORKFLOW_NAME,
        IngestInput(task_id, f"doc-{task_id}", opts),
        id=f"ingest-{task_id}",
        task_queue=queue,
        result_type=Progress,
    )


async def test_batches_run_in_a_bounded_window_and_the_last_page_batch_runs_last(
    worker: tuple[Client, str, StandIns],
) -> None:
    client, queue, stand_ins = worker
    result = await (await start(client, queue, options())).result()

    assert result.status == Status.COMPLETED
    assert (result.pages_extracted, result.chunks_embedded) == (PAGES, CHUNKS)
    assert result.progress_percentage == 100.0
    assert stand_ins.most_at_once == {"extract": 3, "vectorize": 2}
    # Every batch once; the last one after all the others, with their exact sums.
    assert sorted(job.first_page for job in stand_ins.extracts) == [1, 3, 5, 7, 9]
    final = stand_ins.extracts[-1]
    assert (final.first_page, final.last_page) == (9, 10)
    events = stand_ins.extract_events
    assert events.index(("start", 9)) == len(events) - 2  # after every other batch's end
    assert final.characters_before == 8 * CHARACTERS_PER_PAGE
    assert final.ocr_pages_before == 4
    assert stand_ins.vectorized == Counter({0: 1, 5: 1, 10: 1, 15: 1, 20: 1})


async def test_a_resume_runs_only_the_missing_batches(
    worker: tuple[Client, str, StandIns],
) -> None:
    client, queue, stand_ins = worker
    stand_ins.fail_vectorize_from = 10  # the store "goes down" from the third batch on
    handle = await start(client, queue, options())

    failed = await wait_for(handle, lambda p: p.status == Status.FAILED)
    assert failed.retryable and failed.error_code == "step_failed"
    # Batches 0 and 5 ran before (or beside) the first failure: they finished and count.
    assert stand_ins.vectorized == Counter({0: 1, 5: 1})
    assert failed.chunks_embedded == 10
    assert failed.vectorization_progress == round(100 * 10 / CHUNKS, 2)

    stand_ins.fail_vectorize_from = None
    await handle.signal(RETRY_SIGNAL)
    result = await handle.result()

    assert result.status == Status.COMPLETED and result.resumes == 1
    assert result.chunks_embedded == CHUNKS
    # Each batch succeeded exactly once: those done before the failure were not run again.
    assert stand_ins.vectorized == Counter({0: 1, 5: 1, 10: 1, 15: 1, 20: 1})
    # Progress the workflow recorded never went back.
    embedded = [p.chunks_embedded for p in stand_ins.recorded]
    assert embedded == sorted(embedded)


async def wait_for(handle: WorkflowHandle[Any, Progress], done: Any) -> Progress:
    for _ in range(600):
        progress: Progress = await handle.query(PROGRESS_QUERY, result_type=Progress)
        if done(progress):
            return progress
        await asyncio.sleep(0.05)
    raise AssertionError(f"{handle.id} never got there; last {progress}")


async def test_a_long_history_continues_as_new_and_every_batch_runs_once(
    worker: tuple[Client, str, StandIns],
) -> None:
    client, queue, stand_ins = worker
    limit = 30
    handle = await start(client, queue, options(continue_as_new_after_events=limit))
    result = await handle.result()  # follows the runs by workflow id

    assert result.status == Status.COMPLETED
    assert (result.pages_extracted, result.chunks_embedded) == (PAGES, CHUNKS)
    assert sorted(job.first_page for job in stand_ins.extracts) == [1, 3, 5, 7, 9]
    assert stand_ins.vectorized == Counter({0: 1, 5: 1, 10: 1, 15: 1, 20: 1})
    # The last extract batch still saw every other batch's count, across runs.
    assert stand_ins.extracts[-1].characters_before == 8 * CHARACTERS_PER_PAGE

    lengths = []
    run_id = handle.first_execution_run_id
    while run_id:
        history = await client.get_workflow_handle(handle.id, run_id=run_id).fetch_history()
        lengths.append(len(history.events))
        last = history.events[-1]
        run_id = (
            last.workflow_execution_continued_as_new_event_attributes.new_execution_run_id
            if last.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW
            else None
        )
    assert len(lengths) >= 2, lengths
    # Bounded: the limit, plus what the batches already running add while they finish.
    assert max(lengths) <= limit + 3 * 8, lengths
