"""Ollama backend against the fake Ollama server in conftest (Ollama cannot run here)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import httpx
import pytest
import pytest_asyncio

from core.llm import ChatTurn, GenerationError, ModelNotAvailableError, _http
from core.llm.ollama import OllamaChatModel

if TYPE_CHECKING:  # conftest is imported by pytest itself, never by name at run time
    from conftest import FakeServer

TURNS = [ChatTurn("system", "Be brief."), ChatTurn("user", "Say hello.")]


@pytest_asyncio.fixture
async def model(fake_server: FakeServer) -> AsyncIterator[OllamaChatModel]:
    backend = OllamaChatModel(base_url=fake_server.url, model="mistral")
    yield backend
    await backend.aclose()


async def collect(model: OllamaChatModel, max_tokens: int = 16) -> list[str]:
    return [piece async for piece in model.stream(TURNS, max_tokens=max_tokens)]


@pytest.mark.asyncio
async def test_streams_pieces_and_sends_the_chat_request(
    model: OllamaChatModel, fake_server: FakeServer
) -> None:
    assert await collect(model, max_tokens=7) == ["Hel", "lo", ", world", "!"]

    [request] = fake_server.requests
    assert request["path"] == "/api/chat"
    assert request["body"] == {
        "model": "mistral",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Say hello."},
        ],
        "stream": True,
        "options": {"num_predict": 7},
    }


@pytest.mark.asyncio
async def test_available_when_the_model_is_pulled(
    model: OllamaChatModel, fake_server: FakeServer
) -> None:
    assert await model.available()  # listed as "mistral:latest"
    fake_server.models = ["llama3"]
    assert not await model.available()


@pytest.mark.asyncio
async def test_server_down_is_not_available(dead_url: str) -> None:
    backend = OllamaChatModel(base_url=dead_url, model="mistral")
    try:
        assert not await backend.available()
        with pytest.raises(ModelNotAvailableError, match="Cannot reach Ollama") as caught:
            await collect(backend)
        assert caught.value.status_code == 503
        assert caught.value.error_code == "model_not_available"
        # Broadcast to a session's clients: the address is for the log only.
        host_port = dead_url.split("://", 1)[1]
        assert host_port not in caught.value.message
        assert "url" not in caught.value.details
    finally:
        await backend.aclose()


@pytest.mark.asyncio
async def test_server_error_status_is_a_generation_error(
    model: OllamaChatModel, fake_server: FakeServer
) -> None:
    fake_server.mode = "status_500"
    with pytest.raises(GenerationError, match="HTTP 500: out of memory") as caught:
        await collect(model)
    assert caught.value.status_code == 502
    assert caught.value.error_code == "llm_generation_failed"


@pytest.mark.asyncio
async def test_model_not_pulled_is_not_available(
    model: OllamaChatModel, fake_server: FakeServer
) -> None:
    fake_server.mode = "status_404"
    with pytest.raises(ModelNotAvailableError, match="model not found"):
        await collect(model)


@pytest.mark.parametrize(
    ("mode", "reason"),
    [
        ("error_midway", "the model runner crashed"),
        ("malformed", "not JSON"),
        ("drop", "broke off"),
        ("no_end", "without finishing"),
    ],
)
@pytest.mark.asyncio
async def test_failure_after_some_pieces_is_a_generation_error(
    model: OllamaChatModel, fake_server: FakeServer, mode: str, reason: str
) -> None:
    fake_server.mode = mode
    received: list[str] = []
    with pytest.raises(GenerationError, match=reason):
        async for piece in model.stream(TURNS, max_tokens=16):
            received.append(piece)
    assert received == fake_server.pieces  # what came before the failure was still streamed


@pytest.mark.asyncio
async def test_stalled_server_times_out(
    model: OllamaChatModel, fake_server: FakeServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_http, "STREAM_TIMEOUT", httpx.Timeout(0.3))
    fake_server.mode = "stall"
    with pytest.raises(GenerationError, match="stopped responding"):
        await collect(model)


@pytest.mark.asyncio
async def test_leaving_early_closes_the_stream(
    model: OllamaChatModel, fake_server: FakeServer
) -> None:
    fake_server.mode = "endless"
    stream = model.stream(TURNS, max_tokens=16)
    assert [await anext(stream), await anext(stream)] == ["tick ", "tick "]
    await stream.aclose()  # type: ignore[attr-defined]
    # The server notices the closed connection, which is what stops Ollama generating.
    assert fake_server.stream_abandoned.wait(timeout=5)
