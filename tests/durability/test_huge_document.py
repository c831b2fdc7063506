"""A generated document too long for one bounded history ingests across several runs.

The same path a 10,000-page PDF takes (``make bench`` measures that one), made small: a
generated 120-page PDF, 4 pages per extract batch, and a history limit of 80 events, so the
workflow continues as new several times, in extraction and in vectorize. The real worker,
pypdf, MiniLM and Qdrant local mode; every run's history stays near the limit and the result
has exactly one vector per chunk.
"""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from temporalio.testing import WorkflowEnvironment

from core.ingestion import records
from core.ingestion.service import IngestionService
from core.ingestion.tables import ProcessingStatus
from core.ingestion.uploads import store_local_copy
from core.runtime import open_resources
from core.search.embeddings import Embedder
from core.settings import Settings
from tests.pdfs import text_pdf
from worker import ACTIVITY_THREADS, build_worker
from workflows.contracts import Progress, Status

pytestmark = pytest.mark.slow

PAGES = 120
LIMIT = 80


def generated_pdf(path: Path) -> Path:
    pages = [
        [f"Page {n} of the generated report, section {n % 7}.", f"Finding {n}: value {n * 37}."]
        for n in range(1, PAGES + 1)
    ]
    path.write_bytes(text_pdf(pages))
    return path


async def test_a_long_document_continues_as_new_and_keeps_one_vector_per_chunk(
    tmp_path: Path, temporal_env: WorkflowEnvironment, embedder: Embedder
) -> None:
    settings = Settings(
        data_dir=tmp_path / "data",
        temporal_address=temporal_env.client.service_client.config.target_host,
        temporal_task_queue=f"test-{uuid.uuid4().hex[:12]}",
        extract_pages_per_activity=4,
        vectorize_chunks_per_activity=8,
        continue_as_new_after_events=LIMIT,
    )
    resources = open_resources(settings, embedder=embedder)
    client = temporal_env.client
    try:
        with ThreadPoolExecutor(max_workers=ACTIVITY_THREADS) as executor:
            async with build_worker(
                client, resources, executor=executor, task_queue=settings.temporal_task_queue
            ):
                source = generated_pdf(tmp_path / "report.pdf")
                started = await IngestionService(resources, client).start(
                    store_local_copy(source, settings.uploads_dir), owner="local"
                )
                handle = client.get_workflow_handle(started.task.workflow_id, result_type=Progress)
                result = await handle.result()  # follows the runs by workflow id
                # From the last run back to the first: each names the run it continued.
                lengths = []
                run_id: str | None = (await handle.describe()).run_id
                while run_id:
                    run = client.get_workflow_handle(handle.id, run_id=run_id)
                    events = (await run.fetch_history()).events
                    lengths.append(len(events))
                    begun = events[0].workflow_execution_started_event_attributes
                    run_id = begun.continued_execution_run_id or None
        assert result.status == Status.COMPLETED, result
        assert result.pages_extracted == result.page_count == PAGES
        assert result.chunk_count and result.chunks_embedded == result.chunk_count
        assert resources.vectors.count(started.task.document_id) == result.chunk_count
        row = records.get_task(resources.engine, started.task.id)
        assert row is not None and row.status == ProcessingStatus.COMPLETED
        # 30 extract batches and the vectorize batches need far more than one limit's worth.
        assert len(lengths) >= 3, lengths
        window = settings.extract_parallel_batches
        assert max(lengths) <= LIMIT + 8 * window, lengths
    finally:
        resources.close()
