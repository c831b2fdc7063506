"""OpenTelemetry traces: off unless an OTLP endpoint is configured (or tracing is switched on
for a test's own tracer provider).

One trace runs from the HTTP request (api.observability's middleware) through the workflow to
each activity: Temporal's ``TracingInterceptor`` on the client carries the span context in the
workflow and activity headers, the supported way that keeps workflows deterministic.
"""

from __future__ import annotations

import logging
import os

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from core.settings import Settings

log = logging.getLogger(__name__)
TRACER_NAME = "docchat"
OTEL_ENDPOINT_VARIABLES = ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")

_configured = False


def tracing_enabled(settings: Settings) -> bool:
    return settings.tracing or otlp_endpoint(settings) is not None


def otlp_endpoint(settings: Settings) -> str | None:
    """The traces URL: ``DOCCHAT_OTLP_ENDPOINT`` (a collector's base URL) or the standard
    OpenTelemetry variables (read by the exporter itself)."""
    if settings.otlp_endpoint:
        base = settings.otlp_endpoint.rstrip("/")
        return base if base.endswith("/v1/traces") else f"{base}/v1/traces"
    for name in OTEL_ENDPOINT_VARIABLES:
        if os.environ.get(name):
            return os.environ[name]
    return None


def configure_tracing(settings: Settings, *, service_name: str) -> None:
    """With an endpoint, install a tracer provider exporting over OTLP/HTTP (once a process).
    Without one, a provider someone else installed (a test's in-memory one) is used as is."""
    global _configured
    endpoint = otlp_endpoint(settings)
    if endpoint is None or _configured:
        return
    # Imported here: the exporter (and its protobuf modules) load only where traces go out.
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    provider = TracerProvider(resource=Resource.create({"service.name": service_name}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint)))
    trace.set_tracer_provider(provider)
    _configured = True
    log.info("exporting traces to %s", endpoint)


def tracer() -> trace.Tracer:
    return trace.get_tracer(TRACER_NAME)
