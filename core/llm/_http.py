"""HTTP plumbing shared by the server backends: the one place httpx failures become typed errors.

Connection failures and refusals mean the model is not available (503: retry later or pick
another model); a server that answers badly or breaks off mid-answer is a generation failure
(502). Nothing from httpx or ``json`` escapes to the caller. The messages name the server by
its kind only: they reach every client of a chat session, so the server's address and the
transport's own error text (host names, ports) go to the log instead.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncGenerator, Mapping
from typing import Any

import httpx

from core.llm.errors import GenerationError, ModelNotAvailableError

log = logging.getLogger("docchat.llm")

# Read is the gap between two streamed chunks: a CPU server loading a model before its first
# token can be slow, so it is generous; connecting to a live server is fast, so that is not.
STREAM_TIMEOUT = httpx.Timeout(connect=5.0, read=120.0, write=10.0, pool=10.0)
# Availability is shown in model lists, which should not hang on a dead server.
PROBE_TIMEOUT = httpx.Timeout(3.0)
# Enough of an error body to show the server's reason, not a whole HTML page.
_ERROR_BODY_CHARS = 300


async def post_stream_lines(
    client: httpx.AsyncClient,
    url: str,
    *,
    body: Mapping[str, Any],
    server: str,
    headers: Mapping[str, str] | None = None,
) -> AsyncGenerator[str, None]:
    """POST ``body`` as JSON and yield the non-empty lines of the streamed response."""
    try:
        async with client.stream(
            "POST", url, json=body, headers=headers, timeout=STREAM_TIMEOUT
        ) as response:
            if response.is_error:
                raise await _status_error(response, server)
            async for line in response.aiter_lines():
                if line.strip():
                    yield line
    except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
        log.warning("cannot reach %s at %s: %r", server, url, exc)
        raise ModelNotAvailableError(
            f"Cannot reach {server}: is it running? (The address is in the server log.)"
        ) from exc
    except httpx.TimeoutException as exc:
        log.warning("%s at %s stopped responding: %r", server, url, exc)
        raise GenerationError(f"{server} stopped responding in the middle of an answer.") from exc
    except httpx.HTTPError as exc:
        log.warning("the connection to %s at %s broke off: %r", server, url, exc)
        raise GenerationError(
            f"The connection to {server} broke off in the middle of an answer."
        ) from exc


async def get_json(
    client: httpx.AsyncClient, url: str, *, headers: Mapping[str, str] | None = None
) -> Any:
    """GET ``url`` and decode JSON; ``None`` on any failure, since callers only probe."""
    try:
        response = await client.get(url, headers=headers, timeout=PROBE_TIMEOUT)
        response.raise_for_status()
        return response.json()
    except (httpx.HTTPError, ValueError):
        return None


class ClientHolder:
    """Uses the shared client it is given, or lazily opens (and later closes) its own."""

    def __init__(self, client: httpx.AsyncClient | None) -> None:
        self._client = client
        self._owned = client is None

    @property
    def client(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient()
        return self._client

    async def aclose(self) -> None:
        if self._owned and self._client is not None:
            await self._client.aclose()
            self._client = None


def parse_json_object(text: str, *, server: str) -> dict[str, Any]:
    """Decode one streamed JSON object, raising ``GenerationError`` for anything else."""
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise GenerationError(
            f"{server} sent a line that is not JSON: {text[:_ERROR_BODY_CHARS]!r}."
        ) from exc
    if not isinstance(value, dict):
        raise GenerationError(f"{server} sent JSON that is not an object: {text[:100]!r}.")
    return value


def error_message(payload: Mapping[str, Any]) -> str | None:
    """The reason in an error payload: Ollama sends a string, OpenAI an object with a message."""
    error = payload.get("error")
    if error is None:
        return None
    if isinstance(error, Mapping):
        return str(error.get("message") or error)
    return str(error)


async def _status_error(
    response: httpx.Response, server: str
) -> ModelNotAvailableError | GenerationError:
    await response.aread()
    reason = _reason_from_body(response.text)
    status = response.status_code
    log.warning("%s at %s answered HTTP %s: %s", server, response.request.url, status, reason)
    details = {"status": status}
    if status in (401, 403):
        return ModelNotAvailableError(
            f"{server} refused the request (HTTP {status}); check the API key: {reason}",
            details=details,
        )
    if status == 404:
        return ModelNotAvailableError(
            f"{server} does not know this model or endpoint (HTTP 404): {reason}",
            details=details,
        )
    if status == 429:
        return ModelNotAvailableError(
            f"{server} is rate-limiting requests (HTTP 429); try again later: {reason}",
            details=details,
        )
    return GenerationError(f"{server} failed with HTTP {status}: {reason}", details=details)


def _reason_from_body(text: str) -> str:
    try:
        payload = json.loads(text)
    except ValueError:
        payload = None
    if isinstance(payload, dict):
        message = error_message(payload)
        if message:
            return message[:_ERROR_BODY_CHARS]
    return text.strip()[:_ERROR_BODY_CHARS] or "no reason given"
