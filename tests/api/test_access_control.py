"""API keys and principals over a real server: alice and bob each see only their own documents,
tasks, chat sessions and vectors; everything of the other's answers 404 (WebSocket: 4404), and a
request without a valid key answers 401 ``unauthorized`` (WebSocket: 4401)."""

from __future__ import annotations

import json
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
from tests.core.chat.conftest import receive_answer, receive_type, serve
from tests.core.chat.fakes import QuickModel
from tests.helpers import upload, wait_for_status

ALICE_KEY = "alice-0123456789abcdef0123456789"
BOB_KEY = "bob-0123456789abcdef0123456789ab"
ORIGIN = "https://app.example"
QUESTION = "What is the capital of Austria?"


@dataclass
class Principal:
    key: str
    http: httpx.AsyncClient
    document_id: str
    task_id: str
    session_id: int


@dataclass
class Secured:
    address: str
    anonymous: httpx.AsyncClient
    alice: Principal
    bob: Principal

    def ws(self, session_id: int, *, query: str = "", **kwargs: Any) -> Any:
        url = f"ws://{self.address}/chat/{session_id}/ws{query}"
        return connect(url, open_timeout=5, close_timeout=2, **kwargs)


@pytest_asyncio.fixture(scope="module")
async def secured(
    tmp_path_factory: pytest.TempPathFactory,
    temporal_env: WorkflowEnvironment,
    embedder: Embedder,
    corpus: Path,
) -> AsyncIterator[Secured]:
    settings = Settings.model_validate(
        {
            "data_dir": tmp_path_factory.mktemp("secured") / "data",
            "temporal_address": temporal_env.client.service_client.config.target_host,
            "temporal_task_queue": f"test-{uuid.uuid4().hex[:12]}",
            "embedded_worker": True,
            "activity_max_attempts": 2,
            "api_keys": {ALICE_KEY: "alice", BOB_KEY: "bob"},
            "cors_origins": [ORIGIN],
        }
    )
    models = ModelRegistry([QuickModel()], default_model="quick")
    app = create_app(settings, embedder=embedder, models=models)
    async with serve(app) as address:
        base = f"http://{address}"
        async with (
            httpx.AsyncClient(base_url=base, timeout=60) as anonymous,
            httpx.AsyncClient(base_url=base, timeout=60, headers=_bearer(ALICE_KEY)) as alice,
            httpx.AsyncClient(base_url=base, timeout=60, headers=_bearer(BOB_KEY)) as bob,
        ):
            owners = []
            for http, key, pdf in (
                (alice, ALICE_KEY, "multicolumn.pdf"),  # page 3: EU countries and capitals
                (bob, BOB_KEY, "pdflatex-4-pages.pdf"),
            ):
                accepted = await upload(http, corpus / pdf)
                assert accepted.status_code == 202, accepted.text
                final, _ = await wait_for_status(http, accepted.json()["task_id"])
                assert final["status"] == "completed", final
                session = await http.post("/chat/sessions", json={"title": pdf})
                owners.append(
                    Principal(
                        key=key,
                        http=http,
                        document_id=accepted.json()["document_id"],
                        task_id=accepted.json()["task_id"],
                        session_id=session.json()["data"]["id"],
                    )
                )
            yield Secured(address, anonymous, *owners)


def _bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def _assert_unauthorized(response: httpx.Response) -> None:
    assert response.status_code == 401, response.text
    body = response.json()
    assert body["success"] is False and body["data"] is None
    assert body["error"]["error_code"] == "unauthorized"
    assert response.headers["www-authenticate"] == "Bearer"


# --- 401 without a valid key --------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/docs"),
        ("GET", "/docs/search?q=capital"),
        ("GET", "/docs/processing/active"),
        ("POST", "/docs/processing/retry"),
        ("GET", "/chat/sessions"),
        ("POST", "/chat/sessions"),
        ("GET", "/chat/models"),
        ("POST", "/docs/upload_file_async"),
    ],
)
@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer wrong-key-0123456789abcdef"}, {"Authorization": ALICE_KEY}],
    ids=["no-key", "wrong-key", "no-scheme"],
)
async def test_requests_without_a_valid_key_are_refused(
    secured: Secured, method: str, path: str, headers: dict[str, str]
) -> None:
    _assert_unauthorized(await secured.anonymous.request(method, path, headers=headers))


async def test_health_and_the_schema_stay_open(secured: Secured) -> None:
    assert (await secured.anonymous.get("/health")).status_code == 200
    assert (await secured.anonymous.get("/api/openapi.json")).status_code == 200


