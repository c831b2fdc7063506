"""``GET /health``: each component checked for real.

Anyone may ask (load balancers, ``docker compose``), but only callers with a valid API key or
on the same machine see why a component is down and where the services are: exception strings
name internal hosts and ports. Everyone else gets ok/degraded per component; the reasons are
logged either way.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter, Request, Response
from sqlalchemy import text

from api.deps import ServicesDep, presented_key
from api.envelope import Envelope, ok
from api.schemas import ComponentHealth, Health
from core.auth import Authenticator
from core.errors import UnauthorizedError
from core.runtime import Resources

log = logging.getLogger("docchat.health")

router = APIRouter(tags=["health"])


async def _check(name: str, probe: Callable[[], Awaitable[object]]) -> ComponentHealth:
    try:
        await asyncio.wait_for(probe(), timeout=5)
    except Exception as exc:  # a health check reports any failure rather than raising it
        detail = f"{type(exc).__name__}: {exc}"
        log.warning("health: %s is down: %s", name, detail)
        return ComponentHealth(ok=False, detail=detail)
    return ComponentHealth(ok=True)


async def _index_report(resources: Resources) -> dict[str, Any] | None:
    """Whether the settings still match the active index version, and what to do if not."""
    try:
        return await asyncio.wait_for(asyncio.to_thread(resources.versions.report), timeout=5)
    except Exception as exc:  # the vector store's own check above reports why it is down
        log.warning("health: index versions unreadable: %s", exc)
        return None


def may_see_details(request: Request) -> bool:
    """A caller on this machine, or one with a valid API key (when keys are on)."""
    client = request.client
    if client is not None and _is_loopback(client.host):
        return True
    authenticator: Authenticator = request.app.state.authenticator
    if not authenticator.enabled:
        return False  # keyless and not local: anyone at all
    try:
        authenticator.principal_for(presented_key(request))
    except UnauthorizedError:
        return False
    return True


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


@router.get("/health", response_model=Envelope[Health], summary="Health of each component")
async def health(services: ServicesDep, request: Request, response: Response) -> Envelope[Health]:
    resources = services.resources

    def database() -> None:
        with resources.engine.connect() as connection:
            connection.execute(text("SELECT 1"))

    components = {
        "database": await _check("database", lambda: asyncio.to_thread(database)),
        "temporal": await _check(
            "temporal", lambda: services.temporal.service_client.check_health()
        ),
        "vector_store": await _check(
            "vector_store", lambda: asyncio.to_thread(resources.vectors.healthy)
        ),
    }
    healthy = all(component.ok for component in components.values())
    if not healthy:
        response.status_code = 503
    status = "ok" if healthy else "degraded"
    if not may_see_details(request):
        bare = {name: ComponentHealth(ok=component.ok) for name, component in components.items()}
        return ok(Health(status=status, components=bare))
    settings = resources.settings
    return ok(
        Health(
            status=status,
            components=components,
            # Only asked of a store that answered: a down one is reported above already.
            index=await _index_report(resources) if components["vector_store"].ok else None,
            settings={
                "temporal_address": settings.temporal_address,
                "task_queue": settings.temporal_task_queue,
                "database": "sqlite" if settings.sql_url.startswith("sqlite") else "external",
                "vector_store": "qdrant-server" if settings.qdrant_url else "qdrant-local",
                "embedded_worker": settings.embedded_worker,
            },
        )
    )
