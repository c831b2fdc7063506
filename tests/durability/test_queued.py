"""With no worker polling, a task reads `queued`; once a worker starts it runs to the end."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from core.search.embeddings import Embedder
from core.settings import Settings
from tests.helpers import api_client, upload, wait_for_status
from worker import ACTIVITY_THREADS, build_worker


async def test_task_is_queued_until_a_worker_picks_it_up(
    settings: Settings, embedder: Embedder, corpus: Path
) -> None:
    settings.embedded_worker = False
    async with api_client(settings, embedder) as client:
        accepted = (await upload(client, corpus / "minimal-document.pdf")).json()
        started = time.monotonic()
        status = (await client.get(f"/docs/processing/{accepted['task_id']}/status")).json()
        assert (status["data"]["status"], status["data"]["state"]) == ("pending", "queued")
        assert time.monotonic() - started < 5, "a missing worker must not hang the status call"
        active = (await client.get("/docs/processing/active")).json()["data"]
        assert [(task["status"], task["state"]) for task in active] == [("pending", "queued")]

        services = client._transport.app.state.services  # type: ignore[attr-defined]
        with ThreadPoolExecutor(max_workers=ACTIVITY_THREADS) as executor:
            worker = build_worker(
                services.temporal,
                services.resources,
                executor=executor,
                task_queue=settings.temporal_task_queue,
            )
            async with worker:
                final, _ = await wait_for_status(client, accepted["task_id"])
        assert final["status"] == "completed"
