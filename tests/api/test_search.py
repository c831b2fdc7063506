"""``GET /docs/search`` over documents ingested through the real pipeline."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import pytest_asyncio
from temporalio.testing import WorkflowEnvironment

from core.search.embeddings import Embedder
from tests.helpers import api_client, stack_settings, upload, wait_for_status


@pytest_asyncio.fixture(scope="module")
async def indexed(
    tmp_path_factory: pytest.TempPathFactory,
    temporal_env: WorkflowEnvironment,
    embedder: Embedder,
    corpus: Path,
) -> AsyncIterator[tuple[httpx.AsyncClient, dict[str, str]]]:
    settings = stack_settings(
        tmp_path_factory.mktemp("search") / "data",
        temporal_env,
        activity_max_attempts=2,
    )
    async with api_client(settings, embedder) as client:
        ids: dict[str, str] = {}
        for name in ("multicolumn.pdf", "crazyones-pdfa.pdf"):
            response = await upload(client, corpus / name)
            final, _ = await wait_for_status(client, response.json()["task_id"])
            assert final["status"] == "completed", final
            ids[name] = response.json()["document_id"]
        yield client, ids


async def test_hits_are_ranked_and_complete(indexed) -> None:
    client, ids = indexed
    response = await client.get("/docs/search", params={"q": "capital city of Austria", "k": 3})
    assert response.status_code == 200, response.text
    body = response.json()
    hits = body["data"]
    assert len(hits) == 3
    assert body["metadata"]["k"] == 3 and body["metadata"]["count"] == 3
    assert set(hits[0]) == {
        "document_id",
        "filename",
        "page",
        "chunk_index",
        "score",
        "text",
        "label",
        "found_by",
        "ranks",
        "dense_score",
        "keyword_score",
    }
    assert body["metadata"]["retrieval"] == "hybrid"  # the default
    assert hits[0]["document_id"] == ids["multicolumn.pdf"] and hits[0]["page"] == 3
    assert hits[0]["label"] == "page 3"
    assert "Vienna" in hits[0]["text"]
    scores = [hit["score"] for hit in hits]
    assert scores == sorted(scores, reverse=True)

    rebels = (await client.get("/docs/search", params={"q": "misfits and rebels"})).json()
    assert rebels["data"][0]["document_id"] == ids["crazyones-pdfa.pdf"]
    assert rebels["metadata"]["k"] == 4  # the configured retrieval_k


async def test_document_filter_restricts_the_search(indexed) -> None:
    client, ids = indexed
    only = ids["crazyones-pdfa.pdf"]
    response = await client.get(
        "/docs/search", params={"q": "capital city of Austria", "document_id": only}
    )
    hits = response.json()["data"]
    assert hits and {hit["document_id"] for hit in hits} == {only}

    both = await client.get(
        "/docs/search",
        params=[
            ("q", "Vienna"),
            ("k", "50"),
            ("document_id", only),
            ("document_id", ids["multicolumn.pdf"]),
        ],
    )
    assert {hit["document_id"] for hit in both.json()["data"]} == set(ids.values())


async def test_search_wins_over_the_document_route_which_still_works(indexed) -> None:
    client, ids = indexed
    document = await client.get(f"/docs/{ids['multicolumn.pdf']}")
    assert document.status_code == 200 and document.json()["data"]["filename"] == "multicolumn.pdf"
    missing_query = await client.get("/docs/search")
    assert missing_query.status_code == 422
    assert missing_query.json()["error"]["error_code"] == "validation_error"


@pytest.mark.parametrize(
    "params",
    [
        {"q": "x", "k": 0},
        {"q": "x", "k": 51},
        {"q": "   "},
        {"q": "x", "retrieval": "bm25"},
        {"q": "x", "retrieval": "Hybrid"},
        {"q": "x", "retrieval": ""},
    ],
)
async def test_invalid_searches_are_refused(indexed, params) -> None:
    client, _ = indexed
    response = await client.get("/docs/search", params=params)
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["success"] is False and body["error"]["error_code"] == "validation_error"


async def test_each_retrieval_mode_says_which_side_found_each_hit(indexed) -> None:
    client, ids = indexed
    sides = {}
    for mode in ("dense", "keyword", "hybrid"):
        response = await client.get(
            "/docs/search", params={"q": "Vienna Austria", "k": 5, "retrieval": mode}
        )
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["metadata"]["retrieval"] == mode
        hits = body["data"]
        assert hits and hits[0]["document_id"] == ids["multicolumn.pdf"], mode
        assert "Vienna" in hits[0]["text"]
        for hit in hits:
            assert hit["found_by"] == list(hit["ranks"]) and hit["found_by"], hit
        sides[mode] = {side for hit in hits for side in hit["found_by"]}
    assert sides["dense"] == {"dense"} and sides["keyword"] == {"keyword"}
    assert sides["hybrid"] == {"dense", "keyword"}
    keyword_hits = (
        await client.get("/docs/search", params={"q": "Vienna", "retrieval": "keyword"})
    ).json()["data"]
    # The keyword side returns only chunks holding the word, each with its BM25 score.
    assert all("vienna" in hit["text"].casefold() for hit in keyword_hits)
    assert all(hit["keyword_score"] > 0 and hit["dense_score"] is None for hit in keyword_hits)