async def test_a_key_in_the_query_counts_only_for_event_streams(secured: Secured) -> None:
    alice = secured.alice
    path = f"/docs/processing/{alice.task_id}/events?token={ALICE_KEY}"
    stream = {"Accept": "text/event-stream"}
    async with secured.anonymous.stream("GET", path, headers=stream) as response:
        assert response.status_code == 200
        body = "".join([chunk async for chunk in response.aiter_text()])
    assert "event: progress" in body and "event: end" in body
    _assert_unauthorized(await secured.anonymous.get(path))  # not an EventSource
    _assert_unauthorized(await secured.anonymous.get(f"/docs?token={ALICE_KEY}"))


# --- another principal's things answer 404 ------------------------------------------------


async def test_documents_and_tasks_of_another_principal_are_not_found(secured: Secured) -> None:
    alice, bob = secured.alice, secured.bob
    task = f"/docs/processing/{alice.task_id}"
    for method, path, code in [
        ("GET", f"/docs/{alice.document_id}", "document_not_found"),
        ("DELETE", f"/docs/{alice.document_id}", "document_not_found"),
        ("GET", f"{task}/status", "task_not_found"),
        ("GET", f"{task}/history", "task_not_found"),
        ("POST", f"{task}/retry", "task_not_found"),
        ("POST", f"{task}/cancel", "task_not_found"),
    ]:
        response = await bob.http.request(method, path)
        assert response.status_code == 404, (method, path, response.text)
        assert response.json()["error"]["error_code"] == code
    events = await bob.http.get(f"{task}/events", headers={"Accept": "text/event-stream"})
    assert events.status_code == 404

    listed = (await bob.http.get("/docs")).json()["data"]
    assert [d["id"] for d in listed] == [bob.document_id]
    # Alice's document is untouched by bob's attempts.
    mine = await alice.http.get(f"/docs/{alice.document_id}")
    assert mine.status_code == 200 and mine.json()["data"]["vector_count"] > 0


async def test_chat_sessions_of_another_principal_are_not_found(secured: Secured) -> None:
    alice, bob = secured.alice, secured.bob
    chat = f"/chat/{alice.session_id}"
    for method, path, body in [
        ("GET", f"/chat/sessions/{alice.session_id}", None),
        ("GET", f"/chat/sessions/{alice.session_id}/messages", None),
        ("DELETE", f"/chat/sessions/{alice.session_id}", None),
        ("GET", f"{chat}/typing", None),
        ("POST", f"{chat}/typing", {"user_id": "bob", "is_typing": True}),
        ("POST", f"{chat}/ask", {"question": QUESTION}),
        ("POST", f"{chat}/ask/stream", {"question": QUESTION}),
    ]:
        response = await bob.http.request(method, path, json=body)
        assert response.status_code == 404, (method, path, response.text)
        assert response.json()["error"]["error_code"] == "session_not_found"
    sessions = (await bob.http.get("/chat/sessions")).json()["data"]
    assert [s["id"] for s in sessions] == [bob.session_id]
    assert (await alice.http.get(f"/chat/sessions/{alice.session_id}")).status_code == 200


async def test_retrieval_sees_only_the_principals_own_vectors(secured: Secured) -> None:
    alice, bob = secured.alice, secured.bob
    query: dict[str, str | int] = {"q": QUESTION, "k": 50}
    theirs = (await alice.http.get("/docs/search", params=query)).json()["data"]
    mine = (await bob.http.get("/docs/search", params=query)).json()["data"]
    assert theirs and {hit["document_id"] for hit in theirs} == {alice.document_id}
    assert {hit["document_id"] for hit in mine} <= {bob.document_id}
    assert not any("Vienna" in hit["text"] for hit in mine)
    only_alices = await bob.http.get(
        "/docs/search", params={**query, "document_id": alice.document_id}
    )
    assert only_alices.json()["data"] == []

    # Chat answers retrieve the same way: bob's answer never cites alice's document.
    answer = await bob.http.post(f"/chat/{bob.session_id}/ask", json={"question": QUESTION})
    assert answer.status_code == 200, answer.text
    sources = answer.json()["data"]["answer"]["sources"]
    assert all(source["document_id"] == bob.document_id for source in sources)
    named = await bob.http.post(
        f"/chat/{bob.session_id}/ask",
        json={"question": QUESTION, "search_mode": [alice.document_id]},
    )
    assert named.status_code == 404
    assert named.json()["error"]["error_code"] == "document_not_found"
    cited = await alice.http.post(f"/chat/{alice.session_id}/ask", json={"question": QUESTION})
    assert cited.json()["data"]["answer"]["sources"][0]["document_id"] == alice.document_id


