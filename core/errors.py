"""One error hierarchy for the service: each error carries its code, HTTP status and details.

The API renders every ``AppError`` into the response envelope; WebSockets send the same shape
as a typed ``error`` message.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, Field


class AppError(Exception):
    """Base class: a clear, typed error a client can act on."""

    error_code: str = "internal_error"
    status_code: int = 500

    def __init__(
        self,
        message: str,
        *,
        error_code: str | None = None,
        status_code: int | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        if error_code is not None:
            self.error_code = error_code
        if status_code is not None:
            self.status_code = status_code
        self.details = details or {}


class NotFoundError(AppError):
    error_code = "not_found"
    status_code = 404


class ConflictError(AppError):
    error_code = "conflict"
    status_code = 409


class InvalidInputError(AppError):
    error_code = "invalid_input"
    status_code = 422


class PayloadTooLargeError(AppError):
    error_code = "file_too_large"
    status_code = 413


class UnsupportedMediaTypeError(AppError):
    error_code = "unsupported_media_type"
    status_code = 415


class ServiceUnavailableError(AppError):
    error_code = "service_unavailable"
    status_code = 503


class UnauthorizedError(AppError):
    error_code = "unauthorized"
    status_code = 401


class TooManyRequestsError(AppError):
    """429: come back later; ``details.retry_after_seconds`` becomes the Retry-After header."""

    status_code = 429


class ErrorDetail(BaseModel):
    """The ``error`` of the response envelope and of the WebSocket/SSE ``error`` message: one
    shape, built here for both (``api.envelope`` and ``core.chat.protocol.error_event``)."""

    error_code: str
    message: str
    details: dict[str, Any] = Field(default_factory=dict)
    timestamp: datetime = Field(default_factory=lambda: datetime.now(UTC))

    @classmethod
    def of(cls, exc: AppError) -> ErrorDetail:
        return cls(error_code=exc.error_code, message=exc.message, details=exc.details)
