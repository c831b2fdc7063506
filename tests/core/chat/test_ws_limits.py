"""WebSocket abuse over real sockets: oversized frames (1009), floods (rate_limited, then 4429),
invalid UTF-8 (1007), over-long questions, connection caps (1013) and a client that never reads
(dropped) — each met with a typed error or a documented close code, the other clients of the
session unaffected. Also the body cap of REST requests (413 request_too_large)."""

from __future__ import annotations

import asyncio
import json
import os
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import pytest_asyncio
from fastapi import FastAPI
from temporalio.testing import WorkflowEnvironment
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from api.app import create_app
from core.chat.service import ChatService
from core.llm import ModelRegistry
from core.search.embeddings import Embedder
from tests.core.chat.conftest import receive_answer, receive_type, serve
from tests.core.chat.fakes import QuickModel
from tests.helpers import stack_settings, until

MAX_FRAME = 2048
RATE, BURST = 2.0, 4
PER_SESSION, TOTAL = 3, 5
MAX_QUESTION = 100
MAX_BODY = 4096
QUEUE = 8


@dataclass
class Limited:
    app: FastAPI
    http: httpx.AsyncClient
    address: str

    @property
    def chat(self) -> ChatService:
        chat: ChatService = self.app.state.services.chat
        return chat

    async def new_session(self) -> int:
        response = await self.http.post("/chat/sessions", json={"title": "limits"})
        session_id: int = response.json()["data"]["id"]
        return session_id

    def ws(self, session_id: int, **kwargs: Any) -> Any:
        url = f"ws://{self.address}/chat/{session_id}/ws"
        return connect(url, open_timeout=5, close_timeout=2, **kwargs)


@pytest_asyncio.fixture(scope="module")
async def limited(
    tmp_path_factory: pytest.TempPathFactory, temporal_env: WorkflowEnvironment, embedder: Embedder
) -> AsyncIterator[Limited]:
    settings = stack_settings(
        tmp_path_factory.mktemp("limits") / "data",
        temporal_env,
        ws_max_message_bytes=MAX_FRAME,
        ws_rate_limit_per_second=RATE,
        ws_rate_limit_burst=BURST,
        ws_max_connections_per_session=PER_SESSION,
        ws_max_connections=TOTAL,
        ws_send_queue_size=QUEUE,
        chat_max_question_chars=MAX_QUESTION,
        max_request_bytes=MAX_BODY,
    )
    models = ModelRegistry([QuickModel()], default_model="quick")
    app = create_app(settings, embedder=embedder, models=models)
    async with serve(app) as address:
        async with httpx.AsyncClient(base_url=f"http://{address}", timeout=60) as http:
            yield Limited(app, http, address)


async def closed_with(ws: ClientConnection) -> tuple[int, str, list[dict[str, Any]]]:
    """Read until the server closes; the close code, its reason and what came before."""
    seen: list[dict[str, Any]] = []
    with pytest.raises(ConnectionClosed) as closed:
        while True:
            seen.append(json.loads(await asyncio.wait_for(ws.recv(), 10)))
    assert closed.value.rcvd is not None, "the server sent no close frame"
    return closed.value.rcvd.code, closed.value.rcvd.reason, seen


async def still_served(limited: Limited, session_id: int, ws: ClientConnection) -> None:
    """``ws`` still gets the session's messages."""
    marker = f"u-{uuid.uuid4().hex[:6]}"
    await limited.http.post(f"/chat/{session_id}/typing", json={"user_id": marker, "is_typing": 1})
    while (update := await receive_type(ws, "typing_update", timeout=10))["user_id"] != marker:
        pass
    assert update["is_typing"] is True


async def test_an_oversized_frame_gets_a_typed_error_and_1009(limited: Limited) -> None:
    session_id = await limited.new_session()
    async with limited.ws(session_id) as bystander, limited.ws(session_id) as ws:
        await receive_type(bystander, "connected")
        await receive_type(ws, "connected")
        question = "x" * (MAX_FRAME + 10)
        await ws.send(json.dumps({"type": "chat_message", "question": question}))
        code, reason, seen = await closed_with(ws)
        assert code == 1009 and reason == "Message too big."
        error = next(m for m in seen if m["type"] == "error")["error"]
        assert error["error_code"] == "message_too_large"
        assert error["details"]["max_bytes"] == MAX_FRAME
        await still_served(limited, session_id, bystander)
    history = await limited.http.get(f"/chat/sessions/{session_id}/messages")
    assert history.json()["data"] == []


async def test_a_flood_is_rate_limited_then_closed_with_4429(limited: Limited) -> None:
    session_id = await limited.new_session()
    async with limited.ws(session_id) as bystander, limited.ws(session_id) as ws:
        await receive_type(bystander, "connected")
        await receive_type(ws, "connected")
        for _ in range(BURST):  # a burst is fine
            await ws.send('{"type": "ping"}')
        for _ in range(BURST):
            await receive_type(ws, "pong")
        await ws.send('{"type": "ping"}')
        refused = (await receive_type(ws, "error"))["error"]
        assert refused["error_code"] == "rate_limited"
        assert 0 < refused["details"]["retry_after_seconds"] <= 1 / RATE

        # Waiting a moment earns a token again.
        await asyncio.sleep(1.2 / RATE)
        await ws.send('{"type": "ping"}')
        await receive_type(ws, "pong")

        # Going on regardless: more than BURST refusals in a row end the connection.
        for _ in range(BURST + 5):
            await ws.send('{"type": "ping"}')
        code, reason, seen = await closed_with(ws)
        assert code == 4429 and "Rate limited" in reason
        errors = [m["error"]["error_code"] for m in seen if m["type"] == "error"]
        assert errors and set(errors) == {"rate_limited"}
        await still_served(limited, session_id, bystander)


