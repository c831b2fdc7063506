"""A retryable failure stays retryable when only the row can be read (issue 14, item 8).

With no worker polling, the workflow cannot answer the progress query, and the status comes
from the task's row. The row used to keep only the status, so the failure read as permanent and a
retry answered 409, although the workflow waited for exactly that signal.

The vector-store outage is simulated (see tests/conftest.py); Temporal, the worker, pypdf,
MiniLM and Qdrant local mode are real.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import text

from core.search.embeddings import Embedder
from core.settings import Settings
from tests.helpers import Outage, api_client, upload, wait_for_status
from worker import ACTIVITY_THREADS, build_worker


@contextlib.asynccontextmanager
async def worker_of(client: httpx.AsyncClient, task_queue: str) -> AsyncIterator[None]:
    services: Any = client._transport.app.state.services  # type: ignore[attr-defined]
    with ThreadPoolExecutor(max_workers=ACTIVITY_THREADS) as executor:
        async with build_worker(
            services.temporal, services.resources, executor=executor, task_queue=task_queue
        ):
            yield


async def row_view(client: httpx.AsyncClient, task_id: str, timeout: float = 30) -> dict[str, Any]:
    """The status once it is read from the row (the workflow no longer answers)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        data: dict[str, Any] = (await client.get(f"/docs/processing/{task_id}/status")).json()[
            "data"
        ]
        if data["source"] == "database":
            return data
        await asyncio.sleep(0.2)
    raise AssertionError(f"the status of {task_id} never came from the row")


async def test_a_failed_task_is_retried_while_no_worker_answers(
    settings: Settings, embedder: Embedder, corpus: Path, outage: Outage
) -> None:
    settings.embedded_worker = False
    settings.activity_max_attempts = 1
    queue = settings.temporal_task_queue
    async with api_client(settings, embedder) as client:
        task_id = (await upload(client, corpus / "minimal-document.pdf")).json()["task_id"]
        async with worker_of(client, queue):
            failed, _ = await wait_for_status(client, task_id)
            assert failed["status"] == "failed" and failed["retryable"] is True

        # The worker is gone: the workflow waits for a retry, but only the row can be read.
        from_row = await row_view(client, task_id)
        assert from_row["status"] == "failed"
        assert from_row["retryable"] is True
        assert from_row["error_code"] == "step_failed"

        # A row migrated from before the `state` column (migration 0002) says only `failed`,
        # not whether the failure waits: the retry is not refused on its word, the workflow
        # service is asked.
        engine = client._transport.app.state.services.resources.engine  # type: ignore[attr-defined]
        with engine.begin() as connection:
            connection.execute(text("UPDATE fileprocessingtask SET state = 'FAILED'"))
        assert (await row_view(client, task_id))["retryable"] is False

        retried = await client.post(f"/docs/processing/{task_id}/retry")
        assert retried.status_code == 200, retried.text

        outage.down = False
        async with worker_of(client, queue):
            final, _ = await wait_for_status(client, task_id, until={"completed"}, timeout=90)
        assert final["chunks_embedded"] == final["chunk_count"] > 0
        history = (await client.get(f"/docs/processing/{task_id}/history")).json()["data"]
        # The signal sent while no worker ran is the one that resumed the task.
        assert [event["signal"] for event in history["events"] if "signal" in event] == ["retry"]
