"""OpenAI-compatible backend against the fake server in conftest (no real server runs here)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import pytest
import pytest_asyncio

from core.llm import ChatTurn, GenerationError, ModelNotAvailableError
from core.llm.openai_compat import OpenAICompatChatModel

if TYPE_CHECKING:  # conftest is imported by pytest itself, never by name at run time
    from conftest import FakeServer

TURNS = [ChatTurn("user", "Say hello."), ChatTurn("assistant", "Hi."), ChatTurn("user", "Again.")]


@pytest_asyncio.fixture
async def model(fake_server: FakeServer) -> AsyncIterator[OpenAICompatChatModel]:
    backend = OpenAICompatChatModel(
        base_url=fake_server.openai_url, model="gpt-4o-mini", api_key="sk-test"
    )
    yield backend
    await backend.aclose()


async def collect(model: OpenAICompatChatModel) -> list[str]:
    return [piece async for piece in model.stream(TURNS, max_tokens=16)]


@pytest.mark.asyncio
async def test_streams_pieces_and_sends_the_chat_request(
    model: OpenAICompatChatModel, fake_server: FakeServer
) -> None:
    assert await collect(model) == ["Hel", "lo", ", world", "!"]

    [request] = fake_server.requests
    assert request["path"] == "/v1/chat/completions"
    assert request["headers"]["authorization"] == "Bearer sk-test"
    assert request["body"] == {
        "model": "gpt-4o-mini",
        "messages": [
            {"role": "user", "content": "Say hello."},
            {"role": "assistant", "content": "Hi."},
            {"role": "user", "content": "Again."},
        ],
        "stream": True,
        "max_tokens": 16,
    }


@pytest.mark.asyncio
async def test_api_key_is_optional(fake_server: FakeServer) -> None:
    backend = OpenAICompatChatModel(base_url=fake_server.openai_url, model="gpt-4o-mini")
    try:
        assert await collect(backend) == fake_server.pieces
    finally:
        await backend.aclose()
    assert "authorization" not in fake_server.requests[0]["headers"]


@pytest.mark.asyncio
async def test_available_when_the_server_lists_the_model(
    model: OpenAICompatChatModel, fake_server: FakeServer
) -> None:
    assert await model.available()
    fake_server.models = ["some-other-model"]
    assert not await model.available()


@pytest.mark.asyncio
async def test_server_down_is_not_available(dead_url: str) -> None:
    backend = OpenAICompatChatModel(base_url=f"{dead_url}/v1", model="gpt-4o-mini")
    try:
        assert not await backend.available()
        with pytest.raises(ModelNotAvailableError, match="Cannot reach") as caught:
            await collect(backend)
        _assert_no_address(caught.value, dead_url)
    finally:
        await backend.aclose()


def _assert_no_address(error: Exception, url: str) -> None:
    """Errors are broadcast to a session's clients: the server's address is for the log."""
    host_port = url.split("://", 1)[1].split("/", 1)[0]
    shown = f"{error} {getattr(error, 'details', {})}"
    assert host_port not in shown and host_port.split(":")[0] not in shown, shown


@pytest.mark.parametrize(
    ("mode", "error", "reason"),
    [
        ("status_500", GenerationError, "HTTP 500: out of memory"),
        ("status_401", ModelNotAvailableError, "check the API key: bad api key"),
        ("status_404", ModelNotAvailableError, "model not found"),
    ],
)
@pytest.mark.asyncio
async def test_error_status_is_typed(
    model: OpenAICompatChatModel,
    fake_server: FakeServer,
    mode: str,
    error: type[Exception],
    reason: str,
) -> None:
    fake_server.mode = mode
    with pytest.raises(error, match=reason) as caught:
        await collect(model)
    _assert_no_address(caught.value, fake_server.openai_url)


@pytest.mark.parametrize(
    ("mode", "reason"),
    [
        ("error_midway", "the model runner crashed"),
        ("malformed", "not JSON"),
        ("not_sse", "not server-sent events"),
        ("drop", "broke off"),
        ("no_end", "without finishing"),
    ],
)
@pytest.mark.asyncio
async def test_failure_after_some_pieces_is_a_generation_error(
    model: OpenAICompatChatModel, fake_server: FakeServer, mode: str, reason: str
) -> None:
    fake_server.mode = mode
    received: list[str] = []
    with pytest.raises(GenerationError, match=reason) as caught:
        async for piece in model.stream(TURNS, max_tokens=16):
            received.append(piece)
    assert received == fake_server.pieces
    _assert_no_address(caught.value, fake_server.openai_url)


@pytest.mark.asyncio
async def test_leaving_early_closes_the_stream(
    model: OpenAICompatChatModel, fake_server: FakeServer
) -> None:
    fake_server.mode = "endless"
    stream = model.stream(TURNS, max_tokens=16)
    assert await anext(stream) == "tick "
    await stream.aclose()  # type: ignore[attr-defined]
    assert fake_server.stream_abandoned.wait(timeout=5)
