"""``GET /health``: each component checked for real."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from fastapi import APIRouter, Response
from sqlalchemy import text

from api.deps import ServicesDep
from api.envelope import Envelope, ok
from api.schemas import ComponentHealth, Health

router = APIRouter(tags=["health"])


async def _check(probe: Callable[[], Awaitable[object]]) -> ComponentHealth:
    try:
        await asyncio.wait_for(probe(), timeout=5)
    except Exception as exc:  # a health check reports any failure rather than raising it
        return ComponentHealth(ok=False, detail=f"{type(exc).__name__}: {exc}")
    return ComponentHealth(ok=True)


@router.get("/health", response_model=Envelope[Health], summary="Health of each component")
async def health(services: ServicesDep, response: Response) -> Envelope[Health]:
    resources = services.resources

    def database() -> None:
        with resources.engine.connect() as connection:
            connection.execute(text("SELECT 1"))

    components = {
        "database": await _check(lambda: asyncio.to_thread(database)),
        "temporal": await _check(lambda: services.temporal.service_client.check_health()),
        "vector_store": await _check(lambda: asyncio.to_thread(resources.vectors.healthy)),
    }
    healthy = all(component.ok for component in components.values())
    if not healthy:
        response.status_code = 503
    settings = resources.settings
    return ok(
        Health(
            status="ok" if healthy else "degraded",
            components=components,
            settings={
                "temporal_address": settings.temporal_address,
                "task_queue": settings.temporal_task_queue,
                "database": "sqlite" if settings.sql_url.startswith("sqlite") else "external",
                "vector_store": "qdrant-server" if settings.qdrant_url else "qdrant-local",
                "embedded_worker": settings.embedded_worker,
            },
        )
    )
