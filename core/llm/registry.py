"""The chat models this service offers, built once from ``Settings`` and looked up by name."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import httpx

from core.llm.base import ChatModel
from core.llm.errors import UnknownModelError
from core.llm.llama_cpp import LlamaCppChatModel
from core.llm.ollama import OllamaChatModel
from core.llm.openai_compat import OpenAICompatChatModel
from core.settings import Settings


class ModelRegistry:
    """Owns the backends (and their shared HTTP client); close it with ``aclose``."""

    def __init__(
        self,
        models: Sequence[ChatModel],
        *,
        default_model: str,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        self._models: dict[str, ChatModel] = {}
        for model in models:
            if model.name in self._models:
                raise ValueError(
                    f"Two chat backends are both named {model.name!r}; give the Ollama or "
                    "OpenAI-compatible model a different name in the settings."
                )
            self._models[model.name] = model
        self.default_model = default_model
        self._client = client

    @classmethod
    def from_settings(cls, settings: Settings) -> ModelRegistry:
        """The embedded model always; Ollama and OpenAI-compatible ones when a URL is set."""
        # One client for every server backend: connections are pooled, never opened per request.
        client = httpx.AsyncClient()
        models: list[ChatModel] = [LlamaCppChatModel()]
        if settings.ollama_url:
            models.append(
                OllamaChatModel(
                    base_url=settings.ollama_url,
                    model=settings.ollama_model,
                    client=client,
                )
            )
        if settings.openai_base_url:
            models.append(
                OpenAICompatChatModel(
                    base_url=settings.openai_base_url,
                    model=settings.openai_model,
                    api_key=settings.openai_api_key,
                    client=client,
                )
            )
        return cls(models, default_model=settings.default_model, client=client)

    @property
    def names(self) -> list[str]:
        return list(self._models)

    def get(self, name: str | None = None) -> ChatModel:
        """The model called ``name``, or the default one when ``name`` is ``None``."""
        wanted = self.default_model if name is None else name
        model = self._models.get(wanted)
        if model is None:
            hint = " (the configured default, DOCCHAT_DEFAULT_MODEL)" if name is None else ""
            raise UnknownModelError(
                f"There is no chat model named {wanted!r}{hint}; "
                f"choose one of: {', '.join(self._models)}.",
                details={"model": wanted, "available_models": self.names},
            )
        return model

    async def list_models(self) -> list[dict[str, Any]]:
        """Every model with its backend, description and whether it answers now."""
        models = list(self._models.values())
        # Probed together so one dead server costs one probe timeout, not one per backend.
        available = await asyncio.gather(*(model.available() for model in models))
        return [
            {
                "name": model.name,
                "backend": model.backend,
                "description": model.description,
                "available": is_available,
                "default": model.name == self.default_model,
            }
            for model, is_available in zip(models, available, strict=True)
        ]

    async def aclose(self) -> None:
        for model in self._models.values():
            await model.aclose()
        if self._client is not None:
            await self._client.aclose()
