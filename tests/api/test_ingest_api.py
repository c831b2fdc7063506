"""Upload through the API and watch the real workflow, worker, pypdf, MiniLM and Qdrant."""

from __future__ import annotations

from pathlib import Path

from core.embeddings import Embedder
from core.settings import Settings
from tests.helpers import api_client, upload, wait_for_status


async def test_small_pdf_is_ingested_end_to_end(
    settings: Settings, embedder: Embedder, corpus: Path
) -> None:
    async with api_client(settings, embedder) as client:
        response = await upload(client, corpus / "pdflatex-4-pages.pdf")
        assert response.status_code == 202, response.text
        body = response.json()
        assert body["success"] is True
        task_id = body["task_id"]
        assert body["data"]["task_id"] == task_id
        assert body["document_id"] == body["data"]["document_id"]

        final, seen = await wait_for_status(client, task_id)
        assert final["status"] == "completed", final
        assert final["progress_percentage"] == 100.0
        assert final["page_count"] == 4
        assert final["chunk_count"] and final["chunk_count"] > 4
        percentages = [snapshot["progress_percentage"] for snapshot in seen]
        assert percentages == sorted(percentages), "progress must never go backwards"
        # The row says completed before the workflow does, and a finished task's status never
        # asks the workflow service again.
        again = (await client.get(f"/docs/processing/{task_id}/status")).json()["data"]
        assert again["source"] == "database"
        assert again["status"] == "completed" and again["chunk_count"] == final["chunk_count"]

        document = (await client.get(f"/docs/{body['document_id']}")).json()["data"]
        assert document["status"] == "ready"
        assert document["vector_count"] == document["chunk_count"] == final["chunk_count"]
