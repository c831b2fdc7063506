"""Task, document and principal ids on every log line, from context variables.

A log record factory (rather than a filter on one handler) stamps every record, whichever
logger or handler writes it; the ids follow the asyncio task and the activity that set them.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
from collections.abc import Iterator
from typing import Any

UNSET = "-"
task_id: contextvars.ContextVar[str] = contextvars.ContextVar("task_id", default=UNSET)
document_id: contextvars.ContextVar[str] = contextvars.ContextVar("document_id", default=UNSET)
principal: contextvars.ContextVar[str] = contextvars.ContextVar("principal", default=UNSET)

# For logging.basicConfig(format=...): the ids after the message.
LOG_FORMAT = (
    "%(asctime)s %(name)s %(message)s "
    "[task=%(task_id)s document=%(document_id)s principal=%(principal)s]"
)

_installed = False


def install() -> None:
    """Stamp every log record with the current ids (idempotent)."""
    global _installed
    if _installed:
        return
    previous = logging.getLogRecordFactory()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        record.task_id = task_id.get()
        record.document_id = document_id.get()
        record.principal = principal.get()
        return record

    logging.setLogRecordFactory(factory)
    _installed = True


@contextlib.contextmanager
def ids(
    *, task: str | None = None, document: str | None = None, owner: str | None = None
) -> Iterator[None]:
    """Set the given ids for the code inside; the others stay as they are."""
    tokens: list[tuple[contextvars.ContextVar[str], contextvars.Token[str]]] = []
    for var, value in ((task_id, task), (document_id, document), (principal, owner)):
        if value:
            tokens.append((var, var.set(value)))
    try:
        yield
    finally:
        for var, token in reversed(tokens):
            var.reset(token)
