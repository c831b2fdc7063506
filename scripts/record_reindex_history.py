"""Record the re-index histories that ``tests/replay/test_reindex_replay.py`` replays.

    python scripts/record_reindex_history.py

Runs the real workflows and activities (pypdf, MiniLM, Qdrant local mode) against a throwaway
Temporal dev server: two small corpus PDFs are ingested, then re-indexed into a version with
64-token chunks, one document per run, so the first two runs end by continuing as new:

* ``first_run``: counts, lists, rebuilds one document in a child, continues as new;
* ``last_run``: the third run: finds no more documents, swaps the alias, checks for late ones;
* ``document``: one child ``ReindexDocument``.

Written to ``tests/replay/histories/reindex/`` only when the re-index completed. Re-record
after a deliberate, versioned change (docs/workflow-changes.md), never to make replay pass.
"""

from __future__ import annotations

import asyncio
import shutil
import sys
import tempfile
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from temporalio.contrib.pydantic import pydantic_data_converter  # noqa: E402
from temporalio.testing import WorkflowEnvironment  # noqa: E402

from core.ingestion.service import IngestionService  # noqa: E402
from core.ingestion.uploads import store_local_copy  # noqa: E402
from core.runtime import open_resources  # noqa: E402
from core.settings import Settings  # noqa: E402
from worker import ACTIVITY_THREADS, build_worker  # noqa: E402
from workflows.contracts import Progress  # noqa: E402
from workflows.reindex_contracts import (  # noqa: E402
    REINDEX_WORKFLOW,
    ReindexInput,
    ReindexOptions,
    ReindexProgress,
    ReindexStatus,
    document_workflow_id,
)

HISTORIES = REPO / "tests" / "replay" / "histories" / "reindex"
CORPUS = REPO.parent / "shared" / "corpus"
DOCUMENTS = ("crazyones-pdfa.pdf", "pdflatex-4-pages.pdf")


async def record() -> dict[str, str]:
    data = Path(tempfile.mkdtemp(prefix="reindex-history-"))
    binary = shutil.which("temporal")
    assert binary, "the temporal CLI must be on PATH"
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=binary, data_converter=pydantic_data_converter
    )
    try:
        settings = Settings(
            data_dir=data,
            temporal_address=env.client.service_client.config.target_host,
            temporal_task_queue=f"record-{uuid.uuid4().hex[:8]}",
        )
        resources = open_resources(settings)
        client = env.client
        with ThreadPoolExecutor(max_workers=ACTIVITY_THREADS) as executor:
            worker = build_worker(
                client, resources, executor=executor, task_queue=settings.temporal_task_queue
            )
            async with worker:
                ingestion = IngestionService(resources, client)
                document_ids = []
                for name in DOCUMENTS:
                    started = await ingestion.start(
                        store_local_copy(CORPUS / name, settings.uploads_dir), owner="local"
                    )
                    handle = client.get_workflow_handle(
                        started.task.workflow_id, result_type=Progress
                    )
                    await handle.result()
                    document_ids.append(started.task.document_id)
                spec = replace(resources.versions.configured, chunk_tokens=64)
                target = resources.versions.prepare_target(spec)
                reindex = await client.start_workflow(
                    REINDEX_WORKFLOW,
                    ReindexInput(
                        target.version,
                        target.collection,
                        ReindexOptions(window=1, page_size=1, documents_per_run=1),
                    ),
                    id=f"reindex-{uuid.uuid4().hex[:8]}",
                    task_queue=settings.temporal_task_queue,
                    result_type=ReindexProgress,
                )
                done = await reindex.result()
                assert done.status == ReindexStatus.COMPLETED and done.runs == 3, done
                first = client.get_workflow_handle(
                    reindex.id, run_id=reindex.first_execution_run_id
                )
                child = client.get_workflow_handle(
                    document_workflow_id(target.version, document_ids[0])
                )
                histories = {
                    "first_run": (await first.fetch_history()).to_json(),
                    "last_run": (
                        await client.get_workflow_handle(reindex.id).fetch_history()
                    ).to_json(),
                    "document": (await child.fetch_history()).to_json(),
                }
        resources.close()
        return histories
    finally:
        await env.shutdown()
        shutil.rmtree(data, ignore_errors=True)


def main() -> None:
    histories = asyncio.run(record())
    HISTORIES.mkdir(parents=True, exist_ok=True)
    for name, text in histories.items():
        (HISTORIES / f"{name}.json").write_text(text, encoding="utf-8")
        print(f"{name}: {len(text)} bytes")


if __name__ == "__main__":
    main()
