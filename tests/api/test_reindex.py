"""Re-index end to end: change the chunk size, rebuild while a client searches, swap, go back.

The real stack (API with its embedded worker, Temporal dev server, pypdf, MiniLM, Qdrant
local mode): documents are ingested with 128-token chunks, the process restarts with 64, and
the re-index rebuilds every document from its kept text while a client searches every 100 ms.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from temporalio.testing import WorkflowEnvironment

from api.app import create_app
from core.runtime import Resources
from core.search.embeddings import Embedder
from core.settings import Settings
from tests.helpers import stack_settings, upload, wait_for_status

QUESTION = "capital city of Austria"
ANSWER = "Vienna"
DOCUMENTS = ("multicolumn.pdf", "crazyones-pdfa.pdf", "pdflatex-4-pages.pdf")
LATE_DOCUMENT = "pdflatex-outline.pdf"


@contextlib.asynccontextmanager
async def stack(
    settings: Settings, embedder: Embedder
) -> AsyncIterator[tuple[httpx.AsyncClient, Resources]]:
    app = create_app(settings, embedder=embedder)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
            yield client, app.state.services.resources


def chunk_indexes(resources: Resources, version: str, document_id: str) -> list[int]:
    """Every stored chunk index of the document in that version (duplicates kept)."""
    store = resources.versions.store(resources.versions.get(version))
    indexes: list[int] = []
    with store.locked_client() as client:
        offset = None
        while True:
            records, offset = client.scroll(
                store.collection,
                scroll_filter=None,
                limit=256,
                offset=offset,
                with_payload=["document_id", "chunk_index"],
            )
            indexes += [
                int(r.payload["chunk_index"])
                for r in records
                if r.payload and r.payload["document_id"] == document_id
            ]
            if offset is None:
                return sorted(indexes)


class Searcher:
    """Searches every 100 ms; counts errors and searches whose best hit lacks the answer."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client
        self.searches = 0
        self.problems: list[str] = []
        self.stop = asyncio.Event()

    async def run(self) -> None:
        while not self.stop.is_set():
            response = await self.client.get("/docs/search", params={"q": QUESTION, "k": 3})
            self.searches += 1
            if response.status_code != 200:
                self.problems.append(f"{response.status_code}: {response.text[:200]}")
            elif ANSWER not in response.json()["data"][0]["text"]:
                self.problems.append(f"no {ANSWER}: {response.json()['data'][0]['text'][:80]}")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stop.wait(), timeout=0.1)


async def wait_reindex(
    client: httpx.AsyncClient, until: set[str], timeout: float = 300
) -> list[dict[str, Any]]:
    seen: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        response = await client.get("/index/reindex")
        assert response.status_code == 200, response.text
        seen.append(response.json()["data"])
        if seen[-1]["status"] in until:
            return seen
        await asyncio.sleep(0.2)
    raise AssertionError(f"re-index did not reach {until}: {seen[-1] if seen else None}")


