"""Cross-site requests and DNS rebinding against a real keyless server (uvicorn on 127.0.0.1):
a page on another site can neither open a session's WebSocket, nor read its SSE, nor post an
upload; a host name that is not loopback (or allowed) is not answered. Pages of the API's own
origin, and clients that send no ``Origin`` (curl, the CLI), work as before."""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from temporalio.testing import WorkflowEnvironment
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from api.app import create_app
from core.llm import ModelRegistry
from core.search.embeddings import Embedder
from core.settings import Settings
from tests.core.chat.conftest import receive_type, serve
from tests.core.chat.fakes import QuickModel

EVIL = "https://evil.example"


@dataclass
class Local:
    port: int
    http: httpx.AsyncClient
    session_id: int
    uploads: Path

    def ws(self, host: str = "127.0.0.1", **kwargs: Any) -> Any:
        url = f"ws://{host}:{self.port}/chat/{self.session_id}/ws"
        return connect(url, open_timeout=5, close_timeout=2, **kwargs)


@pytest_asyncio.fixture(scope="module")
async def local(
    tmp_path_factory: pytest.TempPathFactory,
    temporal_env: WorkflowEnvironment,
    embedder: Embedder,
) -> AsyncIterator[Local]:
    settings = Settings(
        data_dir=tmp_path_factory.mktemp("guard") / "data",
        temporal_address=temporal_env.client.service_client.config.target_host,
        temporal_task_queue=f"test-{uuid.uuid4().hex[:12]}",
        allowed_hosts=["docs.internal"],
    )
    models = ModelRegistry([QuickModel()], default_model="quick")
    app = create_app(settings, embedder=embedder, models=models)
    async with serve(app) as address:
        port = int(address.rsplit(":", 1)[1])
        async with httpx.AsyncClient(base_url=f"http://{address}", timeout=60) as http:
            session = await http.post("/chat/sessions", json={"title": "guarded"})
            assert session.status_code == 201, session.text
            yield Local(port, http, session.json()["data"]["id"], settings.uploads_dir)


async def _close_code(local: Local, **kwargs: Any) -> tuple[int, str]:
    async with local.ws(**kwargs) as ws:
        with pytest.raises(ConnectionClosed) as closed:
            async with asyncio.timeout(10):  # a socket that stays open fails, not hangs
                while True:
                    await ws.recv()
    assert closed.value.rcvd is not None
    return closed.value.rcvd.code, closed.value.rcvd.reason


def _assert_refused(response: httpx.Response, code: str) -> None:
    assert response.status_code == 403, response.text
    body = response.json()
    assert body["success"] is False and body["data"] is None
    assert body["error"]["error_code"] == code


# --- cross-site WebSocket hijacking -------------------------------------------------------


async def test_a_page_on_another_site_cannot_open_a_session_socket(local: Local) -> None:
    code, reason = await _close_code(local, origin=EVIL)
    assert code == 4403
    assert "DOCCHAT_CORS_ORIGINS" in reason
    # Any other page: another port of localhost is another origin too; so is a file:// page.
    assert (await _close_code(local, origin=f"http://localhost:{local.port + 1}"))[0] == 4403
    assert (await _close_code(local, origin="null"))[0] == 4403


@pytest.mark.parametrize(
    ("page", "socket_host"),
    [
        ("http://localhost:{port}", "localhost"),
        ("http://127.0.0.1:{port}", "localhost"),  # the seed's example from either page
        ("http://localhost:{port}", "127.0.0.1"),
        (None, "127.0.0.1"),  # no Origin: not a browser
    ],
)
async def test_the_apis_own_pages_and_non_browsers_still_join(
    local: Local, page: str | None, socket_host: str
) -> None:
    origin = page.format(port=local.port) if page else None
    async with local.ws(socket_host, origin=origin) as ws:
        connected = await receive_type(ws, "connected")
        assert connected["session_id"] == local.session_id
        await ws.send(json.dumps({"type": "ping"}))
        await receive_type(ws, "pong")


# --- cross-site REST and SSE --------------------------------------------------------------


async def test_a_cross_site_form_post_of_an_upload_is_refused_before_it_is_read(
    local: Local, corpus: Path
) -> None:
    # A <form enctype="multipart/form-data"> POST needs no CORS preflight: the Origin check is
    # all that stands between another site and an upload into the user's local docchat.
    pdf = (corpus / "pdflatex-4-pages.pdf").read_bytes()
    response = await local.http.post(
        "/docs/upload_file_async",
        files={"file": ("x.pdf", pdf, "application/pdf")},
        headers={"Origin": EVIL},
    )
    _assert_refused(response, "origin_not_allowed")
    assert not local.uploads.exists() or list(local.uploads.iterdir()) == []
    asked = await local.http.post(
        f"/chat/{local.session_id}/ask", json={"question": "What?"}, headers={"Origin": EVIL}
    )
    _assert_refused(asked, "origin_not_allowed")
    messages = await local.http.get(f"/chat/sessions/{local.session_id}/messages")
    assert messages.json()["data"] == []


async def test_another_sites_event_stream_is_refused(local: Local) -> None:
    response = await local.http.get(
        "/docs/processing/some-task/events",
        headers={"Origin": EVIL, "Accept": "text/event-stream"},
    )
    _assert_refused(response, "origin_not_allowed")
    # The same request from the API's own page reaches the route (which knows no such task).
    own = await local.http.get(
        "/docs/processing/some-task/events",
        headers={"Origin": f"http://127.0.0.1:{local.port}", "Accept": "text/event-stream"},
    )
    assert own.status_code == 404, own.text
    assert own.json()["error"]["error_code"] == "task_not_found"


# --- DNS rebinding ------------------------------------------------------------------------


@pytest.mark.parametrize("host", ["evil.example", "evil.example:{port}", "192.168.1.20:{port}"])
async def test_a_rebound_host_name_is_not_answered(local: Local, host: str) -> None:
    response = await local.http.get("/docs", headers={"Host": host.format(port=local.port)})
    _assert_refused(response, "host_not_allowed")
    assert "DOCCHAT_ALLOWED_HOSTS" in response.json()["error"]["message"]
    code, _ = await _close_code(local, additional_headers={"Host": "evil.example"})
    assert code == 4403


@pytest.mark.parametrize(
    "host", ["localhost", "localhost:{port}", "127.0.0.1:9", "[::1]:{port}", "docs.internal:8080"]
)
async def test_loopback_names_and_allowed_hosts_are_answered(local: Local, host: str) -> None:
    response = await local.http.get("/docs", headers={"Host": host.format(port=local.port)})
    assert response.status_code == 200, response.text
    assert response.json()["success"] is True


# --- keys in URLs -------------------------------------------------------------------------


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


async def test_a_token_in_the_url_never_reaches_the_access_log(local: Local) -> None:
    access = logging.getLogger("uvicorn.access")
    records = _Records()
    level = access.level
    access.addHandler(records)
    access.setLevel(logging.INFO)
    try:
        response = await local.http.get(
            "/docs/processing/some-task/events?token=k-0123456789abcdef&x=1",
            headers={"Accept": "text/event-stream"},
        )
        assert response.status_code == 404
    finally:
        access.removeHandler(records)
        access.setLevel(level)
    logged = [line for line in records.lines if "/docs/processing/some-task/events" in line]
    assert logged, records.lines
    assert all("k-0123456789abcdef" not in line for line in logged), logged
    assert "token=[redacted]&x=1" in logged[0]
