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

from prometheus_client import start_http_server
from temporalio.client import Client
from temporalio.worker import Worker

from activities.ingest import IngestActivities, IngestDependencies
from activities.reindex import ReindexActivities
from core.ingestion import offload
from core.ingestion.sweeper import start_sweeper_for
from core.observability import log_context
from core.observability.activity_metrics import (
    ActivityMetricsInterceptor,
    ContextThreadPoolExecutor,
)
from core.observability.tracing import configure_tracing
from core.runtime import Resources, freeze_startup_heap, open_resources
from core.search.local_qdrant import LocalQdrantClaim, QdrantFolderInUseError
from core.search.model_identity import EmbeddingModelMismatchError
from core.settings import ConfigurationError, Settings, get_settings, worker_roles
from core.temporal import connect_temporal
from workflows.ingest import IngestDocumentWorkflow
from workflows.reindex import ReindexDocumentWorkflow, ReindexWorkflow

log = logging.getLogger("docchat.worker")

# Threads for a worker of default settings (DOCCHAT_WORKER_ACTIVITY_SLOTS): callers that size
# their own executor for one worker use it.
ACTIVITY_THREADS: int = Settings.model_fields["worker_activity_slots"].default
HEARTBEAT_EVERY_S = 0.5


def start_ingestion_processes(resources: Resources, *, embeds: bool = True) -> None:
    """Start the child processes and load the model now, not on the first document (a
    worker that serves no embedding queue loads it only if a legacy run needs it)."""
    offload.configure(niceness=resources.settings.ingest_niceness)
    offload.text_work.start()
    if embeds:
        offload.embedding_work.submit(offload.load_embedder, resources.embedder_config())


def report_index(resources: Resources, *, strict: bool = True) -> None:
    """Log whether the settings match the active index version. A worker whose embedding
    model differs keeps running: it is the one that re-indexes into the new model. Not
    ``strict`` (the API's embedded worker), an unreachable store is only logged: the API
    starts and reports it in /health."""
    try:
        resources.vectors.ensure_collection()
    except EmbeddingModelMismatchError as exc:
        log.warning("index: %s", exc.message)
    except Exception:
        if strict:
            raise
        log.warning("index: the vector store could not be opened", exc_info=True)
        return
    try:
        report = resources.versions.report()
    except Exception:  # an unreachable store: /health and the first use report it, typed
        log.warning("index: the index versions could not be read", exc_info=True)
        return
    if not report["matches"]:
        log.warning("index: %s (differences: %s)", report["action"], report["differences"])


def build_worker(
    client: Client, resources: Resources, *, executor: ThreadPoolExecutor, task_queue: str
) -> Worker:
    """A worker for the workflows and every activity on one task queue."""
    deps = IngestDependencies.from_resources(resources)
    activities = IngestActivities(deps)
    reindex = ReindexActivities(deps, resources.versions)
    return _worker(
        client,
        task_queue,
        [*activities.all(), *reindex.all()],
        executor=executor,
        workflows=True,
        fair_shares=resources.settings.fair_shares,
        slots=resources.settings.worker_activity_slots,
    )


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
    deps = IngestDependencies.from_resources(resources)
    activities = IngestActivities(deps)
    reindex = ReindexActivities(deps, resources.versions)
    kinds = {
        # The re-index runs on the workflows' queue: its activities embed (a worker serving it
        # loads the model when one is needed), and its workflows live there.
        "all": lambda: [*activities.all(), *reindex.all()],
        "text": activities.text,
        "embedding": activities.embedding,
    }
    return [
        _worker(
            client,
            queue,
            kinds[kind](),
            executor=executor,
            workflows=kind == "all",
            fair_shares=resources.settings.fair_shares,
            slots=resources.settings.worker_activity_slots,
        )
        for queue, kind in plan.queues
    ]


def _worker(
    client: Client,
    task_queue: str,
    activities: list[Callable[..., object]],
    *,
    executor: ThreadPoolExecutor,
    workflows: bool,
    fair_shares: bool,
    slots: int,
) -> Worker:
    return Worker(
        client,
        task_queue=task_queue,
        workflows=(
            [IngestDocumentWorkflow, ReindexWorkflow, ReindexDocumentWorkflow] if workflows else []
        ),
        activities=activities,
        activity_executor=executor,
        # Step durations, retries and failures (core/observability); the client's tracing
        # interceptor, when on, is added by the SDK itself.
        interceptors=[ActivityMetricsInterceptor()],
        # An eagerly started activity skips the server's matching, and with it the round-robin
        # of fairness keys: a principal with many workflows would keep every slot.
        disable_eager_activity_execution=fair_shares,
        max_concurrent_activities=slots,
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
    # is migrated (progress in the log), a pre-versions one adopted as index version 1, and
    # settings that no longer match the active version are reported with what to do.
    await asyncio.to_thread(report_index, resources)
    start_ingestion_processes(resources, embeds=plan.embeds)
    configure_tracing(settings, service_name="docchat-worker")
    if settings.worker_metrics_port is not None:
        # Prometheus scrapes each worker here: its step histograms and counters live in it.
        start_http_server(settings.worker_metrics_port, addr=settings.worker_metrics_host)
        log.info("metrics on port %d", settings.worker_metrics_port)
    client = await connect_temporal(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    # Each queue's worker may run worker_activity_slots activities: a thread for each, so a
    # started activity never waits for a thread (and misses its heartbeats).
    threads = settings.worker_activity_slots * len(plan.queues)
    with ContextThreadPoolExecutor(max_workers=threads) as executor:
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
    log_context.install()
    logging.basicConfig(level=settings.log_level.upper(), format=log_context.LOG_FORMAT)
    try:
        asyncio.run(run_worker(settings, roles))
    except QdrantFolderInUseError as exc:
        sys.exit(f"docchat worker: {exc}")
    except EmbeddingModelMismatchError as exc:
        sys.exit(f"docchat worker: {exc.message}")


if __name__ == "__main__":
    main()
