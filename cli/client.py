"""The API as the command line sees it: the envelope unwrapped, errors typed, SSE parsed."""

from __future__ import annotations

import contextlib
import json
import mimetypes
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx

DEFAULT_URL = "http://127.0.0.1:8000"
# Streams carry a keep-alive comment every 10-15 s, so a minute of silence means trouble.
TIMEOUT = httpx.Timeout(30.0, read=60.0)


class ApiError(Exception):
    """An enveloped error (or no answer at all): ``code: message``."""

    def __init__(self, code: str, message: str, *, status: int | None = None) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.status = status


class Api:
    def __init__(self, url: str, api_key: str | None) -> None:
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.url = url.rstrip("/")
        self._http = httpx.AsyncClient(base_url=self.url, headers=headers, timeout=TIMEOUT)

    async def __aenter__(self) -> Api:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._http.aclose()

    async def get(self, path: str, **params: Any) -> Any:
        return await self._call("GET", path, params=params or None)

    async def post(self, path: str, body: Any = None) -> Any:
        return await self._call("POST", path, json=body)

    async def upload(self, path: Path, content: bytes) -> dict[str, Any]:
        # The server tells the format by the bytes; the type is only what the name suggests.
        media = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        files = {"file": (path.name, content, media)}
        data: dict[str, Any] = await self._call("POST", "/docs/upload_file_async", files=files)
        return data

    async def replace(self, document_id: str, path: Path, content: bytes) -> dict[str, Any]:
        """A new version of ``document_id`` (``PUT /docs/{id}/file``)."""
        files = {"file": (path.name, content, "application/pdf")}
        data: dict[str, Any] = await self._call("PUT", f"/docs/{document_id}/file", files=files)
        return data

    @contextlib.asynccontextmanager
    async def stream(
        self, method: str, path: str, body: Any = None
    ) -> AsyncIterator[AsyncIterator[tuple[str, dict[str, Any]]]]:
        """Server-sent events as ``(event name, JSON data)``; refusals raise ``ApiError``."""
        headers = {"Accept": "text/event-stream"}
        try:
            async with self._http.stream(method, path, json=body, headers=headers) as response:
                if response.status_code != 200:
                    await response.aread()
                    raise _error_of(response)
                yield _events(response)
        except httpx.TransportError as exc:
            raise self._unreachable(exc) from exc

    async def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = await self._http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise self._unreachable(exc) from exc
        if not response.is_success:
            raise _error_of(response)
        return response.json()["data"]

    def _unreachable(self, exc: httpx.TransportError) -> ApiError:
        return ApiError("unreachable", f"cannot reach docchat at {self.url} ({exc!r})")


def _error_of(response: httpx.Response) -> ApiError:
    try:
        error = response.json()["error"]
        return ApiError(error["error_code"], error["message"], status=response.status_code)
    except (ValueError, KeyError, TypeError):
        return ApiError(f"http_{response.status_code}", response.text[:200] or "no details")


async def _events(response: httpx.Response) -> AsyncIterator[tuple[str, dict[str, Any]]]:
    name, data = "message", list[str]()
    async for line in response.aiter_lines():
        if not line:
            if data:
                yield name, json.loads("\n".join(data))
            name, data = "message", list[str]()
        elif line.startswith("event:"):
            name = line[6:].strip()
        elif line.startswith("data:"):
            data.append(line[5:].removeprefix(" "))
        # Anything else is a comment (a keep-alive) or a field nothing here needs.
