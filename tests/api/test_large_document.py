"""The 117-page real thesis: progress moves inside long steps, and its vectors (dense and
keyword) are searchable."""

from __future__ import annotations

from pathlib import Path

from core.search.embeddings import Embedder
from core.settings import Settings
from tests.helpers import api_client, upload, wait_for_status


async def test_large_pdf_progress_and_search(
    settings: Settings, embedder: Embedder, corpus: Path
) -> None:
    settings.extract_pages_per_activity = 20
    settings.vectorize_chunks_per_activity = 48
    async with api_client(settings, embedder) as client:
        accepted = (await upload(client, corpus / "GeoTopo-komprimiert.pdf")).json()
        final, seen = await wait_for_status(client, accepted["task_id"], timeout=300)

        assert final["status"] == "completed", final
        assert final["page_count"] == 117
        percentages = [snapshot["progress_percentage"] for snapshot in seen]
        assert percentages == sorted(percentages), "progress must rise monotonically"
        steps = [snapshot["current_step"] for snapshot in seen]
        assert steps.index("extract") < steps.index("chunk") < steps.index("vectorize")
        extracting = {s["extraction_progress"] for s in seen if s["current_step"] == "extract"}
        vectorizing = {
            s["vectorization_progress"] for s in seen if s["current_step"] == "vectorize"
        }
        assert len(extracting) >= 3, extracting
        assert len(vectorizing) >= 4, vectorizing

        document = (await client.get(f"/docs/{accepted['document_id']}")).json()["data"]
        assert document["vector_count"] == document["chunk_count"] == final["chunk_count"]

        services = client._transport.app.state.services  # type: ignore[attr-defined]
        query = embedder.embed_query("Topologie und Geometrie")
        hits = services.resources.vectors.search(query, limit=5)
        assert hits and all(hit.document_id == accepted["document_id"] for hit in hits)
        assert all(1 <= hit.page <= 117 and hit.text for hit in hits)

        # An identifier printed once in the 117 pages (Bemerkung 64 on PDF page 73; the
        # index does not list it) is found by its words; MiniLM's vector alone ranks other
        # pages above it.
        for mode in ("keyword", "hybrid"):
            found = await client.get(
                "/docs/search", params={"q": "SWS-Kongruenzsatz", "k": 5, "retrieval": mode}
            )
            hits_on = [(hit["page"], hit["found_by"]) for hit in found.json()["data"]]
            assert any(page == 73 and "keyword" in by for page, by in hits_on), (mode, hits_on)
