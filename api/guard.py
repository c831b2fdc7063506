"""Who may talk to the API from a browser: the ``Host`` it is reached by and the ``Origin`` of
the page that calls it, checked before any route runs (HTTP and WebSocket alike).

* **DNS rebinding.** A page on ``evil.example`` whose name is made to resolve to 127.0.0.1
  reaches a local API with ``Host: evil.example``. Without API keys only loopback host names
  (``localhost``, ``127.0.0.1``, ``[::1]``, any port) and ``DOCCHAT_ALLOWED_HOSTS`` are
  answered; the rest get 403 ``host_not_allowed``.
* **Cross-site requests.** Browsers send ``Origin`` with every WebSocket handshake, every
  ``fetch``/``EventSource`` to another origin and every form POST (which needs no CORS
  preflight: a cross-site multipart upload would just happen). A request whose ``Origin`` is
  neither the API's own (same host and port), nor a loopback page of a loopback API on the
  same port, nor in ``DOCCHAT_CORS_ORIGINS`` is refused with 403 ``origin_not_allowed``; a
  WebSocket is accepted and closed at once with 4403, so the page sees why. Requests without
  ``Origin`` (curl, the CLI, other servers) are not browsers' and pass.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from urllib.parse import urlsplit

from starlette.types import ASGIApp, Receive, Scope, Send

from api.errors import error_response

CLOSE_FORBIDDEN = 4403  # the Host or Origin of a WebSocket handshake is not allowed

LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})
_DEFAULT_PORTS = {"http": 80, "ws": 80, "https": 443, "wss": 443}


@dataclass(frozen=True)
class Authority:
    """A host name (lowercase, IPv6 without brackets) and a port, ``None`` when not given."""

    host: str
    port: int | None

    @classmethod
    def parse(cls, value: str) -> Authority | None:
        try:
            parts = urlsplit(f"//{value.strip()}")
            host, port = parts.hostname, parts.port
        except ValueError:
            return None
        return cls(host, port) if host else None

    @property
    def loopback(self) -> bool:
        return self.host in LOOPBACK_NAMES


class Refusal(Exception):
    def __init__(self, error_code: str, message: str, reason: str) -> None:
        super().__init__(message)
        self.error_code = error_code
        self.message = message
        self.reason = reason  # a close reason must fit in 123 bytes


class BrowserGuard:
    def __init__(
        self,
        app: ASGIApp,
        *,
        allowed_hosts: Collection[str],
        loopback_only: bool,
        allowed_origins: Collection[str],
    ) -> None:
        self.app = app
        hosts = [Authority.parse(entry) for entry in allowed_hosts if entry.strip() != "*"]
        self._any_host = "*" in allowed_hosts or (not loopback_only and not allowed_hosts)
        self._hosts = [host for host in hosts if host is not None]
        self._any_origin = "*" in allowed_origins
        self._origins = frozenset(origin.rstrip("/").lower() for origin in allowed_origins)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        try:
            self._check(scope)
        except Refusal as refused:
            await self._refuse(scope, receive, send, refused)
            return
        await self.app(scope, receive, send)

    def _check(self, scope: Scope) -> None:
        headers = _headers(scope)
        raw_host = headers.get("host")
        host = Authority.parse(raw_host) if raw_host is not None else None
        if raw_host is not None and not self._host_allowed(host):
            raise Refusal(
                "host_not_allowed",
                f"This API does not answer to the host name {raw_host[:100]!r}: without API "
                "keys only loopback names are served (set DOCCHAT_ALLOWED_HOSTS to add one).",
                "This host name is not allowed (DOCCHAT_ALLOWED_HOSTS).",
            )
        origin = headers.get("origin")
        if origin is not None and not self._origin_allowed(origin, host, scope["scheme"]):
            raise Refusal(
                "origin_not_allowed",
                f"Requests from pages on {origin[:100]!r} are not allowed: list the origin in "
                "DOCCHAT_CORS_ORIGINS to allow it.",
                "Pages from this origin are not allowed (DOCCHAT_CORS_ORIGINS).",
            )

    def _host_allowed(self, host: Authority | None) -> bool:
        if host is None:
            return False
        if self._any_host or host.loopback:
            return True
        return any(
            host.host == allowed.host and allowed.port in (None, host.port)
            for allowed in self._hosts
        )

    def _origin_allowed(self, origin: str, host: Authority | None, scheme: str) -> bool:
        if self._any_origin or origin.rstrip("/").lower() in self._origins:
            return True
        try:
            parts = urlsplit(origin)
            page = Authority(parts.hostname or "", parts.port or _DEFAULT_PORTS.get(parts.scheme))
        except ValueError:
            return False
        if host is None or not page.host or page.port is None:
            return False  # "null" (a file or a sandboxed frame) and the like
        if host.port is None:
            # Behind a proxy that ends TLS, the page is https://name while the API sees http:
            # with no port in the Host, either default port is the API's own.
            same_port = page.port in (80, 443)
        else:
            same_port = page.port == host.port
        if not same_port:
            return False
        # The page at http://127.0.0.1:8000 may open ws://localhost:8000/chat/1/ws.
        return page.host == host.host or (page.loopback and host.loopback)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send, refused: Refusal) -> None:
        if scope["type"] == "websocket":
            # Accepted, then closed: before the handshake completes, a browser sees no reason.
            if (await receive())["type"] == "websocket.connect":
                await send({"type": "websocket.accept"})
                await send(
                    {"type": "websocket.close", "code": CLOSE_FORBIDDEN, "reason": refused.reason}
                )
            return
        response = error_response(403, refused.error_code, refused.message)
        await response(scope, receive, send)


def _headers(scope: Scope) -> dict[str, str]:
    return {name.decode("latin-1"): value.decode("latin-1") for name, value in scope["headers"]}
