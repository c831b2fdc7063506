"""The web page in a real browser: Debian's Chromium driven by Playwright, against a real API
server (uvicorn on a free port, in the tests' event loop) with the real ingestion pipeline and
the embedded SmolLM2 model. Nothing is downloaded: Playwright only drives /usr/bin/chromium.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from playwright.async_api import Browser, BrowserContext, Page, async_playwright
from temporalio.testing import WorkflowEnvironment

from core.search.embeddings import Embedder
from tests.servers import LiveApi, live_api

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
# Ingestion and answers on a busy 2-core machine: generous, but every wait ends.
SLOW_MS = 120_000


@pytest_asyncio.fixture(scope="package")
async def web(
    tmp_path_factory: pytest.TempPathFactory,
    temporal_env: WorkflowEnvironment,
    embedder: Embedder,
    corpus: Path,
) -> AsyncIterator[LiveApi]:
    data_dir = tmp_path_factory.mktemp("web") / "data"
    async with live_api(data_dir, temporal_env, embedder, corpus) as api:
        yield api


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


async def open_page(context: BrowserContext, web: LiveApi) -> Page:
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
