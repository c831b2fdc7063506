"""Bounds on REST answers (``/ask`` and ``/ask/stream``) per principal, so that one caller
cannot drain a paid model or hold every generation slot: at most ``max_concurrent`` answers
at once, and a token bucket of ``rate`` answers a second in bursts of ``burst``. Beyond either
the request is refused with 429 ``rate_limited`` (``details.retry_after_seconds``, and the
``Retry-After`` header). The WebSocket has its own per-connection limits
(core/chat/client_limits.py).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from core.chat.client_limits import RateLimitedError, TokenBucket

# Answers stream for seconds: a caller at the concurrency cap should come back in about one.
_BUSY_RETRY_SECONDS = 1.0


@dataclass
class _Quota:
    bucket: TokenBucket
    running: int = 0


@dataclass
class AskLimiter:
    max_concurrent: int
    rate: float
    burst: int
    clock: Callable[[], float] = time.monotonic
    _quotas: dict[str, _Quota] = field(default_factory=dict)

    def acquire(self, principal: str) -> Callable[[], None]:
        """Take a slot and a token for one answer, or raise ``RateLimitedError``; returns the
        slot's release, which may be called more than once."""
        quota = self._quotas.get(principal)
        if quota is None:
            quota = self._quotas[principal] = _Quota(TokenBucket(self.rate, self.burst, self.clock))
        if quota.running >= self.max_concurrent:
            raise RateLimitedError(
                f"{quota.running} answers are already running for you (at most "
                f"{self.max_concurrent} at once); ask again when one has finished.",
                details={
                    "retry_after_seconds": _BUSY_RETRY_SECONDS,
                    "max_concurrent": self.max_concurrent,
                },
            )
        if not quota.bucket.take():
            raise RateLimitedError(
                f"Too many questions: at most {self.rate:g} a second (bursts of {self.burst}).",
                details={"retry_after_seconds": round(quota.bucket.wait_seconds(), 3)},
            )
        quota.running += 1
        released = False

        def release() -> None:
            nonlocal released
            if not released:
                released = True
                quota.running -= 1

        return release
