"""Keys never reach the access log: ``?token=<key>`` (still accepted from old clients on
WebSocket and SSE URLs) is printed as ``token=[redacted]`` in uvicorn's access lines."""

from __future__ import annotations

import logging
import re

ACCESS_LOGGER = "uvicorn.access"
_TOKEN = re.compile(r"(?i)([?&]token=)[^&#\s]*")


def redact_tokens(text: str) -> str:
    return _TOKEN.sub(r"\1[redacted]", text)


class RedactTokens(logging.Filter):
    """Rewrites the path of uvicorn's access records (their arguments are
    ``client, method, path, http_version, status``), and any message text."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(
                redact_tokens(arg) if isinstance(arg, str) else arg for arg in record.args
            )
        if isinstance(record.msg, str):
            record.msg = redact_tokens(record.msg)
        return True


def install_redaction() -> None:
    """Once per process, however many apps are created."""
    logger = logging.getLogger(ACCESS_LOGGER)
    if not any(isinstance(existing, RedactTokens) for existing in logger.filters):
        logger.addFilter(RedactTokens())
