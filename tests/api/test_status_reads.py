"""Status polls of a running task read one shared, refreshed view instead of asking the
workflow service once per request (core/ingestion/progress_cache.py)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import pytest

from api.app import create_app
from core.ingestion.service import ACTIVE_STATES, IngestionService, TaskView
from core.ingestion.tables import FileProcessingTask
from core.search.embeddings import Embedder
from core.settings import Settings
from tests.helpers import upload, wait_for_status

READERS = 50


async def test_many_status_polls_of_a_running_task_cost_few_workflow_reads(
    settings: Settings, embedder: Embedder, corpus: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    workflow_reads = 0
    view = IngestionService._view

    async def counting_view(self: IngestionService, task: FileProcessingTask) -> TaskView:
        nonlocal workflow_reads
        if task.state in ACTIVE_STATES:
            workflow_reads += 1
        return await view(self, task)

    monkeypatch.setattr(IngestionService, "_view", counting_view)
    app = create_app(settings, embedder=embedder)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
            task_id = (await upload(client, corpus / "pdflatex-4-pages.pdf")).json()["task_id"]
            path = f"/docs/processing/{task_id}/status"

            responses = await asyncio.gather(*(client.get(path) for _ in range(READERS)))
            bodies: list[dict[str, Any]] = [r.json()["data"] for r in responses]
            assert all(r.status_code == 200 for r in responses)
            assert {body["task_id"] for body in bodies} == {task_id}
            # Every poll answered, and at most a refresh or two of the workflow behind them.
            assert workflow_reads <= 2, workflow_reads

            final, seen = await wait_for_status(client, task_id)
            assert final["status"] == "completed"
            percentages = [snapshot["progress_percentage"] for snapshot in seen]
            assert percentages == sorted(percentages), "a shared view must never step back"
            # The workflow itself answered while the task ran, not only the row.
            assert "workflow" in {snapshot["source"] for snapshot in seen}

            ingestion: IngestionService = app.state.services.ingestion
            # An ended task has nobody refreshing it.
            for _ in range(100):
                if ingestion._views.refreshing == 0:
                    break
                await asyncio.sleep(0.05)
            assert ingestion._views.refreshing == 0
