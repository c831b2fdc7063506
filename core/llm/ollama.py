"""Ollama backend over its native streaming chat API (newline-delimited JSON objects)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import aclosing

import httpx

from core.llm import _http
from core.llm.base import ChatTurn, check_max_tokens, turns_as_messages
from core.llm.errors import GenerationError


class OllamaChatModel:
    """A model served by Ollama; ``name`` is the Ollama model name, e.g. ``mistral``."""

    backend = "ollama"

    def __init__(
        self, *, base_url: str, model: str, client: httpx.AsyncClient | None = None
    ) -> None:
        self.name = model
        self.description = f"{model} served by Ollama at {base_url}"
        self._base_url = base_url.rstrip("/")
        self._server = "Ollama"  # errors reach chat clients: no address in them
        self._http = _http.ClientHolder(client)

    async def available(self) -> bool:
        payload = await _http.get_json(self._http.client, f"{self._base_url}/api/tags")
        if not isinstance(payload, dict):
            return False
        names = {
            entry.get("name") for entry in payload.get("models", []) if isinstance(entry, dict)
        }
        # Ollama lists tagged names; "mistral" means "mistral:latest" to it.
        return self.name in names or (":" not in self.name and f"{self.name}:latest" in names)

    async def stream(self, turns: list[ChatTurn], *, max_tokens: int) -> AsyncIterator[str]:
        check_max_tokens(max_tokens)
        body = {
            "model": self.name,
            "messages": turns_as_messages(turns),
            "stream": True,
            "options": {"num_predict": max_tokens},
        }
        lines = _http.post_stream_lines(
            self._http.client,
            f"{self._base_url}/api/chat",
            body=body,
            server=self._server,
        )
        # aclosing: leaving early (done, error, client gone) closes the response at once,
        # which is what tells Ollama to stop generating.
        async with aclosing(lines):
            async for line in lines:
                chunk = _http.parse_json_object(line, server=self._server)
                reason = _http.error_message(chunk)
                if reason is not None:
                    raise GenerationError(f"{self._server} failed while answering: {reason}")
                message = chunk.get("message")
                piece = message.get("content") if isinstance(message, dict) else None
                if isinstance(piece, str) and piece:
                    yield piece
                if chunk.get("done") is True:
                    return
        raise GenerationError(f"{self._server} ended the answer without finishing it.")

    async def aclose(self) -> None:
        await self._http.aclose()
