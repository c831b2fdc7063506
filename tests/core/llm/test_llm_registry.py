"""Model registry built from Settings; server backends point at the fake server in conftest,
which stands in for Ollama and an OpenAI-compatible server since those cannot run here."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import pytest
import pytest_asyncio

from core.llm import ChatTurn, ModelRegistry, UnknownModelError
from core.llm.llama_cpp import LlamaCppChatModel
from core.settings import Settings

if TYPE_CHECKING:  # conftest is imported by pytest itself, never by name at run time
    from conftest import FakeServer


def settings(**overrides: Any) -> Settings:
    return Settings(_env_file=None, **overrides)  # type: ignore[call-arg]


@pytest_asyncio.fixture
async def registry(fake_server: FakeServer) -> AsyncIterator[ModelRegistry]:
    built = ModelRegistry.from_settings(
        settings(ollama_url=fake_server.url, openai_base_url=fake_server.openai_url)
    )
    yield built
    await built.aclose()


@pytest.mark.asyncio
async def test_only_the_embedded_model_by_default() -> None:
    registry = ModelRegistry.from_settings(settings())
    try:
        assert registry.names == ["smollm2"]
        assert isinstance(registry.get(None), LlamaCppChatModel)
        assert registry.get("smollm2") is registry.get(None)
    finally:
        await registry.aclose()


@pytest.mark.asyncio
async def test_server_backends_join_when_their_url_is_set(registry: ModelRegistry) -> None:
    assert registry.names == ["smollm2", "mistral", "gpt-4o-mini"]
    assert registry.get("mistral").backend == "ollama"
    assert registry.get("gpt-4o-mini").backend == "openai"


@pytest.mark.asyncio
async def test_unknown_model_is_a_typed_error(registry: ModelRegistry) -> None:
    with pytest.raises(UnknownModelError, match="no chat model named 'gpt-5'") as caught:
        registry.get("gpt-5")
    assert caught.value.status_code == 404
    assert caught.value.error_code == "unknown_model"
    assert caught.value.details["available_models"] == ["smollm2", "mistral", "gpt-4o-mini"]


@pytest.mark.asyncio
async def test_unconfigured_default_model_is_a_typed_error() -> None:
    registry = ModelRegistry.from_settings(settings(default_model="mistral"))
    try:
        with pytest.raises(UnknownModelError, match="DOCCHAT_DEFAULT_MODEL"):
            registry.get(None)
    finally:
        await registry.aclose()


def test_two_backends_with_one_name_are_refused() -> None:
    with pytest.raises(ValueError, match="both named 'smollm2'"):
        ModelRegistry([LlamaCppChatModel(), LlamaCppChatModel()], default_model="smollm2")


@pytest.mark.asyncio
async def test_list_models_reports_availability(
    registry: ModelRegistry, fake_server: FakeServer
) -> None:
    listed = await registry.list_models()
    assert [(m["name"], m["backend"], m["available"], m["default"]) for m in listed] == [
        ("smollm2", "llama_cpp", True, True),
        ("mistral", "ollama", True, False),
        ("gpt-4o-mini", "openai", True, False),
    ]
    assert all(m["description"] for m in listed)

    fake_server.models = []  # neither server has the model any more
    listed = await registry.list_models()
    assert [m["available"] for m in listed] == [True, False, False]


@pytest.mark.asyncio
async def test_list_models_with_servers_down(dead_url: str) -> None:
    registry = ModelRegistry.from_settings(
        settings(ollama_url=dead_url, openai_base_url=f"{dead_url}/v1")
    )
    try:
        assert [m["available"] for m in await registry.list_models()] == [True, False, False]
    finally:
        await registry.aclose()


@pytest.mark.asyncio
async def test_streams_through_a_registered_backend(
    registry: ModelRegistry, fake_server: FakeServer
) -> None:
    model = registry.get("mistral")
    pieces = [p async for p in model.stream([ChatTurn("user", "Hi")], max_tokens=8)]
    assert pieces == fake_server.pieces
    assert fake_server.requests[0]["body"]["model"] == "mistral"
