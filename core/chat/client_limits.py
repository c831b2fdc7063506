"""Limits of one WebSocket client: frame size and a token-bucket message rate.

A frame over the size cap ends the connection (1009). A frame over the rate is refused with a
typed ``rate_limited`` error and not handled; a client that goes on sending while refused
(more than ``burst`` refused frames in a row) is disconnected with 4429.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from core.errors import AppError

CLOSE_MESSAGE_TOO_BIG = 1009  # RFC 6455
CLOSE_TRY_AGAIN_LATER = 1013  # RFC 6455 (IANA registry): a connection cap is reached
CLOSE_UNAUTHORIZED = 4401  # no valid API key
CLOSE_RATE_LIMITED = 4429  # kept sending while rate limited


class MessageTooLargeError(AppError):
    error_code = "message_too_large"
    status_code = 413


class RateLimitedError(AppError):
    error_code = "rate_limited"
    status_code = 429


class TooManyConnectionsError(AppError):
    error_code = "too_many_connections"
    status_code = 503


@dataclass
class TokenBucket:
    """``rate`` tokens a second, at most ``burst`` saved up; each message takes one."""

    rate: float
    burst: int
    clock: Callable[[], float] = time.monotonic
    tokens: float = field(init=False)
    updated: float = field(init=False)

    def __post_init__(self) -> None:
        self.tokens = float(self.burst)
        self.updated = self.clock()

    def take(self) -> bool:
        now = self.clock()
        self.tokens = min(float(self.burst), self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False

    def wait_seconds(self) -> float:
        """How long until the next message would be let through."""
        return max(0.0, (1.0 - self.tokens) / self.rate)


class FrameGate:
    """Checks each incoming frame of one connection against its size cap and its rate."""

    def __init__(self, *, max_bytes: int, rate: float, burst: int) -> None:
        self.max_bytes = max_bytes
        self.bucket = TokenBucket(rate, burst)
        self.refused_in_a_row = 0

    def check_size(self, size: int) -> None:
        if size > self.max_bytes:
            raise MessageTooLargeError(
                f"The message is {size:,} bytes; the limit is {self.max_bytes:,}.",
                details={"size_bytes": size, "max_bytes": self.max_bytes},
            )

    def admit(self) -> None:
        """Take a token, or raise ``RateLimitedError`` (the frame is not handled)."""
        if self.bucket.take():
            self.refused_in_a_row = 0
            return
        self.refused_in_a_row += 1
        wait = round(self.bucket.wait_seconds(), 3)
        raise RateLimitedError(
            f"Too many messages: at most {self.bucket.rate:g} a second "
            f"(bursts of {self.bucket.burst}); this one was not handled.",
            details={"retry_after_seconds": wait},
        )

    @property
    def persistently_over(self) -> bool:
        return self.refused_in_a_row > self.bucket.burst
