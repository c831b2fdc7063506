"""A worker interceptor: every ingest activity attempt is timed and counted, and its log lines
carry the task, document and principal it works for.

Only activities are intercepted: the workflow code and its history stay exactly as they were.
"""

from __future__ import annotations

import contextvars
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

from temporalio import activity
from temporalio.exceptions import ApplicationError
from temporalio.worker import (
    ActivityInboundInterceptor,
    ExecuteActivityInput,
    Interceptor,
)

from core.observability import log_context
from core.observability.metrics import INGEST_FAILURES, INGEST_RETRIES, INGEST_STEP_SECONDS

T = TypeVar("T")


class ActivityMetricsInterceptor(Interceptor):
    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _TimedActivity(next)


class _TimedActivity(ActivityInboundInterceptor):
    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        info = activity.info()
        name = info.activity_type
        if info.attempt > 1:
            INGEST_RETRIES.labels(name).inc()
        job = input.args[0] if input.args else None
        # The workflow's fairness key is the principal (core.ingestion.service): no lookup needed.
        owner = info.priority.fairness_key if info.priority else None
        started = time.perf_counter()
        with log_context.ids(
            task=getattr(job, "task_id", None),
            document=getattr(job, "document_id", None),
            owner=owner,
        ):
            try:
                result = await super().execute_activity(input)
            except BaseException as exc:
                INGEST_STEP_SECONDS.labels(name, "failed").observe(time.perf_counter() - started)
                INGEST_FAILURES.labels(name, error_code_of(exc)).inc()
                raise
        INGEST_STEP_SECONDS.labels(name, "ok").observe(time.perf_counter() - started)
        return result


def error_code_of(exc: BaseException) -> str:
    """The typed fault code of a permanent failure; the exception class otherwise."""
    if isinstance(exc, ApplicationError) and exc.type:
        return exc.type
    return type(exc).__name__


class ContextThreadPoolExecutor(ThreadPoolExecutor):
    """Runs each call in a copy of the submitting context: activities running in threads keep
    the log ids and the trace span set around them (a plain executor drops contextvars)."""

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Future[T]:
        context = contextvars.copy_context()
        return super().submit(context.run, fn, *args, **kwargs)
