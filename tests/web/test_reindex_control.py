"""The page's re-index control: it says the settings changed, starts the re-index, and its
progress bar follows it to the end, after which the page names the new active version."""

from __future__ import annotations

from pathlib import Path

from playwright.async_api import BrowserContext, expect
from temporalio.testing import WorkflowEnvironment

from core.search.embeddings import Embedder
from tests.servers import live_api
from tests.web.conftest import SLOW_MS, open_page, page_errors

RECORD_BAR = """() => {
  window.reindexSeen = [];
  new MutationObserver(() => window.reindexSeen.push(
    Number(document.getElementById("reindex-bar").value)))
    .observe(document.getElementById("reindex-bar"), {attributes: true});
}"""


async def test_the_reindex_button_rebuilds_with_a_progress_bar(
    context: BrowserContext,
    tmp_path: Path,
    temporal_env: WorkflowEnvironment,
    embedder: Embedder,
    corpus: Path,
) -> None:
    data_dir = tmp_path / "data"
    async with live_api(data_dir, temporal_env, embedder, corpus):
        pass  # ingested multicolumn.pdf with the default 128-token chunks
    async with live_api(
        data_dir, temporal_env, embedder, corpus, ingest=False, chunk_tokens=64
    ) as web:
        versions = (await web.http.get("/index/versions")).json()["data"]
        assert versions["matches"] is False
        page = await open_page(context, web)
        status = page.locator("#index-status")
        await expect(status).to_contain_text("re-index")
        await page.evaluate(RECORD_BAR)
        await page.get_by_role("button", name="Re-index").click()
        bar = page.get_by_role("progressbar", name="Index")
        await expect(bar).to_be_visible()
        await expect(page.locator("#reindex-text")).to_contain_text("completed", timeout=SLOW_MS)
        await expect(bar).to_have_attribute("aria-valuetext", "100 percent")
        await expect(status).to_contain_text(
            f"Index version {versions['configured_version']} is active"
        )
        seen = await page.evaluate("window.reindexSeen")
        assert seen and seen[-1] == 100
        assert page_errors(page) == []
        after = (await web.http.get("/index/versions")).json()["data"]
        assert (
            after["matches"] is True and after["active_version"] == versions["configured_version"]
        )
