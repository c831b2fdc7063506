"""Backend for any OpenAI-compatible server (OpenAI, vLLM, llama.cpp server, LM Studio, ...).

Streams ``/chat/completions`` as server-sent events: ``data: {json}`` lines, ending
``data: [DONE]``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import aclosing
from typing import Any

import httpx

from core.llm import _http
from core.llm.base import ChatTurn, check_max_tokens, turns_as_messages
from core.llm.errors import GenerationError

_DONE = "[DONE]"
# An empty field name is an SSE comment (": keep-alive").
_IGNORED_SSE_FIELDS = frozenset({"", "event", "id", "retry"})


class OpenAICompatChatModel:
    """A model behind an OpenAI-style API; ``name`` is the model id sent to the server."""

    backend = "openai"

    def __init__(
        self,
        *,
        base_url: str,
        model: str,
        api_key: str | None = None,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        self.name = model
        self.description = f"{model} served by the OpenAI-compatible API at {base_url}"
        self._base_url = base_url.rstrip("/")
        self._server = "the OpenAI-compatible server"  # errors reach chat clients: no address
        self._headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._http = _http.ClientHolder(client)

    async def available(self) -> bool:
        payload = await _http.get_json(
            self._http.client, f"{self._base_url}/models", headers=self._headers
        )
        if not isinstance(payload, dict) or not isinstance(payload.get("data"), list):
            return False
        # Servers such as llama.cpp's list a file name as the id and would refuse "gpt-4o-mini";
        # only a listed id is sure to work.
        return any(isinstance(m, dict) and m.get("id") == self.name for m in payload["data"])

    async def stream(self, turns: list[ChatTurn], *, max_tokens: int) -> AsyncIterator[str]:
        check_max_tokens(max_tokens)
        body = {
            "model": self.name,
            "messages": turns_as_messages(turns),
            "stream": True,
            "max_tokens": max_tokens,
        }
        lines = _http.post_stream_lines(
            self._http.client,
            f"{self._base_url}/chat/completions",
            body=body,
            server=self._server,
            headers=self._headers,
        )
        finished = False
        async with aclosing(lines):
            async for line in lines:
                data = _sse_data(line, server=self._server)
                if data is None:
                    continue
                if data == _DONE:
                    return
                chunk = _http.parse_json_object(data, server=self._server)
                piece, finish_reason = self._delta(chunk)
                if piece:
                    yield piece
                finished = finished or finish_reason is not None
        # Some servers omit [DONE]; a finish_reason already said the answer was complete.
        if not finished:
            raise GenerationError(f"{self._server} ended the answer without finishing it.")

    def _delta(self, chunk: dict[str, Any]) -> tuple[str | None, str | None]:
        reason = _http.error_message(chunk)
        if reason is not None:
            raise GenerationError(f"{self._server} failed while answering: {reason}")
        choices = chunk.get("choices")
        if not isinstance(choices, list) or not choices:
            # Usage-only chunks carry no choices; they are not an error.
            return None, None
        choice = choices[0]
        if not isinstance(choice, dict):
            raise GenerationError(f"{self._server} sent a malformed chunk: {str(chunk)[:200]}")
        delta = choice.get("delta")
        content = delta.get("content") if isinstance(delta, dict) else None
        finish_reason = choice.get("finish_reason")
        return (
            content if isinstance(content, str) else None,
            finish_reason if isinstance(finish_reason, str) else None,
        )

    async def aclose(self) -> None:
        await self._http.aclose()


def _sse_data(line: str, *, server: str) -> str | None:
    """The payload of an SSE ``data:`` line; ``None`` for comments and other known fields."""
    field, _, value = line.partition(":")
    if field == "data":
        return value.strip()
    if field in _IGNORED_SSE_FIELDS:
        return None
    raise GenerationError(f"{server} sent a line that is not server-sent events: {line[:200]!r}.")
