"""The Temporal client: one per process, with the pydantic data converter on both sides.

With tracing on, the client carries Temporal's OpenTelemetry interceptor: workers built on it
get it too, so spans run from the start of a workflow through to each activity. With
``DOCCHAT_TEMPORAL_SDK_METRICS_PORT``, the SDK's own metrics are served there for Prometheus.
"""

from __future__ import annotations

import functools

from temporalio.client import Client, Interceptor
from temporalio.contrib.opentelemetry import TracingInterceptor
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig
from temporalio.service import TLSConfig

from core.observability.tracing import tracer, tracing_enabled
from core.settings import Settings


async def connect_temporal(settings: Settings) -> Client:
    tls: bool | TLSConfig = settings.temporal_tls or bool(settings.temporal_api_key)
    interceptors: list[Interceptor] = []
    if tracing_enabled(settings):
        interceptors.append(TracingInterceptor(tracer()))
    runtime = None
    if settings.temporal_sdk_metrics_port is not None:
        runtime = _metrics_runtime(settings.worker_metrics_host, settings.temporal_sdk_metrics_port)
    return await Client.connect(
        settings.temporal_address,
        namespace=settings.temporal_namespace,
        api_key=settings.temporal_api_key,
        tls=tls,
        data_converter=pydantic_data_converter,
        interceptors=interceptors,
        runtime=runtime,
    )


@functools.cache
def _metrics_runtime(host: str, port: int) -> Runtime:
    # One runtime per address: the SDK binds the port once, for every client of the process.
    prometheus = PrometheusConfig(bind_address=f"{host}:{port}", durations_as_seconds=True)
    return Runtime(telemetry=TelemetryConfig(metrics=prometheus))


# Fair shares (docs/observability.md): the server dispatches fairness keys round-robin only
# with these dynamic config values (Temporal server 1.29 and later; Temporal Cloud: turn
# fairness on in the namespace settings).
FAIRNESS_DYNAMIC_CONFIG = {"matching.enableFairness": "true", "matching.useNewMatcher": "true"}


def fairness_dev_server_args() -> list[str]:
    """``temporal server start-dev`` arguments that turn fairness on."""
    args: list[str] = []
    for key, value in FAIRNESS_DYNAMIC_CONFIG.items():
        args += ["--dynamic-config-value", f"{key}={value}"]
    return args
