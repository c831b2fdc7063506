"""Every docchat metric, in the default prometheus-client registry (docs/observability.md).

The API serves them at ``GET /metrics``; a worker on ``DOCCHAT_WORKER_METRICS_PORT``. Labels
stay few and bounded: route templates (never raw paths), step names, error codes.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

# Ingest steps take from milliseconds (validate) to many minutes (a 2,000-page extraction).
_STEP_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800)
_ANSWER_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 15, 30, 60, 120)

HTTP_REQUEST_SECONDS = Histogram(
    "docchat_http_request_duration_seconds",
    "HTTP request latency by route template, method and status code.",
    ("method", "route", "status"),
)
INGEST_STEP_SECONDS = Histogram(
    "docchat_ingest_step_duration_seconds",
    "Duration of one ingest activity attempt, by activity and outcome (ok or failed).",
    ("activity", "outcome"),
    buckets=_STEP_BUCKETS,
)
INGEST_RETRIES = Counter(
    "docchat_ingest_activity_retries_total",
    "Activity attempts after the first (a retry), by activity.",
    ("activity",),
)
INGEST_FAILURES = Counter(
    "docchat_ingest_activity_failures_total",
    "Failed activity attempts, by activity and error code (the application error type).",
    ("activity", "error_code"),
)
UPLOADS_REFUSED = Counter(
    "docchat_uploads_refused_total",
    "Uploads answered 429 because the principal's backlog is full.",
)
WEBSOCKET_CONNECTIONS = Gauge(
    "docchat_websocket_connections",
    "Open chat WebSocket connections on this API process.",
)
ANSWER_FIRST_CHUNK_SECONDS = Histogram(
    "docchat_answer_first_chunk_seconds",
    "From the question to the first streamed chunk of its answer.",
    buckets=_ANSWER_BUCKETS,
)
ANSWER_COMPLETE_SECONDS = Histogram(
    "docchat_answer_complete_seconds",
    "From the question to its complete answer.",
    buckets=_ANSWER_BUCKETS,
)
