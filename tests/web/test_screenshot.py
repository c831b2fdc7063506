"""The README's screenshot of the page, taken on demand:

DOCCHAT_SCREENSHOT=docs/screenshot.png .venv/bin/python -m pytest tests/web -k screenshot
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from playwright.async_api import Browser, expect

from tests.servers import LiveApi
from tests.web.conftest import SLOW_MS, open_page

TARGET = os.environ.get("DOCCHAT_SCREENSHOT")


@pytest.mark.skipif(not TARGET, reason="set DOCCHAT_SCREENSHOT=<png path> to take it")
async def test_screenshot(web: LiveApi, browser: Browser, corpus: Path) -> None:
    assert TARGET
    context = await browser.new_context(viewport={"width": 1100, "height": 680})
    other = await browser.new_context()
    try:
        page = await open_page(context, web)
        await page.evaluate("localStorage.setItem('docchat.userName', 'alice')")
        await page.reload()
        await page.get_by_label("Upload documents").set_input_files(corpus / "pdflatex-4-pages.pdf")
        await expect(page.locator("li.upload .upload-stage").first).to_have_text(
            "Ready", timeout=SLOW_MS
        )
        await page.get_by_role("button", name="New session").click()
        await expect(page.locator("#connection")).to_have_text("Live")
        await page.get_by_label("Your question").fill("What is the capital of Austria?")
        await page.get_by_label("Your question").press("Enter")
        await expect(page.locator("article.assistant .sources").first).to_be_visible(
            timeout=SLOW_MS
        )
        # Bob, in another browser on the same session, starts typing.
        bob = await open_page(other, web)
        await bob.evaluate("localStorage.setItem('docchat.userName', 'bob')")
        await bob.reload()
        session_id = await page.get_by_label("Session").input_value()
        await bob.get_by_label("Session").select_option(session_id)
        await expect(bob.locator("#connection")).to_have_text("Live")
        await bob.get_by_label("Your question").press_sequentially("And of Fra", delay=20)
        await expect(page.locator("#typing")).to_have_text("bob is typing…")
        await page.screenshot(path=TARGET)
    finally:
        await context.close()
        await other.close()
    assert Path(TARGET).stat().st_size < 300_000
