"""Uploading through the page: the file picker and drag and drop, a progress bar per file fed
by the SSE channel, faults told in words, retry and cancel, the document list."""

from __future__ import annotations

import base64
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from playwright.async_api import BrowserContext, Page, expect

from core.ingestion.extraction import Format
from tests.conftest import REPO
from tests.helpers import Outage
from tests.servers import LiveApi
from tests.web.conftest import SLOW_MS, open_page, page_errors

# Records every value the page gives any progress bar, in order.
RECORD_PROGRESS = """() => {
  window.progressSeen = [];
  new MutationObserver((records) => {
    for (const record of records) window.progressSeen.push(Number(record.target.value));
  }).observe(document.getElementById("uploads"),
             {subtree: true, attributes: true, attributeFilter: ["value"]});
}"""

DROP_FILES = """(files) => {
  const transfer = new DataTransfer();
  for (const file of files) {
    const bytes = Uint8Array.from(atob(file.data), (c) => c.charCodeAt(0));
    transfer.items.add(new File([bytes], file.name, {type: "application/pdf"}));
  }
  const zone = document.getElementById("drop-zone");
  for (const type of ["dragenter", "dragover", "drop"]) {
    const init = {dataTransfer: transfer, bubbles: true, cancelable: true};
    zone.dispatchEvent(new DragEvent(type, init));
  }
}"""


FORMATS = REPO.parent / "shared" / "formats"
DROPPED = ("simple.docx", "stanley-cups.csv")


def upload_row(page: Page, name: str) -> Any:
    return page.locator("li.upload").filter(has=page.get_by_role("progressbar", name=name))


async def drop(page: Page, files: Sequence[tuple[str, bytes]]) -> None:
    encoded = [{"name": name, "data": base64.b64encode(data).decode()} for name, data in files]
    await page.evaluate(DROP_FILES, encoded)


async def test_picked_pdf_uploads_with_a_bar_that_reaches_100(
    web: LiveApi, context: BrowserContext, corpus: Path
) -> None:
    page = await open_page(context, web)
    await page.evaluate(RECORD_PROGRESS)
    await page.get_by_label("Upload documents").set_input_files(corpus / "pdflatex-4-pages.pdf")

    bar = page.get_by_role("progressbar", name="pdflatex-4-pages.pdf")
    await expect(bar).to_have_attribute("value", "100", timeout=SLOW_MS)
    row = upload_row(page, "pdflatex-4-pages.pdf")
    await expect(row.locator(".upload-stage")).to_have_text("Ready")
    await expect(row).to_contain_text("page 4 of 4")
    await expect(row.get_by_role("button")).to_have_count(0)  # nothing to retry or cancel

    seen: list[float] = await page.evaluate("window.progressSeen")
    assert seen == sorted(seen), seen
    assert seen[-1] == 100 and len(set(seen)) >= 3, f"the bar moved in steps: {seen}"
    library = page.get_by_role("row", name=re.compile("pdflatex-4-pages.pdf"))
    await expect(library).to_contain_text("Ready")
    await expect(library).to_contain_text("4")
    assert page_errors(page) == []


async def test_dropped_files_each_get_a_row_and_faults_are_told_in_words(
    web: LiveApi, context: BrowserContext, corpus: Path
) -> None:
    page = await open_page(context, web)
    await drop(
        page,
        [
            ("minimal-document.pdf", (corpus / "minimal-document.pdf").read_bytes()),
            ("locked.pdf", (corpus / "libreoffice-writer-password.pdf").read_bytes()),
            ("notes.pdf", bytes(range(256)) * 4),  # no format docchat reads, named .pdf
        ],
    )
    await expect(page.get_by_role("progressbar", name="minimal-document.pdf")).to_have_attribute(
        "value", "100", timeout=SLOW_MS
    )

    locked = upload_row(page, "locked.pdf")
    await expect(locked.locator(".upload-stage")).to_have_text("Failed", timeout=SLOW_MS)
    await expect(locked.get_by_role("alert")).to_contain_text("password-protected")
    await expect(locked.get_by_role("button", name="Retry locked.pdf")).to_have_count(0)

    not_pdf = upload_row(page, "notes.pdf")
    await expect(not_pdf.locator(".upload-stage")).to_have_text("Not uploaded")
    await expect(not_pdf.get_by_role("alert")).to_contain_text(
        "docchat cannot read this kind of file."
    )
    await not_pdf.get_by_role("button", name="Dismiss notes.pdf").click()
    await expect(not_pdf).to_have_count(0)

    await expect(page.get_by_role("row", name=re.compile("locked.pdf"))).to_contain_text("Failed")
    assert page_errors(page) == []


