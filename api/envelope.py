"""The one response envelope.

``{success, data, error{error_code, message, details, timestamp}, metadata}``
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, Field

from core.errors import ErrorDetail

DataT = TypeVar("DataT")


def _now() -> datetime:
    return datetime.now(UTC)


class Envelope(BaseModel, Generic[DataT]):
    success: bool = True
    data: DataT | None = None
    error: ErrorDetail | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)


def ok(data: DataT, **metadata: Any) -> Envelope[DataT]:
    return Envelope[DataT](success=True, data=data, metadata={"timestamp": _now(), **metadata})


def failure(error_code: str, message: str, details: dict[str, Any] | None = None) -> Envelope[None]:
    return Envelope[None](
        success=False,
        error=ErrorDetail(error_code=error_code, message=message, details=details or {}),
        metadata={"timestamp": _now()},
    )


class ErrorEnvelope(BaseModel):
    """The envelope of every error response, as the OpenAPI schema declares it."""

    success: bool = False
    data: None = None
    error: ErrorDetail
    metadata: dict[str, Any] = Field(default_factory=dict)


_ERROR_DESCRIPTIONS = {
    400: "`bad_request`: the body could not be read (e.g. not UTF-8)",
    401: "`unauthorized`: no valid API key",
    403: "`host_not_allowed` / `origin_not_allowed`: a Host or a browser page not allowed",
    404: "not found, or not this principal's",
    409: "the resource is in a state that does not allow this",
    413: "`request_too_large` / `file_too_large`",
    415: "`unsupported_format`: no format docchat reads (`details.accepted` lists them)",
    422: "the request is not valid (`validation_error` and more specific codes)",
    429: "`rate_limited`: too many requests; `Retry-After` says when to come back",
    500: "`internal_error`: an unexpected failure, logged on the server",
    502: "the chat model failed while answering",
    503: "a service it depends on is unavailable",
}


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """``responses=`` for a route: the error statuses it can answer, each with the envelope."""
    return {
        status: {"model": ErrorEnvelope, "description": _ERROR_DESCRIPTIONS[status]}
        for status in statuses
    }
