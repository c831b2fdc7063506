"""A document's "Replace file" action: the new version is uploaded with a progress bar, and
the library then lists the document under its new file name (docs/replace.md)."""

from __future__ import annotations

import re
import uuid
from pathlib import Path

from playwright.async_api import BrowserContext, expect

from tests.pdfs import text_pdf
from tests.servers import LiveApi
from tests.web.conftest import SLOW_MS, open_page, page_errors


async def test_replace_file_uploads_a_new_version_of_the_document(
    web: LiveApi, context: BrowserContext, tmp_path: Path
) -> None:
    marker = uuid.uuid4().hex[:8]
    first = tmp_path / f"notes-{marker}.pdf"
    first.write_bytes(text_pdf([[f"Meeting notes {marker}.", "The budget was approved."]]))
    second = tmp_path / f"notes-{marker}-v2.pdf"
    second.write_bytes(text_pdf([[f"Meeting notes {marker}.", "The budget was postponed."]]))

    page = await open_page(context, web)
    await page.get_by_label("Upload documents").set_input_files(first)
    library = page.get_by_role("row", name=re.compile(f"notes-{marker}"))
    await expect(library).to_contain_text("Ready", timeout=SLOW_MS)

    await page.get_by_label(f"New version of {first.name}").set_input_files(second)
    bar = page.get_by_role("progressbar", name=second.name)
    await expect(bar).to_have_attribute("value", "100", timeout=SLOW_MS)
    # One row, now under the new file's name: the same document, not a second one.
    await expect(library).to_have_count(1)
    await expect(library).to_contain_text(second.name, timeout=SLOW_MS)
    await expect(
        library.get_by_role("button", name=f"Replace file of {second.name}")
    ).to_be_visible(timeout=SLOW_MS)
    assert page_errors(page) == []
