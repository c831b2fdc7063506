"""Runs a docchat ingestion worker against the configured Temporal, database and Qdrant.

    python worker.py

SIGTERM or Ctrl-C stop it gracefully: running activities get time to finish or heartbeat.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

from temporalio.client import Client
from temporalio.worker import Worker

from activities.ingest import IngestActivities, IngestDependencies
from core.ingestion import offload
from core.ingestion.sweeper import start_sweeper_for
from core.runtime import Resources, freeze_startup_heap, open_resources
from core.search.local_qdrant import LocalQdrantClaim, QdrantFolderInUseError
from core.search.model_identity import EmbeddingModelMismatchError
from core.settings import ConfigurationError, Settings, get_settings
from core.temporal import connect_temporal
from workflows.ingest import IngestDocumentWorkflow

log = logging.getLogger("docchat.worker")

ACTIVITY_THREADS = 4
HEARTBEAT_EVERY_S = 0.5


def start_ingestion_processes(resources: Resources) -> None:
    """Start the child processes and load the model now, not on the first document."""
    offload.configure(niceness=resources.settings.ingest_niceness)
    offload.text_work.start()
    offload.embedding_work.submit(offload.load_embedder, resources.embedder_config())


def build_worker(
    client: Client, resources: Resources, *, executor: ThreadPoolExecutor, task_queue: str
) -> Worker:
    activities = IngestActivities(IngestDependencies.from_resources(resources))
    return Worker(
        client,
        task_queue=task_queue,
        workflows=[IngestDocumentWorkflow],
        activities=activities.all(),
        activity_executor=executor,
        max_concurrent_activities=ACTIVITY_THREADS,
        # Heartbeats carry cancellation, and how far a step got (the progress status reads
        # show): send them often, so a cancel lands within a second and progress moves twice
        # a second.
        max_heartbeat_throttle_interval=timedelta(seconds=HEARTBEAT_EVERY_S),
        default_heartbeat_throttle_interval=timedelta(seconds=HEARTBEAT_EVERY_S),
        graceful_shutdown_timeout=timedelta(seconds=20),
    )


async def run_worker(settings: Settings) -> None:
    # First, before anything is opened or connected: a local Qdrant folder is one process's.
    claim = LocalQdrantClaim.take(settings, role="a worker")
    resources = open_resources(settings)
    # Now rather than at the first upload: a collection of the layout before keyword search
    # is migrated (progress in the log) and one of another embedding model stops the worker.
    await asyncio.to_thread(resources.vectors.ensure_collection)
    start_ingestion_processes(resources)
    client = await connect_temporal(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    with ThreadPoolExecutor(max_workers=ACTIVITY_THREADS) as executor:
        worker = build_worker(
            client, resources, executor=executor, task_queue=settings.temporal_task_queue
        )
        async with worker:
            log.info("worker polling task queue %s", settings.temporal_task_queue)
            sweeper = start_sweeper_for(resources)
            freeze_startup_heap()
            await stop.wait()
            log.info("shutting down")
            sweeper.cancel()
    resources.close()
    if claim is not None:
        claim.release()


def main() -> None:
    try:
        settings = get_settings()
    except ConfigurationError as exc:
        sys.exit(f"docchat worker: {exc}")
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(name)s %(message)s")
    try:
        asyncio.run(run_worker(settings))
    except QdrantFolderInUseError as exc:
        sys.exit(f"docchat worker: {exc}")
    except EmbeddingModelMismatchError as exc:
        sys.exit(f"docchat worker: {exc.message}")


if __name__ == "__main__":
    main()
