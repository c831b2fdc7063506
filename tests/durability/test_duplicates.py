"""The same bytes uploaded again are not ingested twice, even when the uploads race."""

from __future__ import annotations

import asyncio
from pathlib import Path

from core.search.embeddings import Embedder
from core.settings import Settings
from tests.helpers import api_client, upload, wait_for_status


async def test_same_content_again_answers_with_the_existing_document(
    settings: Settings, embedder: Embedder, corpus: Path
) -> None:
    async with api_client(settings, embedder) as client:
        first = await upload(client, corpus / "minimal-document.pdf")
        again = await upload(client, corpus / "minimal-document.pdf", "renamed.pdf")
        assert first.status_code == 202
        assert again.status_code == 200
        assert again.json()["data"]["duplicate"] is True
        assert again.json()["task_id"] == first.json()["task_id"]
        assert again.json()["document_id"] == first.json()["document_id"]
        await wait_for_status(client, first.json()["task_id"])
        assert len((await client.get("/docs")).json()["data"]) == 1
    assert len(list(settings.uploads_dir.iterdir())) == 1


async def test_concurrent_uploads_of_the_same_content_start_one_workflow(
    settings: Settings, embedder: Embedder, corpus: Path
) -> None:
    async with api_client(settings, embedder) as client:
        path = corpus / "002-trivial-libre-office-writer.pdf"
        responses = await asyncio.gather(*(upload(client, path) for _ in range(4)))
        assert all(response.status_code in (200, 202) for response in responses)
        task_ids = {response.json()["task_id"] for response in responses}
        assert len(task_ids) == 1
        assert [r.json()["data"]["duplicate"] for r in responses].count(False) == 1
        final, _ = await wait_for_status(client, task_ids.pop())
        assert final["status"] == "completed"
    assert len(list(settings.uploads_dir.iterdir())) == 1


async def test_a_cancelled_document_can_be_uploaded_again(
    settings: Settings, embedder: Embedder, corpus: Path
) -> None:
    settings.vectorize_chunks_per_activity = 400
    async with api_client(settings, embedder) as client:
        path = corpus / "GeoTopo-komprimiert.pdf"
        first = (await upload(client, path)).json()
        await wait_for_status(client, first["task_id"], until={"running"})
        await client.post(f"/docs/processing/{first['task_id']}/cancel")
        await wait_for_status(client, first["task_id"], until={"cancelled"})
        again = await upload(client, path)
        assert again.status_code == 202
        assert again.json()["data"]["duplicate"] is False
        assert again.json()["document_id"] != first["document_id"]
        assert (await client.get(f"/docs/{first['document_id']}")).status_code == 404
        await client.post(f"/docs/processing/{again.json()['task_id']}/cancel")
