"""No file outlives the document it belongs to (issue 14, item 10).

* a cancelled document keeps its rows but not its upload, extracted text or vectors, and the
  same bytes can be uploaded again;
* a start that fails after the upload was received (here: the database refuses the rows)
  leaves no file in uploads/.

The sweep of files that no row owns is tested in tests/core/ingestion/test_sweeper.py. Temporal, the
worker, pypdf, MiniLM and Qdrant local mode are real; the vectorize step is held (with
heartbeats, as a long batch would) so that the cancel lands while it runs.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError
from temporalio import activity

from core.ingestion import records
from core.ingestion.uploads import store_local_copy
from core.search.embeddings import Embedder
from core.search.vectorstore import VectorStore
from core.settings import Settings
from tests.helpers import api_client, upload, wait_for_status


class VectorizeHold:
    def __init__(self) -> None:
        self.held = threading.Event()
        self.released = threading.Event()


@pytest.fixture
def hold(monkeypatch: pytest.MonkeyPatch) -> Iterator[VectorizeHold]:
    state = VectorizeHold()
    real = VectorStore.upsert_chunks

    def held(store: VectorStore, *, chunks: Sequence[Any], **kwargs: Any) -> int:
        while not state.released.is_set():
            state.held.set()
            activity.heartbeat()  # a cancel reaches the step here
            time.sleep(0.1)
        return real(store, chunks=chunks, **kwargs)

    monkeypatch.setattr(VectorStore, "upsert_chunks", held)
    try:
        yield state
    finally:
        state.released.set()


def services(client: httpx.AsyncClient) -> Any:
    return client._transport.app.state.services  # type: ignore[attr-defined]


async def test_a_cancelled_document_keeps_no_files_and_can_be_uploaded_again(
    settings: Settings, embedder: Embedder, corpus: Path, hold: VectorizeHold
) -> None:
    async with api_client(settings, embedder) as client:
        accepted = (await upload(client, corpus / "pdflatex-4-pages.pdf")).json()
        assert await asyncio.to_thread(hold.held.wait, 120), "vectorize never started"
        document = records.get_document(services(client).resources.engine, accepted["document_id"])
        assert document is not None
        upload_file = settings.uploads_dir / document.stored_name
        artifacts = settings.artifacts_dir / document.id
        assert upload_file.is_file() and artifacts.is_dir()

        cancelled = await client.post(f"/docs/processing/{accepted['task_id']}/cancel")
        assert cancelled.status_code == 200, cancelled.text
        final, _ = await wait_for_status(client, accepted["task_id"], timeout=60)
        assert final["status"] == "cancelled"
        assert not upload_file.exists()
        assert not artifacts.exists()
        kept = (await client.get(f"/docs/{document.id}")).json()["data"]
        assert kept["status"] == "cancelled" and kept["vector_count"] == 0

        hold.released.set()
        again = (await upload(client, corpus / "pdflatex-4-pages.pdf")).json()
        assert again["data"]["duplicate"] is False
        assert again["document_id"] != document.id
        done, _ = await wait_for_status(client, again["task_id"])
        assert done["status"] == "completed"


async def test_a_start_the_database_refuses_leaves_no_upload(
    settings: Settings, embedder: Embedder, corpus: Path
) -> None:
    settings.embedded_worker = False  # nothing runs: the start fails before any workflow
    async with api_client(settings, embedder) as client:
        engine = services(client).resources.engine
        # A real database error on the second insert of the start (the task row), after the
        # document row went in: the transaction is rolled back, and no row owns the file.
        with engine.begin() as connection:
            connection.execute(text("ALTER TABLE fileprocessingtask RENAME TO moved_away"))
        received = store_local_copy(corpus / "minimal-document.pdf", settings.uploads_dir)
        assert received.path.is_file()
        with pytest.raises(OperationalError):
            await services(client).ingestion.start(received, owner="local")
        assert list(settings.uploads_dir.iterdir()) == []
        with engine.begin() as connection:
            connection.execute(text("ALTER TABLE moved_away RENAME TO fileprocessingtask"))
            assert connection.execute(text("SELECT count(*) FROM document")).scalar() == 0
