"""What a failed call to the workflow service means to a client of cancel, retry and delete:
the workflow has already closed (409: nothing left to act on), or the service cannot be
reached (503 ``temporal_unavailable``: try again shortly) — never an unexpected 500."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from temporalio.service import RPCError, RPCStatusCode

from core.errors import ConflictError, ServiceUnavailableError

# NOT_FOUND: the execution completed (or never ran); FAILED_PRECONDITION: it is closing.
_CLOSED = frozenset({RPCStatusCode.NOT_FOUND, RPCStatusCode.FAILED_PRECONDITION})
RETRY_AFTER_SECONDS = 5


def workflow_closed(exc: RPCError) -> bool:
    return exc.status in _CLOSED


def unavailable(exc: RPCError) -> ServiceUnavailableError:
    return ServiceUnavailableError(
        "The workflow service is unavailable; nothing was changed. Try again shortly.",
        error_code="temporal_unavailable",
        details={"retry_after_seconds": RETRY_AFTER_SECONDS, "status": exc.status.name},
    )


@contextlib.contextmanager
def workflow_call(task_id: str, *, closed_code: str, closed_message: str) -> Iterator[None]:
    """Turns an ``RPCError`` of the calls inside into the typed error clients act on."""
    try:
        yield
    except RPCError as exc:
        if workflow_closed(exc):
            raise ConflictError(
                closed_message, error_code=closed_code, details={"task_id": task_id}
            ) from exc
        raise unavailable(exc) from exc
