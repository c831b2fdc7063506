"""Dependencies as aliases, so routes read like sentences."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from starlette.requests import HTTPConnection

from api.services import Services
from core.auth import Authenticator
from core.chat.ask_limits import AskLimiter
from core.chat.service import ChatService
from core.errors import UnauthorizedError
from core.ingestion.service import IngestionService
from core.settings import Settings

# Browsers cannot set headers on a WebSocket: they offer ["docchat", "bearer.<key>"] as
# subprotocols, and the server answers with "docchat".
WS_SUBPROTOCOL = "docchat"
WS_TOKEN_PREFIX = "bearer."
# Paging offsets stay within what SQL integers hold (a larger one would overflow SQLite).
MAX_OFFSET = 1_000_000_000


# Dependencies are ``async def`` although none awaits: FastAPI runs a plain ``def`` dependency
# in its thread pool, a thread hop per dependency per request that showed in status latency.


async def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


async def get_ingestion(services: Annotated[Services, Depends(get_services)]) -> IngestionService:
    return services.ingestion


async def get_settings_dep(services: Annotated[Services, Depends(get_services)]) -> Settings:
    return services.resources.settings


async def get_chat(connection: HTTPConnection) -> ChatService:
    # HTTPConnection, not Request: WebSocket routes depend on this too.
    services: Services = connection.app.state.services
    return services.chat


async def get_ask_limiter(request: Request) -> AskLimiter:
    limiter: AskLimiter = request.app.state.ask_limiter
    return limiter


def presented_key(connection: HTTPConnection) -> str | None:
    """The API key a client sent: ``Authorization: Bearer``; for WebSockets and EventSource
    (which cannot send headers) also ``?token=`` and, on WebSockets, a ``bearer.`` subprotocol."""
    scheme, _, credentials = connection.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and credentials.strip():
        return credentials.strip()
    websocket = connection.scope["type"] == "websocket"
    if websocket:
        for offered in _subprotocols(connection):
            if offered.startswith(WS_TOKEN_PREFIX):
                return offered[len(WS_TOKEN_PREFIX) :]
    if websocket or "text/event-stream" in connection.headers.get("accept", ""):
        return connection.query_params.get("token") or None
    return None


async def get_principal(connection: HTTPConnection) -> str:
    """The principal every resource of this request belongs to (``local`` without keys);
    401 ``unauthorized`` when keys are on and none valid was sent."""
    return _principal(connection)


def _principal(connection: HTTPConnection) -> str:
    authenticator: Authenticator = connection.app.state.authenticator
    return authenticator.principal_for(presented_key(connection))


@dataclass(frozen=True)
class SocketAuth:
    """A WebSocket's credentials, resolved before it is accepted: the route accepts it (with
    ``subprotocol``) and closes it with 4401 when ``principal`` is ``None``."""

    principal: str | None
    subprotocol: str | None
    error: str | None = None


async def get_socket_auth(connection: HTTPConnection) -> SocketAuth:
    subprotocol = WS_SUBPROTOCOL if WS_SUBPROTOCOL in _subprotocols(connection) else None
    try:
        return SocketAuth(_principal(connection), subprotocol)
    except UnauthorizedError as refused:
        return SocketAuth(None, subprotocol, refused.message)


def _subprotocols(connection: HTTPConnection) -> list[str]:
    offered: list[str] = connection.scope.get("subprotocols") or []
    return offered


ServicesDep = Annotated[Services, Depends(get_services)]
IngestionDep = Annotated[IngestionService, Depends(get_ingestion)]
SettingsDep = Annotated[Settings, Depends(get_settings_dep)]
PrincipalDep = Annotated[str, Depends(get_principal)]
SocketAuthDep = Annotated[SocketAuth, Depends(get_socket_auth)]
ChatDep = Annotated[ChatService, Depends(get_chat)]
AskLimiterDep = Annotated[AskLimiter, Depends(get_ask_limiter)]
