"""Re-index throughput next to first-time ingestion's, through the real workflows.

A throwaway Temporal dev server and one worker in this process (its embedding process and
text child as in production): the corpus is ingested (upload to vectors: extraction,
chunking, embedding), then re-indexed with another chunk size from the kept text. Both are
reported in chunks per second of wall time, model load excluded (the worker loads it first).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from bench.stack import FAST_DEV_SERVER, temporal_binary

REINDEX_CHUNK_TOKENS = 96


def run_reindex(files: list[Path], workdir: Path) -> dict[str, Any]:
    return asyncio.run(_run(files, workdir))


async def _run(files: list[Path], workdir: Path) -> dict[str, Any]:
    from core.ingestion import offload
    from core.ingestion.service import IngestionService
    from core.ingestion.uploads import store_local_copy
    from core.runtime import open_resources
    from core.settings import Settings
    from worker import ACTIVITY_THREADS, build_worker, start_ingestion_processes
    from workflows.contracts import Progress, Status
    from workflows.reindex_contracts import (
        REINDEX_WORKFLOW,
        ReindexInput,
        ReindexOptions,
        ReindexProgress,
    )

    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=temporal_binary(),  # found also off PATH, as under `make bench`
        data_converter=pydantic_data_converter,
        dev_server_extra_args=FAST_DEV_SERVER,
        dev_server_log_level="error",
    )
    try:
        client = env.client
        settings = Settings(
            data_dir=workdir / "data",
            temporal_address=client.service_client.config.target_host,
            temporal_task_queue=f"bench-{uuid.uuid4().hex[:8]}",
        )
        resources = open_resources(settings)
        start_ingestion_processes(resources)
        # The model loads before the clock starts (as the other pipelines exclude it).
        warm = offload.embedding_work.submit(
            offload.embed_texts, resources.embedder_config(), ["warm-up"]
        )
        await asyncio.to_thread(warm.result)
        with ThreadPoolExecutor(max_workers=ACTIVITY_THREADS) as executor:
            worker = build_worker(
                client, resources, executor=executor, task_queue=settings.temporal_task_queue
            )
            async with worker:
                ingestion = IngestionService(resources, client)
                started_at = time.perf_counter()
                handles = []
                for path in files:
                    started = await ingestion.start(
                        store_local_copy(path, settings.uploads_dir), owner="local"
                    )
                    handles.append(
                        client.get_workflow_handle(started.task.workflow_id, result_type=Progress)
                    )
                finals = await asyncio.gather(
                    *(h.result() for h in handles), return_exceptions=True
                )
                ingest_s = time.perf_counter() - started_at
                done = [
                    f for f in finals if isinstance(f, Progress) and f.status == Status.COMPLETED
                ]
                ingest_chunks = sum(f.chunk_count or 0 for f in done)

                spec = replace(resources.versions.configured, chunk_tokens=REINDEX_CHUNK_TOKENS)
                target = await asyncio.to_thread(resources.versions.prepare_target, spec)
                started_at = time.perf_counter()
                reindex = await client.start_workflow(
                    REINDEX_WORKFLOW,
                    ReindexInput(
                        target.version,
                        target.collection,
                        ReindexOptions(window=settings.reindex_window),
                    ),
                    id=f"bench-reindex-{uuid.uuid4().hex[:8]}",
                    task_queue=settings.temporal_task_queue,
                    result_type=ReindexProgress,
                )
                result = await reindex.result()
                reindex_s = time.perf_counter() - started_at
        resources.close()
    finally:
        await env.shutdown()
    return {
        "documents": len(done),
        "ingestion": {
            "chunks": ingest_chunks,
            "seconds": round(ingest_s, 2),
            "chunks_per_s": round(ingest_chunks / ingest_s, 1) if ingest_s else None,
        },
        "reindex": {
            "status": result.status,
            "chunk_tokens": REINDEX_CHUNK_TOKENS,
            "chunks": result.chunks_done,
            "failed": len(result.failed),
            "seconds": round(reindex_s, 2),
            "chunks_per_s": round(result.chunks_done / reindex_s, 1) if reindex_s else None,
        },
    }