# --- WebSockets ---------------------------------------------------------------------------


async def _close_code(secured: Secured, session_id: int, **kwargs: Any) -> tuple[int, str]:
    async with secured.ws(session_id, **kwargs) as ws:
        with pytest.raises(ConnectionClosed) as closed:
            while True:
                await ws.recv()
    assert closed.value.rcvd is not None
    return closed.value.rcvd.code, closed.value.rcvd.reason


async def test_a_socket_without_a_valid_key_is_closed_with_4401(secured: Secured) -> None:
    # Refused after the handshake (not with HTTP 403), so browsers see the code and reason.
    session_id = secured.alice.session_id
    code, reason = await _close_code(secured, session_id)
    assert code == 4401 and "API key" in reason
    code, _ = await _close_code(secured, session_id, query="?token=not-a-valid-key-at-all")
    assert code == 4401


async def test_another_principals_session_is_refused_like_an_unknown_one(secured: Secured) -> None:
    alice, bob = secured.alice, secured.bob
    theirs = await _close_code(secured, alice.session_id, query=f"?token={BOB_KEY}")
    unknown = await _close_code(secured, 987654, query=f"?token={BOB_KEY}")
    assert theirs[0] == unknown[0] == 4404
    assert theirs[1] == f"No chat session {alice.session_id}."
    assert bob.session_id != alice.session_id


@pytest.mark.parametrize("how", ["header", "query", "subprotocol"])
async def test_the_owner_joins_with_a_key_in_any_of_the_three_places(
    secured: Secured, how: str
) -> None:
    alice = secured.alice
    ways: dict[str, dict[str, Any]] = {
        "header": {"additional_headers": _bearer(ALICE_KEY)},
        "query": {"query": f"?token={ALICE_KEY}"},
        "subprotocol": {"subprotocols": ["docchat", f"bearer.{ALICE_KEY}"]},
    }
    kwargs = ways[how]
    async with secured.ws(alice.session_id, **kwargs) as ws:
        connected = await receive_type(ws, "connected")
        assert connected["session_id"] == alice.session_id
        if how == "subprotocol":
            assert ws.subprotocol == "docchat"
        await ws.send(json.dumps({"type": "chat_message", "question": QUESTION}))
        answer = await receive_answer(ws)
    assert answer[-1]["type"] == "complete"
    assert answer[-1]["sources"][0]["document_id"] == alice.document_id


# --- CORS ---------------------------------------------------------------------------------


async def test_with_keys_a_socket_from_another_site_is_refused_even_with_a_key(
    secured: Secured,
) -> None:
    alice = secured.alice
    offered = ["docchat", f"bearer.{ALICE_KEY}"]
    code, _ = await _close_code(
        secured, alice.session_id, origin="https://evil.example", subprotocols=offered
    )
    assert code == 4403
    async with secured.ws(alice.session_id, origin=ORIGIN, subprotocols=offered) as ws:
        assert (await receive_type(ws, "connected"))["session_id"] == alice.session_id


async def test_with_keys_any_host_name_is_answered(secured: Secured) -> None:
    # DNS rebinding needs a keyless API: with keys, the proxy's public name is fine.
    response = await secured.alice.http.get("/docs", headers={"Host": "docs.example.com"})
    assert response.status_code == 200, response.text


async def test_cors_allows_only_the_configured_origins(secured: Secured) -> None:
    preflight = {
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, content-type",
    }
    allowed = await secured.anonymous.options(
        "/chat/sessions", headers={"Origin": ORIGIN, **preflight}
    )
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == ORIGIN
    assert "authorization" in allowed.headers["access-control-allow-headers"].lower()
    assert "access-control-allow-credentials" not in allowed.headers

    other = await secured.anonymous.options(
        "/chat/sessions", headers={"Origin": "https://evil.example", **preflight}
    )
    assert other.status_code == 403  # refused before CORS, in the envelope
    assert other.json()["error"]["error_code"] == "origin_not_allowed"
    assert "access-control-allow-origin" not in other.headers
    simple = await secured.alice.http.get("/docs", headers={"Origin": ORIGIN})
    assert simple.headers["access-control-allow-origin"] == ORIGIN
