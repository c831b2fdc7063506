"""Upload through the API and watch the real workflow, worker, pypdf, MiniLM and Qdrant."""

from __future__ import annotations

from pathlib import Path

from core.search.embeddings import Embedder
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


async def test_progress_moves_inside_extraction_and_vectorization(
    settings: Settings, embedder: Embedder, corpus: Path
) -> None:
    # One activity for each step: the workflow's own state then only knows each step's start
    # and end, so every value in between is progress reported from inside an activity.
    settings.extract_pages_per_activity = 1000
    settings.vectorize_chunks_per_activity = 10_000
    async with api_client(settings, embedder) as client:
        accepted = (await upload(client, corpus / "GeoTopo-komprimiert.pdf")).json()
        final, seen = await wait_for_status(client, accepted["task_id"], timeout=600, interval=0.3)

    assert final["current_step"] == "done" and final["progress_percentage"] == 100.0, final
    extracting = [s for s in seen if s["current_step"] == "extract"]
    vectorizing = [s for s in seen if s["current_step"] == "vectorize"]
    inside_extraction = {
        s["extraction_progress"] for s in extracting if 0 < s["extraction_progress"] < 100
    }
    inside_vectorization = {
        s["vectorization_progress"] for s in vectorizing if 0 < s["vectorization_progress"] < 100
    }
    assert len(inside_extraction) >= 3, inside_extraction
    assert len(inside_vectorization) >= 3, inside_vectorization
    # The counts move with the percentages, and nothing ever goes back between polls.
    assert len({s["pages_extracted"] for s in extracting}) >= 3
    assert len({s["chunks_embedded"] for s in vectorizing}) >= 3
    for field in ("progress_percentage", "pages_extracted", "chunks_embedded"):
        values = [s[field] for s in seen]
        assert values == sorted(values), (field, values)
