"""``python -m bench.scale``: how ingestion scales with worker processes on this machine.

Two tables, against one Temporal dev server and one throwaway PostgreSQL:

* the corpus ingested by 1, 2 and 4 ``python worker.py`` processes (pages/s, and the CPU
  the machine had: the cores saturate long before the workers run out);
* one generated large document across 2 workers, its batches in parallel (the default
  windows) against one at a time (``DOCCHAT_*_PARALLEL_BATCHES=1``).

Every worker has its own data dir, so its own local Qdrant store (local mode is one process
per folder); uploads and artifacts are shared folders, as a volume is in production. The
documents are started through ``IngestionService`` from this process, which never opens
Qdrant. Results go to bench/results/scale.json. A 10,000-page document:
``--large-pages 10000 --max-pages 10000`` (its history is bounded by continue-as-new).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from bench.corpus import DEFAULT_CORPUS, REPO, list_pdfs
from bench.stack import FAST_DEV_SERVER, temporal_binary
from core.ingestion import records
from core.ingestion.service import IngestionService
from core.ingestion.tables import ProcessingStatus
from core.ingestion.uploads import store_local_copy
from core.runtime import open_resources
from core.settings import Settings
from tests.helpers import load_worker_healthcheck
from tests.pdfs import text_pdf
from tests.postgres import PostgresCluster

RESULTS = Path(__file__).resolve().parent / "results"
DONE = {ProcessingStatus.COMPLETED, ProcessingStatus.FAILED, ProcessingStatus.CANCELLED}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.scale", description=__doc__)
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument(
        "--workers", default="1,2,4", help="worker counts; empty: no corpus table (%(default)s)"
    )
    parser.add_argument(
        "--windows",
        default="1,4",
        help="parallel batch windows for the large document, 1 = in sequence (%(default)s)",
    )
    parser.add_argument("--large-pages", type=int, default=400)
    parser.add_argument("--max-pages", type=int, default=2000, help="DOCCHAT_MAX_PAGES")
    parser.add_argument(
        "--continue-as-new-after-events",
        type=int,
        default=None,
        help="DOCCHAT_CONTINUE_AS_NEW_AFTER_EVENTS for the large document (default: the setting's)",
    )
    parser.add_argument("--quick", action="store_true", help="the corpus without its big PDF")
    parser.add_argument("--out", type=Path, default=RESULTS / "scale.json")
    return parser.parse_args(argv)


def large_pdf(path: Path, pages: int) -> Path:
    lines = [
        [f"Section {n}: the measured value of item {n} is {n * 37 % 1009} units.", f"Note {n}."]
        for n in range(1, pages + 1)
    ]
    path.write_bytes(text_pdf(lines))
    return path


async def ingest(
    files: list[Path],
    workers: int,
    *,
    temporal: WorkflowEnvironment,
    postgres: PostgresCluster,
    work: Path,
    **settings: Any,
) -> dict[str, Any]:
    """Ingest ``files`` with ``workers`` worker processes; seconds and pages/s."""
    run = work / uuid.uuid4().hex[:8]
    base = Settings(
        data_dir=run / "api",
        uploads_dir=run / "uploads",
        artifacts_dir=run / "artifacts",
        database_url=postgres.url(postgres.create_database()),
        temporal_address=temporal.client.service_client.config.target_host,
        temporal_task_queue=f"scale-{uuid.uuid4().hex[:12]}",
        embedding_threads=max(1, (os.cpu_count() or 1) // workers),
        **settings,
    )
    shared = base.model_dump(
        include={
            "uploads_dir",
            "artifacts_dir",
            "database_url",
            "temporal_address",
            "temporal_task_queue",
            "embedding_threads",
            *settings,
        }
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOCCHAT_")}
    resources = open_resources(base)
    processes = []
    for n in range(workers):
        worker_env = env | {f"DOCCHAT_{k.upper()}": str(v) for k, v in shared.items()}
        worker_env |= {"DOCCHAT_DATA_DIR": str(run / f"worker-{n}"), "PYTHONPATH": str(REPO)}
        log = (run / f"worker-{n}.log").open("wb")
        processes.append(
            subprocess.Popen(
                [sys.executable, "worker.py"], cwd=REPO, env=worker_env, stdout=log, stderr=log
            )
        )
    try:
        # The clock starts once every worker polls: start-up (torch, the model) is not ingestion.
        pollers = load_worker_healthcheck().poller_identities
        while len(await pollers(temporal.client, base.temporal_task_queue)) < workers:
            if any(process.poll() is not None for process in processes):
                raise RuntimeError(f"a worker exited; see {run}/worker-*.log")
            await asyncio.sleep(0.5)
        service = IngestionService(resources, temporal.client)
        started_at = time.perf_counter()
        started = [
            await service.start(store_local_copy(path, base.uploads_dir), owner="bench")
            for path in files
        ]
        ids = [item.task.id for item in started]
        while True:
            rows = [records.get_task(resources.engine, task_id) for task_id in ids]
            if all(row is not None and row.status in DONE for row in rows):
                break
            for process in processes:
                if process.poll() is not None:
                    raise RuntimeError(f"a worker exited; see {run}/worker-*.log")
            await asyncio.sleep(0.5)
        seconds = time.perf_counter() - started_at
        load = os.getloadavg()[0]
        runs = [await history_lengths(temporal, row.workflow_id) for row in rows if row]
        pages = sum(row.page_count or 0 for row in rows if row is not None)
        failed = sum(1 for row in rows if row is not None and row.status != "completed")
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(60)
            except subprocess.TimeoutExpired:
                process.kill()
        resources.close()
    return {
        "workers": workers,
        "documents": len(files),
        "pages": pages,
        "failed": failed,
        "seconds": round(seconds, 1),
        "pages_per_s": round(pages / seconds, 2) if seconds else None,
        "load_1min": round(load, 2),
        "cpus": os.cpu_count(),
        # Continue-as-new bounds each run's history: the longest run, and how many runs.
        "workflow_runs": max(len(lengths) for lengths in runs),
        "max_events_per_run": max(max(lengths) for lengths in runs),
    }


async def history_lengths(temporal: WorkflowEnvironment, workflow_id: str) -> list[int]:
    """Events in each run of a workflow, from the last run back to the first."""
    handle = temporal.client.get_workflow_handle(workflow_id)
    lengths = []
    run_id: str | None = (await handle.describe()).run_id
    while run_id:
        events = (await temporal.client.get_workflow_handle(workflow_id, run_id=run_id)
                  .fetch_history()).events  # fmt: skip
        lengths.append(len(events))
        run_id = events[0].workflow_execution_started_event_attributes.continued_execution_run_id
        run_id = run_id or None
    return lengths


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    files = list_pdfs(args.corpus.resolve(), quick=args.quick)
    temporal = await WorkflowEnvironment.start_local(
        dev_server_existing_path=temporal_binary(),
        data_converter=pydantic_data_converter,
        dev_server_extra_args=FAST_DEV_SERVER,
        dev_server_log_level="error",
    )
    postgres = PostgresCluster()
    postgres.start()
    work = Path(tempfile.mkdtemp(prefix="docchat-scale-"))
    try:
        corpus_rows = [
            await ingest(files, int(n), temporal=temporal, postgres=postgres, work=work)
            for n in args.workers.split(",")
            if n
        ]
        large = large_pdf(work / "large.pdf", args.large_pages)
        history_limit = (
            {}
            if args.continue_as_new_after_events is None
            else {"continue_as_new_after_events": args.continue_as_new_after_events}
        )
        large_rows = {
            label: await ingest(
                [large],
                2,
                temporal=temporal,
                postgres=postgres,
                work=work,
                max_pages=args.max_pages,
                **history_limit,
                extract_parallel_batches=window,
                vectorize_parallel_batches=window,
            )
            for window in map(int, args.windows.split(","))
            for label in ["in sequence" if window == 1 else f"in parallel ({window})"]
        }
    finally:
        postgres.stop()
        await temporal.shutdown()
        shutil.rmtree(work, ignore_errors=True)
    return {"corpus": corpus_rows, "large_document": large_rows}


def print_tables(results: dict[str, Any]) -> None:
    print("corpus throughput by worker processes (one dev server, one PostgreSQL)")
    print("| workers | documents | pages | seconds | pages/s | load (1 min) | cpus |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for row in results["corpus"]:
        print(
            f"| {row['workers']} | {row['documents']} | {row['pages']} | {row['seconds']} "
            f"| {row['pages_per_s']} | {row['load_1min']} | {row['cpus']} |"
        )
    print("\none large document across 2 workers")
    print("| batches | pages | seconds | pages/s | workflow runs | max events per run |")
    print("| --- | --- | --- | --- | --- | --- |")
    for label, row in results["large_document"].items():
        print(
            f"| {label} | {row['pages']} | {row['seconds']} | {row['pages_per_s']} "
            f"| {row['workflow_runs']} | {row['max_events_per_run']} |"
        )


def run(corpus: Path, workdir: Path, *, quick: bool) -> dict[str, Any]:
    """The ``scale`` section of ``python -m bench``: 1, 2, 4 workers (``--quick``: 1 and 2, the
    corpus without its big PDF, a 100-page large document instead of 400)."""
    argv = ["--corpus", str(corpus), "--out", str(workdir / "scale.json")]
    argv += ["--quick", "--workers", "1,2", "--large-pages", "100"] if quick else []
    return asyncio.run(main_async(parse_args(argv)))


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    results = asyncio.run(main_async(args))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print_tables(results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
