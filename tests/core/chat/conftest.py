"""One real API server (uvicorn on 127.0.0.1) for the chat tests, with a real document in it.

It runs in the tests' own event loop, so httpx and ``websockets`` clients talk to it over real
sockets. The embedded worker ingests ``multicolumn.pdf`` (page 3 holds a table of EU countries
and capitals) through the real pipeline once; every test makes its own chat session.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import httpx
import pytest
import pytest_asyncio
import uvicorn
from fastapi import FastAPI
from temporalio.testing import WorkflowEnvironment
from websockets.asyncio.client import ClientConnection, connect

from api.app import create_app
from core.chat.service import ChatService
from core.llm import ModelRegistry
from core.llm.llama_cpp import LlamaCppChatModel
from core.llm.ollama import OllamaChatModel
from core.search.embeddings import Embedder
from tests.core.chat.fakes import (
    BrokenModel,
    CitingModel,
    EndlessModel,
    FailingModel,
    LoopingModel,
    SlowModel,
)
from tests.helpers import stack_settings, upload, wait_for_status

# Small enough for a 2-core machine, long enough to stream several pieces.
MAX_TOKENS = 24
TYPING_TTL = 1.0
DOCUMENT = "multicolumn.pdf"


@dataclass
class LiveServer:
    app: FastAPI
    http: httpx.AsyncClient
    ws_base: str
    document_id: str
    broken: BrokenModel
    endless: EndlessModel
    slow: SlowModel
    looping: LoopingModel
    citing: CitingModel

    @property
    def chat(self) -> ChatService:
        chat: ChatService = self.app.state.services.chat
        return chat

    async def new_session(self, title: str = "test") -> int:
        response = await self.http.post("/chat/sessions", json={"title": title})
        assert response.status_code == 201, response.text
        session_id: int = response.json()["data"]["id"]
        return session_id

    @contextlib.contextmanager
    def model_fallback(self, mode: Literal["default", "error"]) -> Iterator[None]:
        """Run with ``DOCCHAT_CHAT_MODEL_FALLBACK`` set to ``mode`` (read at every question)."""
        settings = self.chat.resources.settings
        before, settings.chat_model_fallback = settings.chat_model_fallback, mode
        try:
            yield
        finally:
            settings.chat_model_fallback = before

    def ws(self, session_id: int) -> Any:
        return connect(f"{self.ws_base}/chat/{session_id}/ws", open_timeout=5, close_timeout=2)


def _free_socket() -> socket.socket:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    return sock


@contextlib.asynccontextmanager
async def serve(app: FastAPI) -> AsyncIterator[str]:
    """Serve ``app`` (lifespan included) on a free port; yields ``host:port``."""
    sock = _free_socket()
    host, port = sock.getsockname()
    config = uvicorn.Config(
        app, log_level="warning", ws="websockets-sansio", timeout_graceful_shutdown=2
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        while not server.started:
            if task.done():
                task.result()
                raise RuntimeError("the API server stopped while starting")
            await asyncio.sleep(0.02)
        yield f"{host}:{port}"
    finally:
        server.should_exit = True
        await task
        sock.close()


@pytest_asyncio.fixture(scope="session")
async def live(
    tmp_path_factory: pytest.TempPathFactory,
    temporal_env: WorkflowEnvironment,
    embedder: Embedder,
    corpus: Path,
) -> AsyncIterator[LiveServer]:
    settings = stack_settings(
        tmp_path_factory.mktemp("chat") / "data",
        temporal_env,
        activity_max_attempts=2,
        llm_max_tokens=MAX_TOKENS,
        typing_ttl_seconds=TYPING_TTL,
        # One principal asks every question of this module's tests: the REST answer limits
        # (tests/core/chat/test_ask_limits.py tests them) must not ration them.
        ask_rate_limit_per_second=1000.0,
        ask_rate_limit_burst=1000,
        ask_max_concurrent=64,
    )
    broken, endless, slow = BrokenModel(), EndlessModel(), SlowModel()
    looping, citing = LoopingModel(), CitingModel()
    with socket.socket() as probe:  # a port nothing listens on: an Ollama that is down
        probe.bind(("127.0.0.1", 0))
        dead_url = f"http://127.0.0.1:{probe.getsockname()[1]}"
    models = ModelRegistry(
        [
            LlamaCppChatModel(),
            broken,
            endless,
            slow,
            FailingModel(),
            looping,
            citing,
            OllamaChatModel(base_url=dead_url, model="mistral"),
        ],
        default_model="smollm2",
    )
    app = create_app(settings, embedder=embedder, models=models)
    async with serve(app) as address:
        async with httpx.AsyncClient(base_url=f"http://{address}", timeout=120) as http:
            response = await upload(http, corpus / DOCUMENT)
            assert response.status_code == 202, response.text
            # Generous: on the shared 2-core machine other work can slow one ingestion a lot.
            final, _ = await wait_for_status(http, response.json()["task_id"], timeout=600)
            assert final["status"] == "completed", final
            yield LiveServer(
                app=app,
                http=http,
                ws_base=f"ws://{address}",
                document_id=response.json()["document_id"],
                broken=broken,
                endless=endless,
                slow=slow,
                looping=looping,
                citing=citing,
            )


async def receive(ws: ClientConnection, *, timeout: float = 60) -> dict[str, Any]:
    message: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), timeout))
    return message


async def receive_type(
    ws: ClientConnection, kind: str, *, timeout: float = 60, skip: tuple[str, ...] = ("ping",)
) -> dict[str, Any]:
    """The next message of type ``kind``, skipping only the types in ``skip``."""
    while True:
        message = await receive(ws, timeout=timeout)
        if message["type"] == kind:
            return message
        assert message["type"] in skip, f"expected {kind!r}, got {message}"


async def receive_answer(ws: ClientConnection, *, timeout: float = 120) -> list[dict[str, Any]]:
    """Every message up to and including the answer's ``complete`` or ``error``."""
    seen: list[dict[str, Any]] = []
    while True:
        message = await receive(ws, timeout=timeout)
        if message["type"] in {"ping", "typing_update"}:
            continue
        seen.append(message)
        if message["type"] in {"complete", "error"}:
            return seen


async def assert_silent(ws: ClientConnection, *, within: float) -> None:
    """Nothing but pings arrives for ``within`` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while (left := deadline - loop.time()) > 0:
        try:
            message = json.loads(await asyncio.wait_for(ws.recv(), left))
        except TimeoutError:
            return
        assert message["type"] == "ping", f"expected silence, got {message}"
