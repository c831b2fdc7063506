"""Per-request latency metrics and trace spans, as a plain ASGI middleware (outermost).

Requests are labelled by the route *template* the router matched (``/docs/processing/{task_id}
/status``), never the raw path: one series per route, whatever ids clients send. With tracing
on, each request is a server span (continuing a caller's ``traceparent``) that the workflow it
starts and every activity of it join.
"""

from __future__ import annotations

import time
from typing import Any

from opentelemetry import propagate
from opentelemetry.trace import SpanKind, Status, StatusCode
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from core.observability.metrics import HTTP_REQUEST_SECONDS
from core.observability.tracing import tracer

UNMATCHED = "unmatched"  # 404s and the like: one series, not one per probed path


class RequestObservability:
    def __init__(self, app: ASGIApp, *, tracing: bool) -> None:
        self.app = app
        self.tracing = tracing

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        method: str = scope["method"]
        status = [500]  # what a handler that never starts a response amounts to

        async def observed_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        started = time.perf_counter()
        if not self.tracing:
            try:
                await self.app(scope, receive, observed_send)
            finally:
                HTTP_REQUEST_SECONDS.labels(method, route_of(scope), str(status[0])).observe(
                    time.perf_counter() - started
                )
            return
        parent = propagate.extract(_headers(scope))
        with tracer().start_as_current_span(
            f"{method} {scope['path']}", context=parent, kind=SpanKind.SERVER
        ) as span:
            try:
                await self.app(scope, receive, observed_send)
            finally:
                route = route_of(scope)
                HTTP_REQUEST_SECONDS.labels(method, route, str(status[0])).observe(
                    time.perf_counter() - started
                )
                span.update_name(f"{method} {route}")
                span.set_attribute("http.request.method", method)
                span.set_attribute("http.route", route)
                span.set_attribute("http.response.status_code", status[0])
                if status[0] >= 500:
                    span.set_status(Status(StatusCode.ERROR))


def route_of(scope: Scope) -> str:
    route: Any = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) and path else UNMATCHED


def _headers(scope: Scope) -> dict[str, str]:
    return {key.decode("latin-1"): value.decode("latin-1") for key, value in scope["headers"]}
