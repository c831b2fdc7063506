"""Scanned PDFs through the real stack (API, Temporal workflow, child-process extraction with
Tesseract, embeddings, Qdrant): a scanned page is found by a sentence on it, a mixed PDF OCRs
only its image page, and search hits and the page route carry the location label."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import pytest_asyncio
from PIL import Image
from pypdf import PdfReader, PdfWriter
from temporalio.testing import WorkflowEnvironment

from core.search.embeddings import Embedder
from tests.helpers import api_client, ingest_each, stack_settings

FORMATS = Path(__file__).resolve().parents[2].parent / "shared" / "formats"
# On DA-1p.png, a scanned page of a game book.
SENTENCE = "We arrived in the dead of night. We had been tracking the maleficar for days"

pytestmark = pytest.mark.skipif(
    shutil.which("tesseract") is None or not FORMATS.is_dir(),
    reason="needs Tesseract (`make test` installs it) and ../shared/formats",
)


def scanned_pdf(target: Path) -> Path:
    with Image.open(FORMATS / "DA-1p.png") as image:
        image.convert("RGB").save(target, "PDF", resolution=72)
    return target


def mixed_pdf(corpus: Path, target: Path, scan: Path) -> Path:
    text = PdfReader(corpus / "pdflatex-4-pages.pdf")
    writer = PdfWriter()
    for page in (text.pages[0], PdfReader(scan).pages[0], text.pages[1]):
        writer.add_page(page)
    with target.open("wb") as handle:
        writer.write(handle)
    return target


@pytest_asyncio.fixture(scope="module")
async def indexed(
    tmp_path_factory: pytest.TempPathFactory,
    temporal_env: WorkflowEnvironment,
    embedder: Embedder,
    corpus: Path,
) -> AsyncIterator[tuple[httpx.AsyncClient, dict[str, str]]]:
    folder = tmp_path_factory.mktemp("ocr")
    scan = scanned_pdf(folder / "scan.pdf")
    mixed = mixed_pdf(corpus, folder / "mixed.pdf", scan)
    settings = stack_settings(
        folder / "data", temporal_env, activity_max_attempts=2, ocr_languages="eng"
    )
    async with api_client(settings, embedder) as client:
        yield client, await ingest_each(client, (scan, mixed))


async def test_a_scanned_page_is_found_by_a_sentence_on_it(indexed) -> None:
    client, ids = indexed
    response = await client.get(
        "/docs/search", params={"q": SENTENCE, "document_id": ids["scan.pdf"], "k": 1}
    )
    hit = response.json()["data"][0]
    assert hit["page"] == 1 and hit["label"] == "page 1"
    assert "dead of night" in hit["text"]


async def test_a_mixed_pdf_is_searched_on_its_recognised_page(indexed) -> None:
    client, ids = indexed
    response = await client.get(
        "/docs/search", params={"q": SENTENCE, "document_id": ids["mixed.pdf"], "k": 1}
    )
    hit = response.json()["data"][0]
    assert (hit["page"], hit["label"]) == (2, "page 2")
    page = (await client.get(f"/docs/{ids['mixed.pdf']}/pages/2")).json()["data"]
    assert page["label"] == "page 2" and "dead of night" in page["text"]
    first = (await client.get(f"/docs/{ids['mixed.pdf']}/pages/1")).json()["data"]
    assert first["label"] == "page 1" and "dead of night" not in first["text"]
