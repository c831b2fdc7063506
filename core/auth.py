"""API keys: which principal a key belongs to, compared in constant time.

Only SHA-256 digests of the keys are kept in memory (a key may also be configured as its digest,
``sha256:<hex>``). A presented key is hashed and compared with every configured digest with
``hmac.compare_digest``, so neither the comparison nor the search leaks how much of a key
matched. With no keys configured (local mode) every caller is the principal ``local``.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping

from core.errors import UnauthorizedError

LOCAL_PRINCIPAL = "local"
HASH_PREFIX = "sha256:"


def digest(key: str) -> bytes:
    return hashlib.sha256(key.encode("utf-8")).digest()


class Authenticator:
    def __init__(self, api_keys: Mapping[str, str]) -> None:
        self._digests: list[tuple[bytes, str]] = [
            (_configured_digest(key), principal) for key, principal in api_keys.items()
        ]

    @property
    def enabled(self) -> bool:
        return bool(self._digests)

    def principal_for(self, key: str | None) -> str:
        """The principal ``key`` belongs to; ``UnauthorizedError`` when it is missing or
        unknown (and keys are on)."""
        if not self.enabled:
            return LOCAL_PRINCIPAL
        if not key:
            raise UnauthorizedError(
                "An API key is required: send 'Authorization: Bearer <key>'.",
                error_code="unauthorized",
            )
        presented = digest(key)
        found: str | None = None
        for configured, principal in self._digests:  # no early exit: same time for every key
            if hmac.compare_digest(presented, configured):
                found = principal
        if found is None:
            raise UnauthorizedError("The API key is not valid.", error_code="unauthorized")
        return found


def _configured_digest(key: str) -> bytes:
    if key.startswith(HASH_PREFIX):
        return bytes.fromhex(key[len(HASH_PREFIX) :])
    return digest(key)
