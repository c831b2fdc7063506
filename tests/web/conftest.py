"""The web page in a real browser: Debian's Chromium driven by Playwright, against a real API
server (uvicorn on a free port, in the tests' event loop) with the real ingestion pipeline and
the embedded SmolLM2 model. Nothing is downloaded: Playwright only drives /usr/bin/chromium.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import pytest_asyncio
from playwright.async_api import Browser, BrowserContext, Page, async_playwright
from temporalio.testing import WorkflowEnvironment

from api.app import create_app
from core.embeddings import Embedder
from core.settings import Settings
from tests.chat.conftest import serve
from tests.helpers import upload, wait_for_status

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
# Small: a 2-core machine streams this in a few seconds, and it is still several pieces.
MAX_TOKENS = 24
# Ingestion and answers on a busy 2-core machine: generous, but every wait ends.
SLOW_MS = 120_000


@dataclass
class WebServer:
    url: str
    http: httpx.AsyncClient
    document_id: str  # multicolumn.pdf, ingested before the tests: page 3 names EU capitals


@pytest_asyncio.fixture(scope="package")
async def web(
    tmp_path_factory: pytest.TempPathFactory,
    temporal_env: WorkflowEnvironment,
    embedder: Embedder,
    corpus: Path,
) -> AsyncIterator[WebServer]:
    settings = Settings(
        data_dir=tmp_path_factory.mktemp("web") / "data",
        temporal_address=temporal_env.client.service_client.config.target_host,
        temporal_task_queue=f"test-{uuid.uuid4().hex[:12]}",
        embedded_worker=True,
        activity_max_attempts=2,
        llm_max_tokens=MAX_TOKENS,
        typing_ttl_seconds=3.0,
    )
    async with serve(create_app(settings, embedder=embedder)) as address:
        url = f"http://{address}"
        async with httpx.AsyncClient(base_url=url, timeout=120) as http:
            accepted = await upload(http, corpus / "multicolumn.pdf")
            assert accepted.status_code == 202, accepted.text
            final, _ = await wait_for_status(http, accepted.json()["task_id"])
            assert final["status"] == "completed", final
            yield WebServer(url=url, http=http, document_id=accepted.json()["document_id"])


@pytest_asyncio.fixture(scope="package")
async def browser() -> AsyncIterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: `make test` installs Debian's chromium package")
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS
        )
        yield launched
        await launched.close()


@pytest_asyncio.fixture
async def context(browser: Browser) -> AsyncIterator[BrowserContext]:
    context = await browser.new_context(viewport={"width": 1200, "height": 800})
    context.set_default_timeout(30_000)
    yield context
    await context.close()


async def open_page(context: BrowserContext, web: WebServer) -> Page:
    """The page, loaded; uncaught script errors are collected in ``page_errors(page)``."""
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    _ERRORS[id(page)] = errors
    await page.goto(web.url + "/")
    return page


def page_errors(page: Page) -> list[str]:
    return _ERRORS.get(id(page), [])


_ERRORS: dict[int, list[str]] = {}
