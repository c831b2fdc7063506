"""The whole API on each database docchat supports, SQLite and PostgreSQL: ingest a real PDF
through the workflow, then a chat session whose answer cites it, stored and listed back.

The chat model is a stand-in that quotes its sources (the real model is exercised elsewhere);
everything else is real: Temporal, the worker, pypdf, MiniLM, Qdrant and the database.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import httpx

from api.app import create_app
from core.llm import ModelRegistry
from core.search.embeddings import Embedder
from core.settings import Settings
from tests.core.chat.fakes import QuotingModel
from tests.helpers import upload, wait_for_status


@contextlib.asynccontextmanager
async def api(settings: Settings, embedder: Embedder) -> AsyncIterator[httpx.AsyncClient]:
    models = ModelRegistry([QuotingModel()], default_model="quoting")
    app = create_app(settings, embedder=embedder, models=models)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
            yield client


async def test_ingest_and_chat_on_each_database(
    settings: Settings, database_url: str, embedder: Embedder, corpus: Path
) -> None:
    # Every retrieved chunk counts as relevant: the answer always cites the document.
    update = {"database_url": database_url, "retrieval_min_score": -1.0}
    settings = settings.model_copy(update=update)
    async with api(settings, embedder) as client:
        health = (await client.get("/health")).json()["data"]
        assert health["components"]["database"]["ok"], health

        response = await upload(client, corpus / "pdflatex-4-pages.pdf")
        assert response.status_code == 202, response.text
        task_id, document_id = response.json()["task_id"], response.json()["document_id"]
        final, _ = await wait_for_status(client, task_id)
        assert final["status"] == "completed", final
        # The query says `completed` a moment before the workflow closes (its last step writes
        # the row); once closed, the status is read from the row and must say the same.
        for _ in range(100):
            closed = (await client.get(f"/docs/processing/{task_id}/status")).json()["data"]
            if closed["source"] == "database":
                break
            await asyncio.sleep(0.1)
        assert closed["source"] == "database" and closed["status"] == "completed", closed
        document = (await client.get(f"/docs/{document_id}")).json()["data"]
        assert document["status"] == "ready" and document["page_count"] == 4
        assert document["vector_count"] == document["chunk_count"] > 0
        again = await upload(client, corpus / "pdflatex-4-pages.pdf")
        assert again.status_code == 200 and again.json()["data"]["duplicate"]

        created = await client.post("/chat/sessions", json={"title": "Über LaTeX"})
        assert created.status_code == 201, created.text
        session_id = created.json()["data"]["id"]
        typing = await client.post(
            f"/chat/{session_id}/typing", json={"user_id": "dana", "is_typing": True}
        )
        assert typing.status_code == 200, typing.text
        assert typing.json()["data"]["is_typing"] is True
        asked = await client.post(
            f"/chat/{session_id}/ask",
            json={"question": "What is this about?", "search_mode": [document_id]},
        )
        assert asked.status_code == 200, asked.text
        answer = asked.json()["data"]["answer"]
        assert answer["model"] == "quoting" and answer["content"].startswith("Sources:")
        assert {source["document_id"] for source in answer["sources"]} == {document_id}

        history = (await client.get(f"/chat/sessions/{session_id}/messages")).json()["data"]
        assert [m["role"] for m in history] == ["user", "assistant"]
        assert history[1]["sources"] == answer["sources"]
        sessions = (await client.get("/chat/sessions")).json()["data"]
        assert [s["title"] for s in sessions] == ["Über LaTeX"]

        deleted_session = await client.delete(f"/chat/sessions/{session_id}")
        assert deleted_session.status_code == 200, deleted_session.text
        assert deleted_session.json()["data"] == {"session_id": session_id, "deleted": True}
        deleted = await client.delete(f"/docs/{document_id}")
        assert deleted.status_code == 200, deleted.text
        assert deleted.json()["success"] is True
        assert (await client.get(f"/docs/{document_id}")).status_code == 404
