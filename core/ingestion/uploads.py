"""Receive a multipart document upload (any format core.ingestion.extraction reads) by
streaming it to disk, never holding it in memory.

The size cap is enforced while the bytes arrive, on the file and on the whole body alike, so an
oversized upload is refused before its whole body is read, and a refused upload leaves nothing
behind.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import shutil
import unicodedata
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from python_multipart.multipart import MultipartParser, parse_options_header

from core.errors import InvalidInputError, PayloadTooLargeError, UnsupportedMediaTypeError
from core.ingestion.extraction.detect import ACCEPTED, detect_format
from core.ingestion.faults import DocumentFault, FaultCode

FILE_FIELD = "file"
# Optional: the id of the document this upload is a new version of (docs/replace.md).
REPLACES_FIELD = "replaces"
MAX_REPLACES_BYTES = 128
# What a 415 lists in ``details.accepted``.
ACCEPTED_FORMATS = [name.strip() for name in ACCEPTED.split(",")]
# The whole body counts against the cap, not only the file part (a 2 GB junk field next to a
# small PDF must not stream to the end): the file may use the cap, its framing this much more.
MULTIPART_OVERHEAD_BYTES = 64 * 1024
_UNSAFE = re.compile(r"[\x00-\x1f\x7f/\\]+")


@dataclass(frozen=True)
class ReceivedFile:
    filename: str
    stored_name: str
    path: Path
    size_bytes: int
    sha256: str
    # The ``replaces`` form field: the document this file is a new version of.
    replaces: str | None = None


def display_filename(raw: str | None) -> str:
    """A filename safe to show: no path parts, control characters or leading dots."""
    name = unicodedata.normalize("NFC", raw or "")
    name = _UNSAFE.sub("_", name.replace("\\", "/").split("/")[-1]).strip().lstrip(".")
    return name[:255] or "document.pdf"


class _FilePart:
    """Collects one file part of the multipart body into a partial file on disk."""

    def __init__(self, directory: Path, max_bytes: int) -> None:
        self.stored_name = f"{uuid.uuid4().hex}.pdf"
        self.partial = directory / f"{self.stored_name}.partial"
        self.max_bytes = max_bytes
        self.size = 0
        self.head = b""
        self.digest = hashlib.sha256()
        self.handle: IO[bytes] = self.partial.open("wb")

    def write(self, data: bytes) -> None:
        self.size += len(data)
        if self.size > self.max_bytes:
            raise PayloadTooLargeError(
                f"The file is larger than the {self.max_bytes:,}-byte limit.",
                details={"max_bytes": self.max_bytes},
            )
        if len(self.head) < 1024:
            self.head += data[: 1024 - len(self.head)]
        self.digest.update(data)
        self.handle.write(data)

    def discard(self) -> None:
        self.handle.close()
        self.partial.unlink(missing_ok=True)


class _MultipartCollector:
    """python-multipart callbacks: the first ``file`` part goes to disk, others are dropped."""

    def __init__(self, directory: Path, max_bytes: int) -> None:
        self._directory = directory
        self._max_bytes = max_bytes
        self._headers: dict[bytes, bytes] = {}
        self._field = b""
        self._value = b""
        self._current: _FilePart | None = None
        self.part: _FilePart | None = None
        self.raw_filename = ""
        self.replaces: bytes | None = None
        self._in_replaces = False

    def callbacks(self) -> dict[str, object]:
        return {
            "on_header_field": self._on_header_field,
            "on_header_value": self._on_header_value,
            "on_header_end": self._on_header_end,
            "on_headers_finished": self._on_headers_finished,
            "on_part_data": self._on_part_data,
            "on_part_end": self._on_part_end,
        }

    def _on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._field += data[start:end]

    def _on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._value += data[start:end]

    def _on_header_end(self) -> None:
        self._headers[self._field.lower()] = self._value
        self._field = self._value = b""

    def _on_headers_finished(self) -> None:
        _, disposition = parse_options_header(self._headers.get(b"content-disposition", b""))
        self._headers = {}
        self._current = None
        self._in_replaces = disposition.get(b"name") == REPLACES_FIELD.encode()
        if self._in_replaces:
            self.replaces = b""
        if disposition.get(b"name") == FILE_FIELD.encode() and self.part is None:
            self.raw_filename = disposition.get(b"filename", b"").decode("utf-8", "replace")
            self.part = self._current = _FilePart(self._directory, self._max_bytes)

    def _on_part_data(self, data: bytes, start: int, end: int) -> None:
        if self._current is not None:
            self._current.write(data[start:end])
        elif self._in_replaces and self.replaces is not None:
            self.replaces += data[start:end]
            if len(self.replaces) > MAX_REPLACES_BYTES:
                raise InvalidInputError(
                    f"'{REPLACES_FIELD}' is a document id, not {len(self.replaces)}+ bytes.",
                    error_code="invalid_replaces",
                )

    def _on_part_end(self) -> None:
        self._current = None
        self._in_replaces = False


async def receive_pdf(
    chunks: AsyncIterator[bytes], content_type: str | None, *, directory: Path, max_bytes: int
) -> ReceivedFile:
    media, params = parse_options_header(content_type or "")
    boundary = params.get(b"boundary")
    if media != b"multipart/form-data" or not boundary:
        raise InvalidInputError(
            "Send the PDF as multipart/form-data in a field named 'file'.",
            error_code="missing_file",
        )
    directory.mkdir(parents=True, exist_ok=True)
    collector = _MultipartCollector(directory, max_bytes)
    parser = MultipartParser(boundary, callbacks=collector.callbacks())  # type: ignore[arg-type]
    body_cap = max_bytes + MULTIPART_OVERHEAD_BYTES
    received = 0
    try:
        async for chunk in chunks:
            received += len(chunk)
            if received > body_cap:
                raise PayloadTooLargeError(
                    f"The upload is larger than the {max_bytes:,}-byte limit "
                    "(every part of the multipart body counts).",
                    details={"max_bytes": max_bytes},
                )
            parser.write(chunk)
        parser.finalize()
        if collector.part is None:
            raise InvalidInputError(
                "No file was sent: use a multipart field named 'file'.", error_code="missing_file"
            )
        collector.part.handle.close()
        # Detection reads up to 64 KiB and may guess an encoding: off the event loop.
        await asyncio.to_thread(_check_format, collector.part)
    except BaseException as exc:
        if collector.part is not None:
            collector.part.discard()
        if isinstance(exc, InvalidInputError | PayloadTooLargeError | UnsupportedMediaTypeError):
            raise
        if isinstance(exc, Exception):
            raise InvalidInputError(
                f"The multipart body could not be read: {exc}", error_code="malformed_upload"
            ) from exc
        raise
    part = collector.part
    final = directory / part.stored_name
    part.partial.replace(final)
    return ReceivedFile(
        filename=display_filename(collector.raw_filename),
        stored_name=part.stored_name,
        path=final,
        size_bytes=part.size,
        sha256=part.digest.hexdigest(),
        replaces=(collector.replaces or b"").decode("utf-8", "replace").strip() or None,
    )


def _check_format(part: _FilePart) -> None:
    """Refuse at once what no extractor reads, told by the bytes (never the name or the
    claimed type). Other faults detection may see (an encrypted Office file, a damaged zip)
    are left to the workflow, which fails the task with their code, as for PDFs."""
    if part.size == 0:
        raise InvalidInputError("The file is empty (0 bytes).", error_code="empty_file")
    try:
        detect_format(part.partial)
    except DocumentFault as fault:
        if fault.code is FaultCode.UNSUPPORTED_FORMAT:
            raise UnsupportedMediaTypeError(
                fault.message,
                error_code="unsupported_format",
                details={"accepted": ACCEPTED_FORMATS},
            ) from fault


def store_local_copy(source: Path, directory: Path) -> ReceivedFile:
    """Copy a PDF already on disk into ``directory`` as an upload would have stored it."""
    stored_name = f"{uuid.uuid4().hex}.pdf"
    target = directory / stored_name
    directory.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, target)
    data = target.read_bytes()
    return ReceivedFile(
        filename=display_filename(source.name),
        stored_name=stored_name,
        path=target,
        size_bytes=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
    )
