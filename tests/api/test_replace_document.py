"""A new version of a document (``PUT /docs/{id}/file``): only its changed chunks are embedded,
search shows exactly one version throughout, and refused or failed versions lose nothing."""

from __future__ import annotations

import asyncio
import io
import sqlite3
from pathlib import Path
from typing import Any

import httpx
import pypdf
from temporalio.testing import WorkflowEnvironment

from core.ingestion import records
from core.search.embedding_cache import CACHE_FILE
from core.search.embeddings import Embedder
from core.settings import Settings
from tests.helpers import api_client, stack_settings, wait_for_status
from tests.pdfs import text_pdf

EDITED_PAGE = 7
NEW_PAGE_LINES = [
    "Revised section: the survey was repeated in spring with a new instrument.",
    "The zebrafish colony counted four hundred and twelve animals at the last census,",
    "and the water temperature was held at twenty-eight degrees throughout the study.",
]


def _pages(source: Path, count: int) -> bytes:
    """The first ``count`` pages of a real document."""
    reader = pypdf.PdfReader(source)
    writer = pypdf.PdfWriter()
    for page in reader.pages[:count]:
        writer.add_page(page)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def _with_page_replaced(original: bytes, number: int, lines: list[str]) -> bytes:
    """``original`` with page ``number`` (1-based) replaced by a page showing ``lines``."""
    reader = pypdf.PdfReader(io.BytesIO(original))
    replacement = pypdf.PdfReader(io.BytesIO(text_pdf([lines]))).pages[0]
    writer = pypdf.PdfWriter()
    for index, page in enumerate(reader.pages, 1):
        writer.add_page(replacement if index == number else page)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


async def _put(client: httpx.AsyncClient, document_id: str, name: str, data: bytes) -> Any:
    return await client.put(
        f"/docs/{document_id}/file", files={"file": (name, data, "application/pdf")}
    )


async def _ingest(client: httpx.AsyncClient, name: str, data: bytes) -> dict[str, Any]:
    accepted = await client.post(
        "/docs/upload_file_async", files={"file": (name, data, "application/pdf")}
    )
    assert accepted.status_code == 202, accepted.text
    final, _ = await wait_for_status(client, accepted.json()["task_id"], timeout=600)
    assert final["status"] == "completed", final
    body: dict[str, Any] = accepted.json()
    return body


async def _settled(client: httpx.AsyncClient, document_id: str) -> dict[str, Any]:
    """The document once its old version's vectors are gone (the grace period after the
    switch)."""
    for _ in range(300):
        document: dict[str, Any] = (await client.get(f"/docs/{document_id}")).json()["data"]
        if not document["replacing"]:
            return document
        await asyncio.sleep(0.1)
    raise AssertionError(f"document {document_id} still replacing")


def _services(client: httpx.AsyncClient) -> Any:
    return client._transport.app.state.services  # type: ignore[attr-defined]


async def test_editing_one_page_embeds_only_that_pages_chunks_and_search_sees_one_version(
    settings: Settings, embedder: Embedder, corpus: Path
) -> None:
    first = _pages(corpus / "GeoTopo-komprimiert.pdf", 16)
    edited = _with_page_replaced(first, EDITED_PAGE, NEW_PAGE_LINES)
    async with api_client(settings, embedder) as client:
        accepted = await _ingest(client, "geotopo.pdf", first)
        document_id = accepted["document_id"]
        services = _services(client)
        storage, vectors = services.resources.storage, services.resources.vectors
        old_texts = {chunk.text for chunk in storage.read_chunks(document_id)}
        old_count = vectors.count(document_id)
        assert old_count == len(old_texts) > 20

        # As if the first version had been stored before the embedding cache existed: its
        # unchanged chunks' vectors come straight from its points in Qdrant.
        cache = services.resources.settings.data_dir / CACHE_FILE
        with sqlite3.connect(cache) as db:
            db.execute("DELETE FROM vectors")

        query = embedder.embed_query("zebrafish colony census water temperature")
        seen: list[frozenset[str]] = []
        stop = asyncio.Event()

        async def search_throughout() -> None:
            while not stop.is_set():
                hits = await asyncio.to_thread(
                    vectors.search,
                    query,
                    limit=4 * old_count,
                    document_ids=[document_id],
                    owner="local",
                )
                seen.append(frozenset(hit.text for hit in hits))
                await asyncio.sleep(0.02)

        searcher = asyncio.create_task(search_throughout())
        replaced = await _put(client, document_id, "geotopo-v2.pdf", edited)
        assert replaced.status_code == 202, replaced.text
        assert replaced.json()["document_id"] == document_id
        task_id = replaced.json()["task_id"]
        final, _ = await wait_for_status(client, task_id, timeout=600)
        assert final["status"] == "completed", final
        document = await _settled(client, document_id)
        await asyncio.sleep(0.2)
        stop.set()
        await searcher

        new_chunks = storage.read_chunks(document_id)
        new_texts = {chunk.text for chunk in new_chunks}
        edited_page_chunks = [chunk for chunk in new_chunks if chunk.page == EDITED_PAGE]
        assert edited_page_chunks and any("zebrafish" in c.text for c in edited_page_chunks)
        # Counted by the workflow from each vectorize call's result: the rest came from the
        # cache, so no more than the edited page's chunks went through the model.
        embedded = final["chunk_count"] - final["chunks_reused"]
        assert 0 < embedded <= len(edited_page_chunks)
        assert final["chunks_reused"] == len(new_chunks) - embedded

        # The document is the new version, with exactly one vector per chunk.
        assert document["generation"] == 1 and document["filename"] == "geotopo-v2.pdf"
        assert document["chunk_count"] == len(new_chunks) == document["vector_count"]
        assert vectors.count_all_versions(document_id) == len(new_chunks)
        # The old upload is gone, the new one is the document's file.
        assert [p.name for p in settings.uploads_dir.iterdir()] == [
            _stored_name(services, document_id)
        ]

        # Every search during the replace saw one whole version: never both, never neither.
        assert len(seen) > 5
        versions = {frozenset(old_texts), frozenset(new_texts)}
        assert all(texts in versions for texts in seen), [len(t) for t in seen]
        assert seen[0] == frozenset(old_texts) and seen[-1] == frozenset(new_texts)


