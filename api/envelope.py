"""The one response envelope.

``{success, data, error{error_code, message, details, timestamp}, metadata}``
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, Field

DataT = TypeVar("DataT")


def _now() -> datetime:
    return datetime.now(UTC)


class ErrorDetail(BaseModel):
    error_code: str
    message: str
    details: dict[str, Any] = Field(default_factory=dict)
    timestamp: datetime = Field(default_factory=_now)


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