async def test_retry_button_resumes_a_failed_task(
    web: LiveApi, context: BrowserContext, corpus: Path, outage: Outage
) -> None:
    page = await open_page(context, web)
    await page.get_by_label("Upload documents").set_input_files(corpus / "crazyones-pdfa.pdf")
    row = upload_row(page, "crazyones-pdfa.pdf")
    await expect(row.locator(".upload-stage")).to_have_text("Failed", timeout=SLOW_MS)
    await expect(row.get_by_role("alert")).to_contain_text("kept failing")

    outage.down = False
    await row.get_by_role("button", name="Retry crazyones-pdfa.pdf").click()
    await expect(row.locator(".upload-stage")).to_have_text("Ready", timeout=SLOW_MS)
    await expect(row.get_by_role("progressbar")).to_have_attribute("value", "100")
    await expect(row.get_by_role("alert")).to_be_hidden()
    assert page_errors(page) == []


async def test_cancel_button_stops_a_long_ingest(
    web: LiveApi, context: BrowserContext, corpus: Path
) -> None:
    page = await open_page(context, web)
    await page.get_by_label("Upload documents").set_input_files(corpus / "GeoTopo-komprimiert.pdf")
    row = upload_row(page, "GeoTopo-komprimiert.pdf")
    cancel = row.get_by_role("button", name="Cancel GeoTopo-komprimiert.pdf")
    await cancel.click(timeout=SLOW_MS)
    await expect(row.locator(".upload-stage")).to_have_text("Cancelled", timeout=SLOW_MS)
    await expect(row.get_by_role("button")).to_have_count(0)

    # Deleting it from the library (after confirming) removes its row.
    library = page.get_by_role("row", name=re.compile("GeoTopo-komprimiert.pdf"))
    await expect(library).to_contain_text("Cancelled")
    page.once("dialog", lambda dialog: dialog.accept())
    await library.get_by_role("button", name="Delete GeoTopo-komprimiert.pdf").click()
    await expect(library).to_have_count(0)
    assert page_errors(page) == []


# An extension people give each format docchat reads; a new Format fails this until the
# picker offers it.
EXTENSIONS = {
    Format.PDF: ".pdf", Format.DOCX: ".docx", Format.ODT: ".odt", Format.PPTX: ".pptx",
    Format.XLSX: ".xlsx", Format.CSV: ".csv", Format.HTML: ".html", Format.MARKDOWN: ".md",
    Format.TEXT: ".txt", Format.EPUB: ".epub", Format.RTF: ".rtf", Format.PNG: ".png",
    Format.JPEG: ".jpg", Format.TIFF: ".tiff",
}  # fmt: skip


async def test_the_picker_offers_every_format_and_dropped_documents_are_read(
    web: LiveApi, context: BrowserContext
) -> None:
    assert set(EXTENSIONS) == set(Format)
    page = await open_page(context, web)
    accept = await page.get_by_label("Upload documents").get_attribute("accept")
    assert accept is not None
    offered = set(accept.split(","))
    assert set(EXTENSIONS.values()) <= offered, offered

    # Dropped with their own names: a Word file and a CSV go the way a PDF goes.
    await drop(page, [(name, (FORMATS / name).read_bytes()) for name in DROPPED])
    for name in DROPPED:
        bar = page.get_by_role("progressbar", name=name)
        await expect(bar).to_have_attribute("value", "100", timeout=SLOW_MS)
        await expect(upload_row(page, name).locator(".upload-stage")).to_have_text("Ready")
    assert page_errors(page) == []
