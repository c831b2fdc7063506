"""A real API server for end-to-end tests of its clients (the web page, the CLI): uvicorn on a
free port in the tests' event loop, the embedded worker, the real pipeline and models, and
``multicolumn.pdf`` (page 3 names the EU capitals) ingested before the tests start."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from temporalio.testing import WorkflowEnvironment

from api.app import create_app
from core.search.embeddings import Embedder
from tests.core.chat.conftest import serve
from tests.helpers import stack_settings, upload, wait_for_status

# Small: a 2-core machine streams this in a few seconds, and it is still several pieces.
MAX_TOKENS = 24


@dataclass
class LiveApi:
    url: str
    http: httpx.AsyncClient
    document_id: str  # multicolumn.pdf


@contextlib.asynccontextmanager
async def live_api(
    data_dir: Path,
    temporal_env: WorkflowEnvironment,
    embedder: Embedder,
    corpus: Path,
    *,
    ingest: bool = True,
    **overrides: Any,
) -> AsyncIterator[LiveApi]:
    defaults: dict[str, Any] = {"activity_max_attempts": 2, "llm_max_tokens": MAX_TOKENS}
    settings = stack_settings(data_dir, temporal_env, **(defaults | overrides))
    async with serve(create_app(settings, embedder=embedder)) as address:
        url = f"http://{address}"
        async with httpx.AsyncClient(base_url=url, timeout=120) as http:
            document_id = ""
            if ingest:
                accepted = await upload(http, corpus / "multicolumn.pdf")
                assert accepted.status_code == 202, accepted.text
                final, _ = await wait_for_status(http, accepted.json()["task_id"])
                assert final["status"] == "completed", final
                document_id = accepted.json()["document_id"]
            yield LiveApi(url=url, http=http, document_id=document_id)
