"""A worker killed (SIGKILL) in the middle of a re-index: another takes over, and the new
version ends with exactly one vector per chunk.

The 117-page thesis is ingested (128-token chunks) by a worker in this process; then real
``python worker.py`` processes, configured for 64-token chunks, run the re-index. The first
is killed while it embeds the thesis into the new version; the second finishes it.
"""

from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path

import pytest
from temporalio.client import Client, WorkflowHandle
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment

from core.ingestion.service import IngestionService
from core.ingestion.uploads import store_local_copy
from core.runtime import open_resources
from core.search.index_versions import IndexSpec
from core.settings import Settings
from tests.durability.test_crash_and_restart import (
    THESIS,
    WorkerProcesses,
    activity_starts,
    ended,
    in_process_worker,
    wait_for_progress,
)
from workflows.contracts import Progress, Status, StepProgress
from workflows.reindex_contracts import (
    REINDEX_PROGRESS_QUERY,
    REINDEX_WORKFLOW,
    ReindexActivity,
    ReindexInput,
    ReindexOptions,
    ReindexProgress,
    ReindexStatus,
    document_workflow_id,
)

pytestmark = pytest.mark.slow

NEW_CHUNK_TOKENS = 64


async def embedded_chunks(client: Client, workflow_id: str) -> int:
    """How many chunks the running rebuild reports embedded (its heartbeat), 0 if none yet."""
    try:
        description = await client.get_workflow_handle(workflow_id).describe()
    except Exception:  # the child is not started yet
        return 0
    for pending in description.raw_description.pending_activities:
        if pending.activity_type.name != ReindexActivity.DOCUMENT:
            continue
        if not pending.heartbeat_details.payloads:
            return 0
        [details] = await client.data_converter.decode(pending.heartbeat_details.payloads)
        beat = StepProgress.from_details(details)
        return beat.done if beat is not None and beat.step == "vectorize" else 0
    return 0


async def reindex_ended(
    handle: WorkflowHandle[object, ReindexProgress], timeout: float
) -> ReindexProgress:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            progress: ReindexProgress = await handle.query(
                REINDEX_PROGRESS_QUERY, result_type=ReindexProgress
            )
        except RPCError:
            # A query needs a worker to answer it: until the killed worker's replacement polls
            # (it loads torch and the model first), the server times the query out. Ask again.
            await asyncio.sleep(0.5)
            continue
        if progress.status in (ReindexStatus.COMPLETED, ReindexStatus.CANCELLED) or (
            progress.status == ReindexStatus.WAITING_FOR_RETRY
        ):
            return progress
        await asyncio.sleep(0.5)
    raise AssertionError("the re-index did not end")


async def test_a_worker_killed_mid_reindex_is_replaced_with_one_vector_per_chunk(
    temporal_env: WorkflowEnvironment, corpus: Path, tmp_path: Path
) -> None:
    client = temporal_env.client
    settings = Settings(
        data_dir=tmp_path / "data",
        temporal_address=client.service_client.config.target_host,
        temporal_task_queue=f"test-reindex-{time.monotonic_ns()}",
        activity_heartbeat_timeout_seconds=5,
        embedding_batch_size=8,
    )
    resources = open_resources(settings)
    try:
        async with in_process_worker(client, resources):
            started = await IngestionService(resources, client).start(
                store_local_copy(corpus / THESIS, settings.uploads_dir), owner="local"
            )
            handle = client.get_workflow_handle(started.task.workflow_id, result_type=Progress)
            final = await wait_for_progress(handle, ended, timeout=300)
            assert final.status == Status.COMPLETED, final
        document_id = started.task.document_id
        old_count = final.chunk_count
        target_spec = IndexSpec.from_settings(
            settings.model_copy(update={"chunk_tokens": NEW_CHUNK_TOKENS})
        )
        target = resources.versions.prepare_target(target_spec)
    finally:
        resources.close()  # local mode: the folder is the workers' now

    workers = WorkerProcesses(settings, tmp_path)
    workers._env["DOCCHAT_CHUNK_TOKENS"] = str(NEW_CHUNK_TOKENS)
    try:
        first = workers.start()
        reindex = await client.start_workflow(
            REINDEX_WORKFLOW,
            ReindexInput(
                target.version,
                target.collection,
                ReindexOptions(window=2, max_attempts=5, heartbeat_timeout_seconds=5),
            ),
            id=f"reindex-crash-{time.monotonic_ns()}",
            task_queue=settings.temporal_task_queue,
            result_type=ReindexProgress,
        )
        child = document_workflow_id(target.version, document_id)
        deadline = time.monotonic() + 180
        while await embedded_chunks(client, child) < 16:
            assert first.poll() is None, workers.log_tail()
            assert time.monotonic() < deadline, workers.log_tail()
            await asyncio.sleep(0.2)
        workers.kill(first)
        assert first.wait(timeout=10) == -signal.SIGKILL

        second = workers.start()
        done = await reindex_ended(reindex, timeout=300)
        assert done.status == ReindexStatus.COMPLETED, (done, workers.log_tail())
        assert done.failed == [] and done.swapped
        retried = [
            event
            for name, event in activity_starts(
                await client.get_workflow_handle(child).fetch_history()
            )
            if name == ReindexActivity.DOCUMENT and event.attempt >= 2
        ]
        assert retried, "the killed worker's rebuild was not taken over"
        second.send_signal(signal.SIGTERM)
        assert await asyncio.to_thread(second.wait, 25) == 0, workers.log_tail()
    finally:
        workers.stop_all()

    resources = open_resources(settings.model_copy(update={"chunk_tokens": NEW_CHUNK_TOKENS}))
    try:
        assert resources.versions.active_version() == target.version
        store = resources.versions.store(resources.versions.get(target.version))
        indexes: list[int] = []
        with store.locked_client() as qdrant:
            offset = None
            while True:
                records, offset = qdrant.scroll(
                    store.collection, limit=512, offset=offset, with_payload=["chunk_index"]
                )
                indexes += [int((r.payload or {})["chunk_index"]) for r in records]
                if offset is None:
                    break
        # Exactly one vector per chunk: every index once, none missing, none doubled.
        assert sorted(indexes) == list(range(len(indexes)))
        assert len(indexes) == done.chunks_done
        assert old_count is not None and len(indexes) > old_count
    finally:
        resources.close()
