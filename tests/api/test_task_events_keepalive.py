"""The progress stream stays alive while nothing changes: a comment every 10 s (shortened here),
so proxies do not cut a stream that waits for a queued or failed task."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import pytest
from sse_starlette import EventSourceResponse

from api.app import create_app
from api.routes import processing
from core.search.embeddings import Embedder
from core.settings import Settings
from tests.core.chat.conftest import serve
from tests.helpers import upload


async def test_a_silent_stream_gets_keepalive_comments(
    settings: Settings, embedder: Embedder, corpus: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    asked: list[float] = []

    def short_pings(content: Any, *, ping: float) -> EventSourceResponse:
        asked.append(ping)
        return EventSourceResponse(content, ping=0.3)

    monkeypatch.setattr(processing, "EventSourceResponse", short_pings)
    settings.embedded_worker = False  # no worker: the task stays queued, nothing changes
    async with serve(create_app(settings, embedder=embedder)) as address:
        async with httpx.AsyncClient(base_url=f"http://{address}", timeout=30) as client:
            task_id = (await upload(client, corpus / "minimal-document.pdf")).json()["task_id"]
            lines: list[str] = []
            async with client.stream("GET", f"/docs/processing/{task_id}/events") as response:
                async with asyncio.timeout(20):
                    async for line in response.aiter_lines():
                        lines.append(line)
                        if line.startswith(":") and "event: progress" in lines:
                            break  # a keep-alive after the first state: nothing else changed
    assert asked == [10]
    first = lines.index("event: progress")
    assert '"status": "pending"' in lines[first + 1], lines
    assert '"state": "queued"' in lines[first + 1], lines
    assert [line for line in lines[first:] if line.startswith("event:")] == ["event: progress"]
    assert lines[-1].startswith(": ping"), lines
