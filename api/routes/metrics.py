"""``GET /metrics``: every docchat metric of this API process in the Prometheus text format.

The one route that answers no envelope: Prometheus reads only its own format (errors still
come as the envelope). Never rate-limited. Who may read it is ``DOCCHAT_METRICS_ACCESS``:
``open`` (default; keyless mode already answers loopback only), ``key`` (an API key, which
Prometheus sends with ``authorization: {credentials: ...}``), ``off``.
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest
from starlette.concurrency import run_in_threadpool

from api.deps import ServicesDep, presented_key
from api.envelope import error_responses
from core.auth import Authenticator
from core.errors import NotFoundError

router = APIRouter(tags=["health"])


@router.get(
    "/metrics",
    response_class=Response,
    summary="Prometheus metrics of this API process",
    responses={
        200: {"content": {CONTENT_TYPE_LATEST: {}}, "description": "Prometheus text"},
        **error_responses(404),
    },
)
async def metrics(services: ServicesDep, request: Request) -> Response:
    access = services.resources.settings.metrics_access
    if access == "off":
        raise NotFoundError("Metrics are switched off here.", error_code="metrics_off")
    if access == "key":
        authenticator: Authenticator = request.app.state.authenticator
        if authenticator.enabled:
            authenticator.principal_for(presented_key(request))  # 401 without a valid key
    # Collecting reads the queue from SQL: off the event loop.
    body = await run_in_threadpool(generate_latest, REGISTRY)
    return Response(content=body, media_type=CONTENT_TYPE_LATEST)
