"""Streaming multipart reception: limits hold while bytes arrive and refusals leave nothing."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from core.errors import InvalidInputError, PayloadTooLargeError, UnsupportedMediaTypeError
from core.ingestion.uploads import display_filename, receive_pdf

BOUNDARY = "docchatboundary"
CONTENT_TYPE = f"multipart/form-data; boundary={BOUNDARY}"


def multipart(content: bytes, *, field: str = "file", filename: str = "a.pdf") -> bytes:
    return (
        (
            f"--{BOUNDARY}\r\n"
            f'Content-Disposition: form-data; name="{field}"; filename="{filename}"\r\n'
            "Content-Type: application/pdf\r\n\r\n"
        ).encode()
        + content
        + f"\r\n--{BOUNDARY}--\r\n".encode()
    )


class Body:
    """An upload arriving in pieces, counting how much of it the server pulled."""

    def __init__(self, data: bytes, piece: int = 1024) -> None:
        self.pieces = [data[i : i + piece] for i in range(0, len(data), piece)]
        self.pulled = 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for piece in self.pieces:
            self.pulled += 1
            yield piece


async def test_real_pdf_is_stored_with_its_hash(corpus: Path, tmp_path: Path) -> None:
    content = (corpus / "minimal-document.pdf").read_bytes()
    received = await receive_pdf(
        aiter(Body(multipart(content, filename="../../x\x07y.pdf"))),
        CONTENT_TYPE,
        directory=tmp_path,
        max_bytes=10_000_000,
    )
    assert received.path.read_bytes() == content
    assert received.size_bytes == len(content)
    assert received.filename == "x_y.pdf"
    assert received.path.parent == tmp_path and received.path.name == received.stored_name
    assert [p.name for p in tmp_path.iterdir()] == [received.stored_name]


async def test_size_cap_stops_reading_early_and_leaves_nothing(tmp_path: Path) -> None:
    body = Body(multipart(b"%PDF-1.7\n" + b"0" * 200_000))
    with pytest.raises(PayloadTooLargeError) as refused:
        await receive_pdf(aiter(body), CONTENT_TYPE, directory=tmp_path, max_bytes=10_000)
    assert refused.value.status_code == 413
    assert body.pulled < len(body.pieces) // 4, "the rest of the body must not be read"
    assert list(tmp_path.iterdir()) == []


async def test_every_part_of_the_body_counts_against_the_cap(tmp_path: Path) -> None:
    # curl -F junk=@big -F file=@small.pdf: the junk part is not stored, but it is counted.
    junk = multipart(b"0" * 500_000, field="junk", filename="big.bin").removesuffix(
        f"--{BOUNDARY}--\r\n".encode()
    )
    body = Body(junk + multipart(b"%PDF-1.7\n small"), piece=4096)
    with pytest.raises(PayloadTooLargeError) as refused:
        await receive_pdf(aiter(body), CONTENT_TYPE, directory=tmp_path, max_bytes=10_000)
    assert refused.value.error_code == "file_too_large"
    assert body.pulled < len(body.pieces) // 2, "the rest of the body must not be read"
    assert list(tmp_path.iterdir()) == []


async def test_small_parts_next_to_the_file_are_still_accepted(
    corpus: Path, tmp_path: Path
) -> None:
    content = (corpus / "minimal-document.pdf").read_bytes()
    note = multipart(b"a short note", field="note", filename="").removesuffix(
        f"--{BOUNDARY}--\r\n".encode()
    )
    received = await receive_pdf(
        aiter(Body(note + multipart(content))),
        CONTENT_TYPE,
        directory=tmp_path,
        max_bytes=len(content),  # the file itself may use the whole cap
    )
    assert received.path.read_bytes() == content


@pytest.mark.parametrize(
    ("payload", "error", "code"),
    [
        (multipart(b"GIF89a\x00\x01 not a pdf"), UnsupportedMediaTypeError, "unsupported_format"),
        (multipart(b""), InvalidInputError, "empty_file"),
        (multipart(b"%PDF-1.4", field="other"), InvalidInputError, "missing_file"),
        (b"--docchatboundary\r\ngarbage", InvalidInputError, "missing_file"),
    ],
)
async def test_bad_bodies_are_typed_and_leave_nothing(
    tmp_path: Path, payload: bytes, error: type[Exception], code: str
) -> None:
    with pytest.raises(error) as refused:
        await receive_pdf(aiter(Body(payload)), CONTENT_TYPE, directory=tmp_path, max_bytes=10**6)
    assert getattr(refused.value, "error_code", None) == code
    assert list(tmp_path.iterdir()) == []


async def test_non_multipart_request_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError) as refused:
        await receive_pdf(
            aiter(Body(b"%PDF-1.4")), "application/pdf", directory=tmp_path, max_bytes=100
        )
    assert refused.value.error_code == "missing_file"


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("report.pdf", "report.pdf"),
        ("../../etc/passwd", "passwd"),
        ("C:\\Users\\me\\doc.pdf", "doc.pdf"),
        ("..", "document.pdf"),
        ("a\x00b\nc.pdf", "a_b_c.pdf"),
        ("", "document.pdf"),
        (None, "document.pdf"),
    ],
)
def test_display_filename_is_safe(raw: str | None, shown: str) -> None:
    assert display_filename(raw) == shown
