"""Cancel and delete stop the work of a step in the text child, through the real API,
workflow, worker and child process: the child working for the step is killed, and the
document's artifacts folder is not re-created behind the delete."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import httpx
import pytest

from activities import ingest
from core.ingestion import offload
from core.search.embeddings import Embedder
from core.settings import Settings
from tests.helpers import api_client, upload, wait_for_status


def gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


async def extracting(client: httpx.AsyncClient, task_id: str, timeout: float = 120) -> int:
    """Wait until the extract step's call is under way in the text child; its pid."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = (await client.get(f"/docs/processing/{task_id}/status")).json()["data"]
        assert status["status"] not in {"completed", "failed", "cancelled"}, status
        if status["current_step"] == "extract" and offload.text_work.busy:
            pid = offload.text_work.pid
            assert pid is not None
            return pid
        await asyncio.sleep(0.05)
    raise AssertionError("the extraction never started")


@pytest.mark.parametrize("how", ["delete", "cancel"])
async def test_stopping_a_task_mid_extraction_kills_the_child_working_for_it(
    settings: Settings,
    embedder: Embedder,
    corpus: Path,
    monkeypatch: pytest.MonkeyPatch,
    how: str,
) -> None:
    # The whole 117-page extraction in one call to the child (tens of seconds), so the stop
    # lands while the child works for the step.
    monkeypatch.setattr(ingest, "EXTRACT_CALL_SECONDS", 3600.0)
    settings.extract_pages_per_activity = 1000
    async with api_client(settings, embedder) as client:
        accepted = (await upload(client, corpus / "GeoTopo-komprimiert.pdf")).json()
        task_id, document_id = accepted["task_id"], accepted["document_id"]
        child = await extracting(client, task_id)
        started = time.monotonic()
        if how == "delete":
            response = await client.delete(f"/docs/{document_id}")
            assert response.status_code == 200, response.text
        else:
            response = await client.post(f"/docs/processing/{task_id}/cancel")
            assert response.status_code == 200, response.text
            final, _ = await wait_for_status(client, task_id, until={"cancelled"}, timeout=60)
            assert final["status"] == "cancelled"
        elapsed = time.monotonic() - started

        assert gone(child), "the child that extracted for the stopped task must be killed"
        assert offload.text_work.pid is None
        assert elapsed < 20, f"stopping took {elapsed:.1f} s: it waited for the extraction"
        if how == "delete":
            assert not (settings.artifacts_dir / document_id).exists()
        # The next document gets a fresh child and goes through.
        other = (await upload(client, corpus / "pdflatex-4-pages.pdf")).json()
        final, _ = await wait_for_status(client, other["task_id"], timeout=120)
        assert final["status"] == "completed", final
