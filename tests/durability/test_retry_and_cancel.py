"""Retry resumes at the failed step and keeps finished work; cancel stops within seconds.

The vector-store outage is simulated by wrapping ``VectorStore.upsert_chunks``: no Qdrant server
runs on these machines, and local mode cannot be made to fail for real. Everything else —
Temporal, the worker, pypdf, MiniLM, Qdrant local mode — is real.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

from core.search.embeddings import Embedder
from core.settings import Settings
from tests.helpers import Outage, api_client, upload, wait_for_status


def activity_runs(history: dict[str, Any], name: str) -> list[dict[str, Any]]:
    return [run for run in history["activities"] if run["activity"] == name]


async def test_outage_shows_retrying_then_recovers_by_itself(
    settings: Settings, embedder: Embedder, corpus: Path, outage: Outage
) -> None:
    settings.activity_max_attempts = 20
    async with api_client(settings, embedder) as client:
        accepted = (await upload(client, corpus / "minimal-document.pdf")).json()
        retrying, _ = await wait_for_status(client, accepted["task_id"], until={"retrying"})
        assert retrying["current_step"] == "vectorize"
        assert retrying["status"] == "vectorizing"  # the seed's stage; the lifecycle in state
        assert retrying["attempt"] >= 2
        assert "simulated outage" in retrying["last_failure"]

        outage.down = False
        final, _ = await wait_for_status(client, accepted["task_id"])
        assert final["status"] == "completed"
        document = (await client.get(f"/docs/{accepted['document_id']}")).json()["data"]
        assert document["vector_count"] == document["chunk_count"]


async def test_retry_after_failure_resumes_at_the_failed_batch(
    settings: Settings, embedder: Embedder, corpus: Path, outage: Outage
) -> None:
    settings.activity_max_attempts = 2
    settings.vectorize_chunks_per_activity = 8
    outage.from_chunk = 8  # the first batch goes in, the second hits the outage
    async with api_client(settings, embedder) as client:
        accepted = (await upload(client, corpus / "pdflatex-4-pages.pdf")).json()
        task_id = accepted["task_id"]
        failed, _ = await wait_for_status(client, task_id)
        assert failed["status"] == "failed"
        assert failed["state"] == "waiting_for_retry" and failed["retryable"] is True
        assert failed["current_step"] == "vectorize"
        assert failed["chunks_embedded"] == 8
        assert "simulated outage" in failed["error_message"]
        row_view = (await client.get("/docs/processing/active")).json()["data"]
        assert task_id not in [task["task_id"] for task in row_view]

        outage.down = False
        retried = await client.post(f"/docs/processing/{task_id}/retry")
        assert retried.status_code == 200, retried.text
        assert retried.json()["data"]["state"] in {"running", "queued", "completed"}
        final, _ = await wait_for_status(client, task_id)
        assert final["status"] == "completed"

        history = (await client.get(f"/docs/processing/{task_id}/history")).json()["data"]
        # Extraction and chunking ran once; nothing finished before the failure ran again.
        assert len(activity_runs(history, "validate_upload")) == 1
        assert len(activity_runs(history, "extract_pages")) == 1
        assert len(activity_runs(history, "chunk_document")) == 1
        assert outage.stored_batches.count(0) == 1, outage.stored_batches
        assert sorted(outage.stored_batches) == sorted(set(outage.stored_batches))
        vectorize = [step for step in history["steps"] if step["step"] == "vectorize"][0]
        assert vectorize["outcome"] == "completed"
        assert any("simulated outage" in error for error in vectorize["errors"])
        assert [event["signal"] for event in history["events"] if "signal" in event] == ["retry"]

        document = (await client.get(f"/docs/{accepted['document_id']}")).json()["data"]
        assert document["vector_count"] == document["chunk_count"] == final["chunk_count"]


async def test_retry_all_resumes_every_failed_task(
    settings: Settings, embedder: Embedder, corpus: Path, outage: Outage
) -> None:
    settings.activity_max_attempts = 1
    async with api_client(settings, embedder) as client:
        names = ["minimal-document.pdf", "002-trivial-libre-office-writer.pdf"]
        tasks = [(await upload(client, corpus / name)).json()["task_id"] for name in names]
        for task_id in tasks:
            failed, _ = await wait_for_status(client, task_id)
            assert failed["status"] == "failed"
        outage.down = False
        summary = await client.post("/docs/processing/retry")
        assert summary.status_code == 200
        assert sorted(summary.json()["data"]["resumed"]) == sorted(tasks)
        for task_id in tasks:
            final, _ = await wait_for_status(client, task_id)
            assert final["status"] == "completed"


async def test_retry_is_refused_for_permanent_faults_and_finished_tasks(
    settings: Settings, embedder: Embedder, corpus: Path
) -> None:
    async with api_client(settings, embedder) as client:
        encrypted = (await upload(client, corpus / "libreoffice-writer-password.pdf")).json()
        await wait_for_status(client, encrypted["task_id"])
        refused = await client.post(f"/docs/processing/{encrypted['task_id']}/retry")
        assert refused.status_code == 409
        assert refused.json()["error"]["error_code"] == "retry_not_possible"
        assert refused.json()["error"]["details"]["reason"] == "encrypted_pdf"

        done = (await upload(client, corpus / "minimal-document.pdf")).json()
        await wait_for_status(client, done["task_id"])
        not_failed = await client.post(f"/docs/processing/{done['task_id']}/retry")
        assert not_failed.status_code == 409
        assert not_failed.json()["error"]["error_code"] == "task_not_failed"
        summary = (await client.post("/docs/processing/retry")).json()["data"]
        assert summary["resumed"] == []
        assert [item["task_id"] for item in summary["skipped"]] == [encrypted["task_id"]]


async def test_cancel_stops_vectorizing_within_seconds(
    settings: Settings, embedder: Embedder, corpus: Path
) -> None:
    settings.vectorize_chunks_per_activity = 400  # one long activity: cancel must interrupt it
    async with api_client(settings, embedder) as client:
        accepted = (await upload(client, corpus / "GeoTopo-komprimiert.pdf")).json()
        task_id = accepted["task_id"]
        await wait_for_status(client, task_id, until={"completed", "failed"} | {"running"})
        while True:
            status = (await client.get(f"/docs/processing/{task_id}/status")).json()["data"]
            if status["current_step"] == "vectorize":
                break
            await asyncio.sleep(0.1)
        await asyncio.sleep(1.0)  # well inside the embedding of the batch
        started = time.monotonic()
        cancelled = await client.post(f"/docs/processing/{task_id}/cancel")
        assert cancelled.status_code == 200, cancelled.text
        final, _ = await wait_for_status(client, task_id, timeout=30)
        elapsed = time.monotonic() - started

        assert final["status"] == "cancelled"
        assert elapsed < 10, f"cancel took {elapsed:.1f}s"
        document = (await client.get(f"/docs/{accepted['document_id']}")).json()["data"]
        assert document["status"] == "cancelled"
        assert document["vector_count"] == 0
        again = await client.post(f"/docs/processing/{task_id}/cancel")
        assert again.status_code == 409
        assert again.json()["error"]["error_code"] == "task_finished"


async def test_a_failure_whose_workflow_was_terminated_is_failed_for_good(
    settings: Settings, embedder: Embedder, corpus: Path, outage: Outage
) -> None:
    settings.activity_max_attempts = 1
    async with api_client(settings, embedder) as client:
        accepted = (await upload(client, corpus / "minimal-document.pdf")).json()
        task_id = accepted["task_id"]
        waiting, _ = await wait_for_status(client, task_id)
        assert (waiting["status"], waiting["state"]) == ("failed", "waiting_for_retry")
        # Someone ends the waiting workflow by hand (the Temporal Web UI's "terminate"): the
        # row still says it waits, its workflow says nothing waits any more.
        services = client._transport.app.state.services  # type: ignore[attr-defined]
        await services.temporal.get_workflow_handle(waiting["workflow_id"]).terminate("by hand")
        outage.down = False
        status = (await client.post(f"/docs/processing/{task_id}/retry")).json()
        assert status["error"]["error_code"] == "retry_not_possible"
        assert status["error"]["details"]["state"] == "failed"
        # Polls share a view renewed every 0.25 s: within a moment it says so too.
        deadline = time.monotonic() + 10
        while True:
            final = (await client.get(f"/docs/processing/{task_id}/status")).json()["data"]
            if final["state"] != "waiting_for_retry" or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.1)
        assert (final["status"], final["state"], final["retryable"]) == ("failed", "failed", False)