@pytest.mark.slow
async def test_reindex_after_a_chunk_size_change_while_searching(
    tmp_path: Path, temporal_env: WorkflowEnvironment, embedder: Embedder, corpus: Path
) -> None:
    first = stack_settings(tmp_path / "data", temporal_env, activity_max_attempts=2)
    ids: dict[str, str] = {}
    old_counts: dict[str, int] = {}
    async with stack(first, embedder) as (client, resources):
        for name in DOCUMENTS:
            response = await upload(client, corpus / name)
            final, _ = await wait_for_status(client, response.json()["task_id"])
            assert final["status"] == "completed", final
            ids[name] = response.json()["document_id"]
            old_counts[name] = final["chunk_count"]
        old_version = resources.versions.active_version()
        none_yet = await client.get("/index/reindex")
        assert none_yet.status_code == 404
        assert none_yet.json()["error"]["error_code"] == "reindex_not_found"

    # Same data, smaller chunks: reported, not mixed in.
    second = first.model_copy(update={"chunk_tokens": 64, "reindex_window": 2})
    async with stack(second, embedder) as (client, resources):
        health = (await client.get("/health")).json()["data"]
        assert health["index"]["matches"] is False
        assert health["index"]["differences"] == {"chunk_tokens": {"index": 128, "configured": 64}}
        assert "/index/reindex" in health["index"]["action"]
        new_version = health["index"]["configured_version"]
        listed = (await client.get("/index/versions")).json()["data"]
        assert [(v["version"], v["active"]) for v in listed["versions"]] == [(old_version, True)]

        searcher = Searcher(client)
        searching = asyncio.create_task(searcher.run())
        started = await client.post("/index/reindex")
        assert started.status_code == 202, started.text
        again = await client.post("/index/reindex")
        assert again.status_code == 409 and again.json()["error"]["error_code"] == "reindex_running"
        paused = await client.post("/index/reindex/pause")
        assert paused.status_code == 200 and paused.json()["data"]["status"] == "paused"
        # Uploaded during the re-index: ingested as the active version is chunked, and in the
        # new version after the swap.
        late = await upload(client, corpus / LATE_DOCUMENT)
        late_final, _ = await wait_for_status(client, late.json()["task_id"])
        assert late_final["status"] == "completed"
        ids[LATE_DOCUMENT] = late.json()["document_id"]
        old_counts[LATE_DOCUMENT] = late_final["chunk_count"]
        assert resources.versions.active_version() == old_version  # untouched until the swap
        resumed = await client.post("/index/reindex/resume")
        assert resumed.json()["data"]["status"] in {"running", "swapping", "completed"}
        seen = await wait_reindex(client, {"completed", "cancelled", "waiting_for_retry"})
        searcher.stop.set()
        await searching

        done = seen[-1]
        assert done["status"] == "completed", done
        assert done["failed"] == [] and done["swapped"] is True
        assert done["documents_done"] == done["documents_total"] == len(ids)
        assert done["previous_version"] == old_version and done["version"] == new_version
        assert done["chunks_per_second"] > 0 and done["eta_seconds"] == 0.0
        assert any(s["status"] == "paused" for s in seen) or paused.json()["data"]["status"]
        assert searcher.searches >= 10 and searcher.problems == []

        assert resources.versions.active_version() == new_version
        for name, document_id in ids.items():
            indexes = chunk_indexes(resources, new_version, document_id)
            # Exactly one vector per chunk, numbered from 0, and smaller chunks: more of them.
            assert indexes == list(range(len(indexes))), name
            if old_counts[name] > 2:
                assert len(indexes) > old_counts[name], name
            # The old version is kept as it was.
            assert len(chunk_indexes(resources, old_version, document_id)) == old_counts[name]
        assert done["chunks_done"] == sum(
            len(chunk_indexes(resources, new_version, d)) for d in ids.values()
        )
        assert (await client.get("/health")).json()["data"]["index"]["matches"] is True

        # Switching back is one call; search keeps answering.
        back = await client.post(f"/index/versions/{old_version}/activate")
        assert back.status_code == 200 and back.json()["data"]["active"] is True
        hits = (await client.get("/docs/search", params={"q": QUESTION})).json()["data"]
        assert ANSWER in hits[0]["text"]
        document = (await client.get(f"/docs/{ids['multicolumn.pdf']}")).json()["data"]
        assert document["vector_count"] == old_counts["multicolumn.pdf"]
        refused = await client.delete(f"/index/versions/{old_version}")
        assert refused.status_code == 409
        assert refused.json()["error"]["error_code"] == "index_version_conflict"

        await client.post(f"/index/versions/{new_version}/activate")
        dropped = await client.delete(f"/index/versions/{old_version}")
        assert dropped.status_code == 200, dropped.text
        versions = (await client.get("/index/versions")).json()["data"]["versions"]
        assert [v["version"] for v in versions] == [new_version]
        missing = await client.post(f"/index/versions/{old_version}/activate")
        assert missing.status_code == 404