async def test_invalid_utf8_text_closes_with_1007_and_others_stay(limited: Limited) -> None:
    session_id = await limited.new_session()
    async with limited.ws(session_id) as bystander, limited.ws(session_id) as ws:
        await receive_type(bystander, "connected")
        await receive_type(ws, "connected")
        await ws.send(b'{"type": "ping", "x": "\xff\xfe"}', text=True)
        code, _, _ = await closed_with(ws)
        assert code == 1007
        await still_served(limited, session_id, bystander)
    await until(lambda: limited.chat.connections.count(session_id) == 0)


async def test_an_over_long_question_is_refused_over_the_socket_and_rest(limited: Limited) -> None:
    session_id = await limited.new_session()
    question = "Why? " * (MAX_QUESTION // 4)
    async with limited.ws(session_id) as ws:
        await receive_type(ws, "connected")
        await ws.send(json.dumps({"type": "chat_message", "question": question}))
        error = (await receive_type(ws, "error"))["error"]
        assert error["error_code"] == "question_too_long"
        assert error["details"]["max_chars"] == MAX_QUESTION
        # The socket stays open and a short question is answered.
        await ws.send(json.dumps({"type": "chat_message", "question": "Why?"}))
        assert (await receive_answer(ws))[-1]["type"] == "complete"
    rest = await limited.http.post(f"/chat/{session_id}/ask", json={"question": question})
    assert rest.status_code == 422
    assert rest.json()["error"]["error_code"] == "question_too_long"


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
async def test_a_request_body_over_the_cap_is_refused_with_413(
    limited: Limited, chunked: bool
) -> None:
    session_id = await limited.new_session()
    body = json.dumps({"question": "x" * (MAX_BODY * 4)}).encode()

    async def pieces() -> AsyncIterator[bytes]:
        for start in range(0, len(body), 1024):
            yield body[start : start + 1024]

    response = await limited.http.post(
        f"/chat/{session_id}/ask",
        content=pieces() if chunked else body,
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 413, response.text
    assert response.json()["error"]["error_code"] == "request_too_large"
    history = await limited.http.get(f"/chat/sessions/{session_id}/messages")
    assert history.json()["data"] == []


async def test_connection_caps_answer_1013_and_free_up(limited: Limited) -> None:
    first, second = await limited.new_session(), await limited.new_session()
    async with (
        limited.ws(first) as a,
        limited.ws(first) as b,
        limited.ws(first) as c,
    ):
        for ws in (a, b, c):
            await receive_type(ws, "connected")
        async with limited.ws(first) as extra:
            code, reason, _ = await closed_with(extra)
        assert code == 1013 and "try again later" in reason
        async with limited.ws(second) as d, limited.ws(second) as e:
            for ws in (d, e):
                await receive_type(ws, "connected")
            async with limited.ws(second) as over_total:
                code, reason, _ = await closed_with(over_total)
            assert code == 1013 and "server" in reason
        await still_served(limited, first, a)
    await until(lambda: limited.chat.connections.count() == 0)
    async with limited.ws(first) as again:  # the slots are free again
        await receive_type(again, "connected")


async def test_a_client_that_never_reads_is_dropped_and_the_others_get_everything(
    limited: Limited,
) -> None:
    session_id = await limited.new_session()
    # max_queue=1: the client library stops reading the socket after one message, like a
    # stalled browser tab, so the server's writes back up into its bounded queue.
    # Without permessage-deflate, which would shrink the padding to nothing on the wire.
    async with (
        limited.ws(session_id, compression=None) as reader,
        limited.ws(session_id, compression=None, max_queue=1) as stalled,
    ):
        await receive_type(reader, "connected")
        await until(lambda: limited.chat.connections.count(session_id) == 2)
        big = {"type": "bulk", "padding": os.urandom(65_536).hex()}
        count = 200  # 26 MB: more than the socket buffers hold
        received = 0

        async def read_all() -> None:
            nonlocal received
            while received < count:
                if json.loads(await asyncio.wait_for(reader.recv(), 30))["type"] == "bulk":
                    received += 1

        reading = asyncio.create_task(read_all())
        for sent in range(count):
            # Paced by the reader, so only the stalled client falls behind.
            while sent - received >= QUEUE // 2:
                await asyncio.sleep(0.002)
            await limited.chat.connections.broadcast_to_session(session_id, big)
        await until(lambda: limited.chat.connections.count(session_id) == 1, within=20)
        await reading
        assert received == count, "the reading client got every message"
        # What reached the stalled client's socket before the drop ends with 4408 (or, if
        # the close frame could not be written, with the connection cut).
        with pytest.raises(ConnectionClosed) as closed:
            while True:
                await asyncio.wait_for(stalled.recv(), 10)
        assert closed.value.rcvd is None or closed.value.rcvd.code == 4408


async def test_ids_and_offsets_beyond_sql_integers_are_answered_not_crashed(
    limited: Limited,
) -> None:
    # Found by the fuzzer: these overflowed SQLite's 64-bit integers into a 500.
    huge = 2**70
    for path in (f"/chat/sessions/{huge}", f"/chat/sessions/{huge}/messages"):
        response = await limited.http.get(path)
        assert response.status_code == 404, response.text
        assert response.json()["error"]["error_code"] == "session_not_found"
    deleted = await limited.http.delete(f"/chat/sessions/{huge}")
    assert deleted.status_code == 404
    for path in (f"/docs?offset={huge}", f"/chat/sessions?offset={huge}"):
        response = await limited.http.get(path)
        assert response.status_code == 422, response.text
    async with limited.ws(huge) as ws:
        code, _, _ = await closed_with(ws)
    assert code == 4404
