"""Runs a docchat ingestion worker against the configured Temporal, database and Qdrant.

    python worker.py [--queues text,embedding]

``--queues`` (or DOCCHAT_WORKER_QUEUES) chooses what it serves: ``text`` (the workflows and
the text work: validate, extract, OCR, chunk), ``embedding`` (vectorize, on
DOCCHAT_EMBEDDING_TASK_QUEUE), or both (the default).

SIGTERM or Ctrl-C stop it gracefully: running activities get time to finish or heartbeat.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta

from temporalio.client import Client
from temporalio.worker import Worker

from activities.ingest import IngestActivities, IngestDependencies
from core import offload
from core.local_qdrant import LocalQdrantClaim, QdrantFolderInUseError
from core.runtime import Resources, freeze_startup_heap, open_resources
from core.search.model_identity import EmbeddingModelMismatchError
from core.settings import ConfigurationError, Settings, get_settings, worker_roles
from core.sweeper import start_sweeper_for
from core.temporal import connect_temporal
from workflows.ingest import IngestDocumentWorkflow

log = logging.getLogger("docchat.worker")

ACTIVITY_THREADS = 4
HEARTBEAT_EVERY_S = 0.5


def start_ingestion_processes(resources: Resources, *, embeds: bool = True) -> None:
    """Start the child processes and load the model now, not on the first document (a
    worker that serves no embedding queue loads it only if a legacy run needs it)."""
    offload.configure(niceness=resources.settings.ingest_niceness)
    offload.text_work.start()
    if embeds:
        offload.embedding_work.submit(offload.load_embedder, resources.embedder_config())


def build_worker(
    client: Client, resources: Resources, *, executor: ThreadPoolExecutor, task_queue: str
) -> Worker:
    """A worker for the workflows and every activity on one task queue."""
    activities = IngestActivities(IngestDependencies.from_resources(resources))
    return _worker(client, task_queue, activities.all(), executor=executor, workflows=True)


@dataclass(frozen=True)
class QueuePlan:
    """What one worker process serves: per task queue, whether it runs the workflows and
    which activities (``all``, ``text`` or ``embedding`` of ``IngestActivities``)."""

    queues: tuple[tuple[str, str], ...]
    # Whether it embeds as a matter of course (and loads the model at start-up); a text
    # worker embeds only for runs that predate the split queues, loading the model then.
    embeds: bool


def plan_queues(settings: Settings, roles: frozenset[str]) -> QueuePlan:
    """The text role serves the workflows' queue (workflows, the small activities, and every
    activity of runs that predate the split queues) and the text queue; the embedding role
    serves the embedding queue only."""
    main = settings.temporal_task_queue
    queues: list[tuple[str, str]] = []
    if "text" in roles:
        queues.append((main, "all"))
        if settings.text_task_queue not in (None, main):
            queues.append((settings.text_task_queue, "text"))
    if "embedding" in roles:
        if settings.embedding_task_queue not in (None, main):
            queues.append((settings.embedding_task_queue, "embedding"))
        elif "text" not in roles:
            raise ConfigurationError(
                "a worker serving only the embedding queue needs its own queue: set "
                "DOCCHAT_EMBEDDING_TASK_QUEUE (and the same on the API), or serve text too"
            )
    split = settings.embedding_task_queue not in (None, main)
    return QueuePlan(tuple(queues), embeds="embedding" in roles or not split)


def build_workers(
    client: Client, resources: Resources, *, executor: ThreadPoolExecutor, plan: QueuePlan
) -> list[Worker]:
    activities = IngestActivities(IngestDependencies.from_resources(resources))
    kinds = {"all": activities.all, "text": activities.text, "embedding": activities.embedding}
    return [
        _worker(client, queue, kinds[kind](), executor=executor, workflows=kind == "all")
        for queue, kind in plan.queues
    ]


def _worker(
    client: Client,
    task_queue: str,
    activities: list[Callable[..., object]],
    *,
    executor: ThreadPoolExecutor,
    workflows: bool,
) -> Worker:
    return Worker(
        client,
        task_queue=task_queue,
        workflows=[IngestDocumentWorkflow] if workflows else [],
        activities=activities,
        activity_executor=executor,
        max_concurrent_activities=ACTIVITY_THREADS,
        # Heartbeats carry cancellation, and how far a step got (the progress status reads
        # show): send them often, so a cancel lands within a second and progress moves twice
        # a second.
        max_heartbeat_throttle_interval=timedelta(seconds=HEARTBEAT_EVERY_S),
        default_heartbeat_throttle_interval=timedelta(seconds=HEARTBEAT_EVERY_S),
        graceful_shutdown_timeout=timedelta(seconds=20),
    )


async def run_worker(settings: Settings, roles: frozenset[str] | None = None) -> None:
    plan = plan_queues(settings, roles or worker_roles(settings.worker_queues))
    # First, before anything is opened or connected: a local Qdrant folder is one process's.
    claim = LocalQdrantClaim.take(settings, role="a worker")
    resources = open_resources(settings)
    # Now rather than at the first upload: a collection of the layout before keyword search
    # is migrated (progress in the log) and one of another embedding model stops the worker.
    await asyncio.to_thread(resources.vectors.ensure_collection)
    start_ingestion_processes(resources, embeds=plan.embeds)
    client = await connect_temporal(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    # Each queue's worker may run ACTIVITY_THREADS activities: a thread for each, so a started
    # activity never waits for a thread (and misses its heartbeats).
    with ThreadPoolExecutor(max_workers=ACTIVITY_THREADS * len(plan.queues)) as executor:
        workers = build_workers(client, resources, executor=executor, plan=plan)
        async with contextlib.AsyncExitStack() as stack:
            for worker in workers:
                await stack.enter_async_context(worker)
            for queue, kind in plan.queues:
                log.info("worker polling task queue %s (%s)", queue, kind)
            sweeper = start_sweeper_for(resources)
            freeze_startup_heap()
            await stop.wait()
            log.info("shutting down")
            sweeper.cancel()
    resources.close()
    if claim is not None:
        claim.release()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Run a docchat ingestion worker.")
    parser.add_argument(
        "--queues",
        help="what to serve: text, embedding or text,embedding (default: DOCCHAT_WORKER_QUEUES)",
    )
    args = parser.parse_args(argv)
    try:
        settings = get_settings()
        roles = worker_roles(args.queues or settings.worker_queues)
        plan_queues(settings, roles)
    except (ConfigurationError, ValueError) as exc:
        sys.exit(f"docchat worker: {exc}")
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(name)s %(message)s")
    try:
        asyncio.run(run_worker(settings, roles))
    except QdrantFolderInUseError as exc:
        sys.exit(f"docchat worker: {exc}")
    except EmbeddingModelMismatchError as exc:
        sys.exit(f"docchat worker: {exc.message}")


if __name__ == "__main__":
    main()
