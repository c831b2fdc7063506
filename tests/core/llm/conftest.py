"""A small real HTTP server that speaks Ollama's and OpenAI's streaming chat protocols.

It stands in for Ollama and an OpenAI-compatible server, which cannot run here (no model
weights can be downloaded). It is served by uvicorn on 127.0.0.1 in a background thread, so the
backends are exercised over real sockets, real chunked streaming and real disconnects.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from tests.helpers import free_port

# How the fake server answers a chat request; tests pick one per case.
MODES = {
    "ok",  # every piece, then the protocol's end marker
    "status_500",  # an HTTP 500 with an error body before any piece
    "status_404",  # Ollama's "model not found" / OpenAI's unknown model
    "status_401",  # a refused API key
    "error_midway",  # some pieces, then an error object in the stream
    "malformed",  # some pieces, then a line that is not JSON
    "not_sse",  # OpenAI only: some pieces, then a line that is not an SSE field
    "drop",  # some pieces, then the connection is cut
    "no_end",  # every piece, then the body ends without the end marker
    "stall",  # one piece, then silence
    "endless",  # pieces until the client goes away
}


@dataclass
class FakeServer:
    url: str = ""
    mode: str = "ok"
    pieces: list[str] = field(default_factory=lambda: ["Hel", "lo", ", world", "!"])
    models: list[str] = field(default_factory=lambda: ["mistral", "gpt-4o-mini"])
    requests: list[dict[str, Any]] = field(default_factory=list)
    # Set when a streamed answer stopped before its end (the client left).
    stream_abandoned: threading.Event = field(default_factory=threading.Event)

    def reset(self) -> None:
        self.mode = "ok"
        self.pieces = ["Hel", "lo", ", world", "!"]
        self.models = ["mistral", "gpt-4o-mini"]
        self.requests.clear()
        self.stream_abandoned.clear()

    @property
    def openai_url(self) -> str:
        return f"{self.url}/v1"


def _ollama_line(payload: dict[str, Any]) -> str:
    return json.dumps(payload) + "\n"


def _sse(payload: dict[str, Any] | str) -> str:
    data = payload if isinstance(payload, str) else json.dumps(payload)
    return f"data: {data}\n\n"


def _openai_chunk(content: str | None, finish_reason: str | None = None) -> dict[str, Any]:
    delta = {} if content is None else {"content": content}
    return {
        "object": "chat.completion.chunk",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
    }


def build_app(server: FakeServer) -> Starlette:
    async def record(request: Request) -> dict[str, Any]:
        body = await request.json()
        server.requests.append(
            {"path": request.url.path, "body": body, "headers": dict(request.headers)}
        )
        return body  # type: ignore[no-any-return]

    def error_response() -> Response | None:
        status = {"status_500": 500, "status_404": 404, "status_401": 401}.get(server.mode)
        if status is None:
            return None
        reason = {500: "out of memory", 404: "model not found", 401: "bad api key"}[status]
        # Ollama sends {"error": "..."}, OpenAI {"error": {"message": ...}}; both are handled.
        return JSONResponse({"error": {"message": reason}}, status_code=status)

    async def ollama_chat(request: Request) -> Response:
        body = await record(request)
        if (refusal := error_response()) is not None:
            return refusal

        async def lines() -> AsyncIterator[str]:
            def piece(text: str) -> str:
                message = {"role": "assistant", "content": text}
                return _ollama_line({"model": body["model"], "message": message, "done": False})

            async for text in _pieces(server):
                yield piece(text)
            async for line in _ending(server, ollama=True):
                yield line

        return StreamingResponse(lines(), media_type="application/x-ndjson")

    async def ollama_tags(request: Request) -> Response:
        return JSONResponse({"models": [{"name": f"{m}:latest"} for m in server.models]})

    async def openai_chat(request: Request) -> Response:
        await record(request)
        if (refusal := error_response()) is not None:
            return refusal

        async def events() -> AsyncIterator[str]:
            yield ": keep-alive comment, to be ignored\n\n"
            yield _sse(_openai_chunk(None))  # the role-only first chunk real servers send
            async for text in _pieces(server):
                yield _sse(_openai_chunk(text))
            async for line in _ending(server, ollama=False):
                yield line

        return StreamingResponse(events(), media_type="text/event-stream")

    async def openai_models(request: Request) -> Response:
        return JSONResponse({"object": "list", "data": [{"id": m} for m in server.models]})

    return Starlette(
        routes=[
            Route("/api/chat", ollama_chat, methods=["POST"]),
            Route("/api/tags", ollama_tags),
            Route("/v1/chat/completions", openai_chat, methods=["POST"]),
            Route("/v1/models", openai_models),
        ]
    )


async def _pieces(server: FakeServer) -> AsyncIterator[str]:
    """The answer's pieces for the current mode; records an early stop by the client."""
    finished = False
    try:
        if server.mode == "endless":
            while True:
                yield "tick "
                await asyncio.sleep(0.02)
        pieces = server.pieces[:1] if server.mode == "stall" else server.pieces
        for text in pieces:
            yield text
            await asyncio.sleep(0.01)  # separate chunks on the wire, as a real model sends
        finished = True
    finally:
        if not finished:
            server.stream_abandoned.set()


async def _ending(server: FakeServer, *, ollama: bool) -> AsyncIterator[str]:
    mode = server.mode
    if mode == "ok":
        yield (
            _ollama_line({"message": {"role": "assistant", "content": ""}, "done": True})
            if ollama
            else _sse(_openai_chunk(None, "stop")) + _sse("[DONE]")
        )
    elif mode == "error_midway":
        yield (
            _ollama_line({"error": "the model runner crashed"})
            if ollama
            else _sse({"error": {"message": "the model runner crashed"}})
        )
    elif mode == "malformed":
        yield "{not json\n" if ollama else "data: {not json\n\n"
    elif mode == "not_sse":
        yield "<html>proxy error</html>\n\n"
    elif mode == "drop":
        raise RuntimeError("fake server cuts the connection")
    elif mode == "stall":
        await asyncio.sleep(30)


@pytest.fixture(scope="module")
def _fake_server_process() -> Iterator[FakeServer]:
    server_state = FakeServer()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server_state.url = f"http://127.0.0.1:{port}"
    config = uvicorn.Config(
        build_app(server_state), log_level="critical", lifespan="off", timeout_graceful_shutdown=1
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the fake model server did not start")
        time.sleep(0.01)
    yield server_state
    server.should_exit = True
    thread.join(timeout=10)
    sock.close()


@pytest.fixture
def fake_server(_fake_server_process: FakeServer) -> FakeServer:
    """The running fake server, reset to answer normally."""
    _fake_server_process.reset()
    return _fake_server_process


@pytest.fixture
def dead_url() -> str:
    """A URL on which nothing listens, so connecting is refused."""
    return f"http://127.0.0.1:{free_port()}"