def _stored_name(services: Any, document_id: str) -> str:
    document = records.get_document(services.resources.engine, document_id)
    assert document is not None
    return str(document.stored_name)


ALICE_KEY = "alice-0123456789abcdef0123456789"
BOB_KEY = "bob-0123456789abcdef0123456789ab"
ALICE = {"Authorization": f"Bearer {ALICE_KEY}"}
BOB = {"Authorization": f"Bearer {BOB_KEY}"}


async def test_refused_and_failed_new_versions_lose_nothing(
    tmp_path: Path, temporal_env: WorkflowEnvironment, embedder: Embedder, corpus: Path
) -> None:
    settings = stack_settings(
        tmp_path / "data",
        temporal_env,
        activity_max_attempts=2,
        api_keys={ALICE_KEY: "alice", BOB_KEY: "bob"},
        replace_grace_seconds=0.5,
    )
    original = (corpus / "multicolumn.pdf").read_bytes()
    other = (corpus / "minimal-document.pdf").read_bytes()
    async with api_client(settings, embedder) as client:
        client.headers.update(ALICE)
        accepted = await _ingest(client, "multicolumn.pdf", original)
        document_id = accepted["document_id"]
        other_id = (await _ingest(client, "minimal.pdf", other))["document_id"]
        services = _services(client)
        before = (await client.get(f"/docs/{document_id}")).json()["data"]
        chunks_before = services.resources.storage.read_chunks(document_id)
        uploads_before = sorted(p.name for p in settings.uploads_dir.iterdir())

        async def unchanged() -> None:
            now = (await client.get(f"/docs/{document_id}")).json()["data"]
            assert {k: now[k] for k in ("generation", "sha256", "filename", "vector_count")} == {
                k: before[k] for k in ("generation", "sha256", "filename", "vector_count")
            }
            assert not now["replacing"]
            assert services.resources.vectors.count_all_versions(document_id) == now["chunk_count"]
            assert services.resources.storage.read_chunks(document_id) == chunks_before
            assert sorted(p.name for p in settings.uploads_dir.iterdir()) == uploads_before

        unknown = await _put(client, "no-such-document", "x.pdf", other)
        assert unknown.status_code == 404
        assert unknown.json()["error"]["error_code"] == "document_not_found"

        not_bobs = await client.put(
            f"/docs/{document_id}/file",
            files={"file": ("x.pdf", other, "application/pdf")},
            headers=BOB,
        )
        assert not_bobs.status_code == 404
        assert not_bobs.json()["error"]["error_code"] == "document_not_found"

        unsupported = await _put(client, document_id, "x.pdf", bytes(range(256)) * 4)
        assert unsupported.status_code == 415
        assert unsupported.json()["error"]["error_code"] == "unsupported_format"

        duplicate = await _put(client, document_id, "x.pdf", other)
        assert duplicate.status_code == 409
        assert duplicate.json()["error"]["error_code"] == "duplicate_document"
        assert duplicate.json()["error"]["details"]["document_id"] == other_id

        same = await _put(client, document_id, "again.pdf", original)
        assert same.status_code == 200 and same.json()["data"]["duplicate"] is True
        await unchanged()

        # Passes the format check, fails in the workflow for good: only the new version goes.
        broken = await _put(client, document_id, "broken.pdf", b"%PDF-1.4\n" + b"\x00junk" * 64)
        assert broken.status_code == 202, broken.text
        failed, _ = await wait_for_status(client, broken.json()["task_id"])
        assert failed["status"] == "failed" and failed["retryable"] is False, failed
        await unchanged()
        assert not (settings.artifacts_dir / document_id / "generations").exists()

        # The upload form names the document it replaces; a second version meanwhile waits.
        edited = text_pdf([["Capitals of Europe, revised.", "Paris is the capital of France."]])
        named = await client.post(
            "/docs/upload_file_async",
            files={"file": ("revised.pdf", edited, "application/pdf")},
            data={"replaces": document_id},
        )
        assert named.status_code == 202, named.text
        assert named.json()["document_id"] == document_id
        busy = await _put(client, document_id, "third.pdf", text_pdf([["A third version."]]))
        assert busy.status_code == 409
        assert busy.json()["error"]["error_code"] == "document_busy"
        done, _ = await wait_for_status(client, named.json()["task_id"])
        assert done["status"] == "completed", done
        after = await _settled(client, document_id)
        assert after["generation"] == 1 and after["filename"] == "revised.pdf"
        assert after["vector_count"] == after["chunk_count"] >= 1
        hits = (await client.get("/docs/search", params={"q": "capital of France"})).json()
        texts = [hit["text"] for hit in hits["data"] if hit["document_id"] == document_id]
        assert texts and all("revised" in t or "Paris" in t for t in texts)
