"""``/health`` tells an anonymous caller on another machine only ok/degraded per component;
the reasons (exception strings that name internal hosts) and the deployment facts go to
callers with a valid key, callers on the same machine, and the log."""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
import pytest_asyncio
from fastapi import FastAPI
from temporalio.testing import WorkflowEnvironment

from api.app import create_app
from core.search.embeddings import Embedder
from core.settings import Settings

KEY = "health-0123456789abcdef01234567"
# A Qdrant server that does not exist: the vector store is really down.
DEAD_QDRANT = "http://qdrant.docchat-test.invalid:6333"


@pytest_asyncio.fixture(scope="module")
async def app(
    tmp_path_factory: pytest.TempPathFactory,
    temporal_env: WorkflowEnvironment,
    embedder: Embedder,
) -> AsyncIterator[FastAPI]:
    settings = Settings(
        data_dir=tmp_path_factory.mktemp("health") / "data",
        temporal_address=temporal_env.client.service_client.config.target_host,
        temporal_task_queue=f"test-{uuid.uuid4().hex[:12]}",
        qdrant_url=DEAD_QDRANT,
        api_keys={KEY: "ops"},
    )
    app = create_app(settings, embedder=embedder)
    async with app.router.lifespan_context(app):
        yield app


async def _health(
    app: FastAPI, client: str, headers: dict[str, str] | None = None
) -> httpx.Response:
    transport = httpx.ASGITransport(app=app, client=(client, 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as http:
        return await http.get("/health", headers=headers)


async def test_an_anonymous_remote_caller_sees_only_ok_or_degraded(
    app: FastAPI, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="docchat.health"):
        response = await _health(app, "203.0.113.9")
    assert response.status_code == 503
    data = response.json()["data"]
    assert data["status"] == "degraded"
    assert data["components"] == {
        "database": {"ok": True, "detail": None},
        "temporal": {"ok": True, "detail": None},
        "vector_store": {"ok": False, "detail": None},
    }
    assert data["settings"] is None
    assert "qdrant" not in response.text and "127.0.0.1" not in response.text
    # The reason is not lost: it is in the log.
    assert any("vector_store is down" in record.getMessage() for record in caplog.records)


@pytest.mark.parametrize(
    ("client", "headers"),
    [("203.0.113.9", {"Authorization": f"Bearer {KEY}"}), ("127.0.0.1", None), ("::1", None)],
    ids=["remote-with-key", "loopback", "loopback-v6"],
)
async def test_a_keyed_or_local_caller_sees_why_and_where(
    app: FastAPI, client: str, headers: dict[str, str] | None
) -> None:
    response = await _health(app, client, headers)
    assert response.status_code == 503
    data = response.json()["data"]
    assert data["components"]["vector_store"]["ok"] is False
    assert data["components"]["vector_store"]["detail"]  # the exception, named
    assert data["settings"]["vector_store"] == "qdrant-server"
    assert (
        data["settings"]["temporal_address"]
        == app.state.services.resources.settings.temporal_address
    )


async def test_a_wrong_key_is_anonymous(app: FastAPI) -> None:
    response = await _health(app, "203.0.113.9", {"Authorization": "Bearer not-the-key-0123456789"})
    data = response.json()["data"]
    assert data["settings"] is None
    assert data["components"]["vector_store"] == {"ok": False, "detail": None}
