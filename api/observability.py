"""Per-request latency metrics, as a plain ASGI middleware (outermost), and the settings of
FastAPI's native OpenTelemetry spans.

Requests are labelled by the route *template* the router matched (``/docs/processing/{task_id}
/status``), never the raw path: one series per route, whatever ids clients send. The request
spans are FastAPI's own (it continues a caller's ``traceparent``); the workflow a request
starts, and every activity of it, join that span's trace (core.temporal).
"""

from __future__ import annotations

import time
from typing import Any

from fastapi.telemetry import TelemetryConfig
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from core.observability.metrics import HTTP_REQUEST_SECONDS

UNMATCHED = "unmatched"  # 404s and the like: one series, not one per probed path


def fastapi_telemetry(*, tracing: bool) -> TelemetryConfig:
    """Request spans only when tracing is on; no per-dependency spans (one span a request is
    what a trace of an upload needs), and metrics stay Prometheus's (below)."""
    return {
        "tracing": tracing,
        "operation_spans": False,
        "metrics": False,
        "logs": False,
        "auto_configure": False,  # core.observability.tracing installs the exporter
    }


class RequestMetrics:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = [500]  # what a handler that never starts a response amounts to

        async def observed_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        started = time.perf_counter()
        try:
            await self.app(scope, receive, observed_send)
        finally:
            HTTP_REQUEST_SECONDS.labels(scope["method"], route_of(scope), str(status[0])).observe(
                time.perf_counter() - started
            )


def route_of(scope: Scope) -> str:
    route: Any = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) and path else UNMATCHED
