"""Formats beyond PDF through the real stack: accepted at upload by their bytes, ingested by
the same workflow, and found by a sentence with the location label of where it is."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import pytest_asyncio
from temporalio.testing import WorkflowEnvironment

from core.search.embeddings import Embedder
from tests.helpers import api_client, stack_settings, upload, wait_for_status

FORMATS = Path(__file__).resolve().parents[2].parent / "shared" / "formats"
# file, a query, a sentence in the hit, the hit's label
CASES = [
    ("simple.docx", "my second thought", "This is my second thought.",
     "§These are a few of my favorite things:"),
    ("sample-presentation.pptx", "what happens on the second content slide",
     "This is the second content slide", "slide 3"),
    ("stanley-cups.xlsx", "Maple Leafs Toronto Stanley Cups", "Location: TOR | Stanley Cups: 13",
     'sheet "Stanley Cups" rows 1–5'),
    ("winter-sports.epub", "the Jungfrau will always be my mistress among mountains",
     "The Jungfrau is and will always be my mistress among mountains",
     "§WINTER SPORTS IN SWITZERLAND › CHAPTER I THE SUN-SEEKER (part 4)"),
]  # fmt: skip

pytestmark = pytest.mark.skipif(not FORMATS.is_dir(), reason=f"no {FORMATS}")


@pytest_asyncio.fixture(scope="module")
async def indexed(
    tmp_path_factory: pytest.TempPathFactory,
    temporal_env: WorkflowEnvironment,
    embedder: Embedder,
) -> AsyncIterator[tuple[httpx.AsyncClient, dict[str, dict[str, object]]]]:
    settings = stack_settings(
        tmp_path_factory.mktemp("formats") / "data", temporal_env, activity_max_attempts=2
    )
    async with api_client(settings, embedder) as client:
        finals: dict[str, dict[str, object]] = {}
        for name, *_ in CASES:
            # Named .pdf and sent as application/pdf: only the bytes decide.
            response = await upload(client, FORMATS / name, name=f"{name}.pdf")
            assert response.status_code == 202, response.text
            final, _ = await wait_for_status(client, response.json()["task_id"], timeout=300)
            assert final["status"] == "completed", final
            finals[name] = {"document_id": response.json()["document_id"], **final}
        yield client, finals


@pytest.mark.parametrize(("name", "query", "sentence", "label"), CASES)
async def test_found_with_its_location(
    indexed, name: str, query: str, sentence: str, label: str
) -> None:
    client, finals = indexed
    document_id = finals[name]["document_id"]
    response = await client.get(
        "/docs/search", params={"q": query, "document_id": document_id, "k": 10}
    )
    hits = response.json()["data"]
    holding = [hit for hit in hits if sentence in hit["text"]]
    assert holding, hits
    assert holding[0]["label"] == label
    page = await client.get(f"/docs/{document_id}/pages/{holding[0]['page']}")
    assert page.json()["data"]["label"] == label


async def test_unit_counts_are_reported_as_pages(indexed) -> None:
    _, finals = indexed
    assert finals["sample-presentation.pptx"]["page_count"] == 4  # slides
    assert finals["stanley-cups.xlsx"]["page_count"] == 2  # one row group per sheet
