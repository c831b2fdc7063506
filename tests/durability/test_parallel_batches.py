"""One document's batches spread over two real text workers, its vectors made by an embedding
worker on its own task queue, and a text worker killed mid-batch loses nothing.

Three ``python worker.py`` processes against one Temporal dev server and one PostgreSQL: two
serve ``--queues text`` (the workflows and the text queue), one ``--queues embedding`` (the
embedding queue only, so it is the only process that writes vectors, to its own local Qdrant
store). Uploads and artifacts are shared folders, as a volume is in production. The 117-page
thesis is extracted in batches of 8 pages, 4 at a time; while batches run on both text workers
one of them is SIGKILLed with its text child. The server notices its missing heartbeats and the
other text worker takes its batches over. The history shows which process ran what.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from temporalio.api.enums.v1 import EventType, TimeoutType
from temporalio.api.history.v1 import ActivityTaskStartedEventAttributes
from temporalio.client import Client, WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from core.ingestion.service import IngestionService
from core.ingestion.uploads import store_local_copy
from core.runtime import open_resources
from core.search.index_versions import alias_name
from core.search.vectorstore import VectorStore
from core.settings import Settings
from tests.helpers import load_worker_healthcheck
from tests.postgres import PostgresCluster
from tests.processes import REPO, service_env
from workflows.contracts import PROGRESS_QUERY, Activity, Progress, Status, Step

pytestmark = pytest.mark.slow

THESIS = "GeoTopo-komprimiert.pdf"
PAGES_PER_BATCH = 8
HEARTBEAT_TIMEOUT_S = 10


class Worker:
    """``python worker.py --queues ...`` in its own process group (with its children)."""

    def __init__(self, name: str, queues: str, log_dir: Path, settings: dict[str, Any]) -> None:
        self.name = name
        self.log = log_dir / f"{name}.log"
        with self.log.open("wb") as output:
            self.process = subprocess.Popen(
                [sys.executable, "worker.py", "--queues", queues],
                cwd=REPO,
                env=service_env(data_dir=log_dir / name, **settings),
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    @property
    def pid(self) -> int:
        return self.process.pid

    def check_running(self) -> None:
        assert self.process.poll() is None, f"{self.name} exited\n{self.tail()}"

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, signal.SIGKILL)  # children left behind
        return self.process.returncode

    def tail(self, lines: int = 30) -> str:
        text = self.log.read_text(errors="replace").splitlines()[-lines:]
        return f"--- {self.name} (pid {self.pid})\n" + "\n".join(text)


def pid_of(identity: str) -> int:
    return int(identity.split("@", 1)[0])  # the SDK's default identity: <pid>@<host>


async def wait_for_pollers(client: Client, queue: str, workers: list[Worker]) -> None:
    pollers = load_worker_healthcheck().poller_identities
    wanted = {worker.pid for worker in workers}
    deadline = time.monotonic() + 240
    while not wanted <= {pid_of(identity) for identity in await pollers(client, queue)}:
        for worker in workers:
            worker.check_running()
        assert time.monotonic() < deadline, f"the workers did not poll {queue}"
        await asyncio.sleep(0.5)


async def running_extract_workers(handle: WorkflowHandle[Any, Progress]) -> set[int]:
    """The processes running an extract batch of the workflow now."""
    pending = (await handle.describe()).raw_description.pending_activities
    return {
        pid_of(activity.last_worker_identity)
        for activity in pending
        if activity.activity_type.name == Activity.EXTRACT and activity.last_worker_identity
    }


def activity_starts(history: Any) -> list[tuple[str, ActivityTaskStartedEventAttributes]]:
    scheduled: dict[int, str] = {}
    starts = []
    for event in history.events:
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            scheduled[event.event_id] = (
                event.activity_task_scheduled_event_attributes.activity_type.name
            )
        elif event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED:
            started = event.activity_task_started_event_attributes
            starts.append((scheduled[started.scheduled_event_id], started))
    return starts


async def test_batches_spread_over_two_workers_and_a_killed_one_is_taken_over(
    tmp_path: Path,
    postgres: PostgresCluster,
    temporal_env: WorkflowEnvironment,
    corpus: Path,
) -> None:
    queue = f"test-{uuid.uuid4().hex[:12]}"
    settings = Settings(
        data_dir=tmp_path / "api",
        uploads_dir=tmp_path / "shared" / "uploads",
        artifacts_dir=tmp_path / "shared" / "artifacts",
        database_url=postgres.url(postgres.create_database()),
        temporal_address=temporal_env.client.service_client.config.target_host,
        temporal_task_queue=queue,
        text_task_queue=f"{queue}-text",
        embedding_task_queue=f"{queue}-embedding",
        extract_pages_per_activity=PAGES_PER_BATCH,
        extract_parallel_batches=4,
        vectorize_parallel_batches=2,
        activity_heartbeat_timeout_seconds=HEARTBEAT_TIMEOUT_S,
        embedding_threads=1,  # three workers on a 2-core machine
    )
    common = settings.model_dump(
        include={
            "uploads_dir",
            "artifacts_dir",
            "database_url",
            "temporal_address",
            "temporal_task_queue",
            "text_task_queue",
            "embedding_task_queue",
            "activity_heartbeat_timeout_seconds",
            "embedding_threads",
        }
    )
    resources = open_resources(settings)  # migrates; Qdrant stays closed in this process
    client = temporal_env.client
    text = [Worker(f"text-{n}", "text", tmp_path, common) for n in (1, 2)]
    embedding = Worker("embedding", "embedding", tmp_path, common)
    workers = [*text, embedding]
    try:
        await wait_for_pollers(client, settings.text_task_queue or "", text)
        await wait_for_pollers(client, settings.embedding_task_queue or "", [embedding])
        started = await IngestionService(resources, client).start(
            store_local_copy(corpus / THESIS, settings.uploads_dir), owner="local"
        )
        handle = client.get_workflow_handle(started.task.workflow_id, result_type=Progress)

        # Both text workers finished extract batches of this one document, and hold more
        # at once. The history records an activity's start when it ends (its last attempt's).
        both = {w.pid for w in text}
        deadline = time.monotonic() + 240
        while True:
            running = await running_extract_workers(handle)
            finished = {
                pid_of(event.identity)
                for name, event in activity_starts(await handle.fetch_history())
                if name == Activity.EXTRACT
            }
            if finished == both and running == both:
                break
            for worker in workers:
                worker.check_running()
            progress = await handle.query(PROGRESS_QUERY, result_type=Progress)
            assert progress.current_step in (Step.UPLOAD, Step.EXTRACT), (running, progress)
            assert time.monotonic() < deadline, f"never both: ran {finished}, running {running}"
            await asyncio.sleep(0.2)
        victim, survivor = text
        # Read what the victim runs again just before the kill: the loop's reading came before
        # its history fetch, and a batch can end in between (then nothing is left to take over).
        while victim.pid not in await running_extract_workers(handle):
            assert time.monotonic() < deadline, "the victim ran no extract batch"
            await asyncio.sleep(0.02)
        victim.kill()

        deadline = time.monotonic() + 420
        while True:
            progress = await handle.query(PROGRESS_QUERY, result_type=Progress)
            if progress.status in (Status.COMPLETED, Status.FAILED, Status.CANCELLED):
                break
            survivor.check_running()
            embedding.check_running()
            assert time.monotonic() < deadline, f"the document did not finish: {progress}"
            await asyncio.sleep(0.5)
        assert progress.status == Status.COMPLETED, progress
        history = await handle.fetch_history()
        for worker in (survivor, embedding):
            assert worker.stop() == 0, worker.tail()
    except BaseException as exc:
        exc.add_note("\n".join(worker.tail() for worker in workers))
        raise
    finally:
        for worker in workers:
            worker.stop()
        resources.close()

    starts = activity_starts(history)
    by_activity: dict[str, set[int]] = {}
    for name, event in starts:
        by_activity.setdefault(name, set()).add(pid_of(event.identity))
    # Text work on the text workers, the vectors made by the embedding worker alone.
    assert by_activity[Activity.EXTRACT] == {victim.pid, survivor.pid}
    assert by_activity[Activity.CHUNK] <= {survivor.pid}
    assert by_activity[Activity.VECTORIZE] == {embedding.pid}

    # The victim's batches were taken over: started again by the survivor after the server
    # timed out their heartbeats.
    taken_over = [
        event
        for name, event in starts
        if name == Activity.EXTRACT and event.attempt >= 2 and pid_of(event.identity) != victim.pid
    ]
    assert taken_over, "no extract batch of the killed worker was taken over"
    assert {event.last_failure.timeout_failure_info.timeout_type for event in taken_over} == {
        TimeoutType.TIMEOUT_TYPE_HEARTBEAT
    }

    # Every page once, every chunk exactly one vector (points are keyed by chunk id).
    page_count = progress.page_count or 0
    assert progress.pages_extracted == page_count > 4 * PAGES_PER_BATCH
    assert progress.chunk_count and progress.chunks_embedded == progress.chunk_count
    store = VectorStore.connect(
        url=None,
        api_key=None,
        path=tmp_path / "embedding" / "qdrant",
        # What search reads: the alias of the active index version (core.search.index_versions).
        collection=alias_name(settings.qdrant_collection),
    )
    try:
        assert store.count(started.task.document_id) == progress.chunk_count
    finally:
        store.close()
