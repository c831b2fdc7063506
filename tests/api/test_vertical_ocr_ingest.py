"""Vertical Japanese through the real stack (API, Temporal workflow, child-process extraction
with Tesseract's vertical pass, embeddings, Qdrant): a Japanese question finds the Japanese
page of a real image upload, by keyword and hybrid search (acceptance of issue 17)."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import pytest_asyncio
from temporalio.testing import WorkflowEnvironment

from core.ingestion.extraction import ocr
from core.search.embeddings import Embedder
from tests.helpers import api_client, ingest_each, stack_settings

FORMATS = Path(__file__).resolve().parents[2].parent / "shared" / "formats"
# Asked in Japanese, from jpn-vert.jpeg: "Was Japanese written from top to bottom?"
QUESTION = "日本語の文字は上から下へ縦書きで書かれていましたか"

pytestmark = pytest.mark.skipif(
    shutil.which("tesseract") is None
    or "jpn_vert" not in ocr.installed_languages()
    or not FORMATS.is_dir(),
    reason="needs Tesseract with its jpn_vert data (`make test` installs "
    "tesseract-ocr-jpn-vert) and ../shared/formats",
)


@pytest_asyncio.fixture(scope="module")
async def indexed(
    tmp_path_factory: pytest.TempPathFactory,
    temporal_env: WorkflowEnvironment,
    embedder: Embedder,
    corpus: Path,
) -> AsyncIterator[tuple[httpx.AsyncClient, dict[str, str]]]:
    folder = tmp_path_factory.mktemp("vertical")
    settings = stack_settings(
        folder / "data", temporal_env, activity_max_attempts=2, ocr_languages="eng+jpn+jpn_vert"
    )
    async with api_client(settings, embedder) as client:
        # An English document beside it: the search has to choose the Japanese page.
        yield (
            client,
            await ingest_each(client, (FORMATS / "jpn-vert.jpeg", corpus / "minimal-document.pdf")),
        )


async def test_the_vertical_page_is_stored_as_japanese_text(indexed) -> None:
    client, ids = indexed
    page = (await client.get(f"/docs/{ids['jpn-vert.jpeg']}/pages/1")).json()["data"]
    assert page["label"] == "page 1"
    assert "日本語" in page["text"] and "縦書き" in page["text"]


@pytest.mark.parametrize("retrieval", ["keyword", "hybrid"])
async def test_a_japanese_question_finds_its_japanese_page(indexed, retrieval: str) -> None:
    client, ids = indexed
    response = await client.get(
        "/docs/search", params={"q": QUESTION, "k": 2, "retrieval": retrieval}
    )
    assert response.status_code == 200, response.text
    hits = response.json()["data"]
    first = hits[0]
    assert (first["document_id"], first["page"]) == (ids["jpn-vert.jpeg"], 1)
    assert "keyword" in first["found_by"]
    if retrieval == "keyword":  # the English page shares no term with the question
        assert [hit["document_id"] for hit in hits] == [ids["jpn-vert.jpeg"]]
