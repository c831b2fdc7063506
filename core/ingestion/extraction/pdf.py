"""PDF inspection and text extraction with pypdf, turning its failures into document faults."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from pypdf import PdfReader
from pypdf.errors import FileNotDecryptedError, PdfReadError, PyPdfError

from core.ingestion.faults import DocumentFault, FaultCode
from core.texts import PageText

PDF_MAGIC = b"%PDF-"
# A text layer with fewer visible characters than this (after dropping text repeated on every
# page, such as a scanner's "Background" label) is treated as an image-only document.
MIN_VISIBLE_CHARS = 16

logging.getLogger("pypdf").setLevel(logging.ERROR)


@dataclass(frozen=True)
class PdfInfo:
    page_count: int


def looks_like_pdf(head: bytes) -> bool:
    # The spec lets the header start within the first 1024 bytes.
    return PDF_MAGIC in head[:1024]


def inspect_pdf(
    path: Path, *, max_pages: int, opener: Callable[[Path], PdfReader] | None = None
) -> PdfInfo:
    """Check that ``path`` is a readable PDF within the page cap. ``opener`` (default
    :func:`open_pdf`) lets a caller keep the reader for the extraction that follows."""
    if not path.exists():
        raise file_missing()
    size = path.stat().st_size
    if size == 0:
        raise DocumentFault(FaultCode.EMPTY_FILE, "The file is empty (0 bytes).")
    with path.open("rb") as handle:
        if not looks_like_pdf(handle.read(1024)):
            raise DocumentFault(FaultCode.NOT_A_PDF, "The file is not a PDF (no %PDF- header).")
    reader = (opener or open_pdf)(path)
    try:
        page_count = len(reader.pages)
    except (PyPdfError, ValueError, KeyError, TypeError) as exc:
        raise _corrupt(exc) from exc
    if page_count == 0:
        raise DocumentFault(FaultCode.CORRUPT_PDF, "The PDF has no pages.")
    if page_count > max_pages:
        raise DocumentFault(
            FaultCode.TOO_MANY_PAGES,
            f"The PDF has {page_count} pages; the limit is {max_pages}.",
        )
    return PdfInfo(page_count=page_count)


def extract_pages(
    source: Path | PdfReader, first_page: int, last_page: int, *, max_chars: int | None = None
) -> Iterator[PageText]:
    """Yield the text of pages ``first_page..last_page`` (1-based, inclusive) of ``source``, a
    path or a reader already opened with :func:`open_pdf`.

    With ``max_chars``, extraction stops with ``text_too_large`` as soon as the text extracted
    by this call passes it, in the middle of a page if need be: a PDF whose small compressed
    streams expand into huge text (a decompression bomb) never gets extracted whole. (pypdf
    itself refuses to inflate any one stream beyond 75 MB.)
    """
    reader = source if isinstance(source, PdfReader) else open_pdf(source)
    budget = _TextBudget(max_chars)
    for number in range(first_page, last_page + 1):
        try:
            text = reader.pages[number - 1].extract_text(visitor_text=budget.visit) or ""
        except _OverBudget:
            raise budget.fault(number) from None
        except (PyPdfError, ValueError, KeyError, TypeError, IndexError) as exc:
            raise _corrupt(exc, page=number) from exc
        page = PageText(page=number, text=text.replace("\x00", ""))
        budget.spend(len(page.text), number)
        yield page


class _OverBudget(Exception):
    pass


class _TextBudget:
    """Counts extracted characters; pypdf reports every piece of text to ``visit`` while it
    works through a page, so a page that holds too much is abandoned midway."""

    def __init__(self, max_chars: int | None) -> None:
        self.max_chars = max_chars
        self.spent = 0  # characters of the pages already yielded
        self._page = 0  # characters pypdf has reported for the page in progress

    def visit(self, text: str, *_: object) -> None:
        if self.max_chars is None:
            return
        self._page += len(text)
        if self.spent + self._page > self.max_chars:
            raise _OverBudget

    def spend(self, chars: int, page: int) -> None:
        self.spent += chars
        self._page = 0
        if self.max_chars is not None and self.spent > self.max_chars:
            raise self.fault(page)

    def fault(self, page: int) -> DocumentFault:
        return text_too_large(self.max_chars or 0, at_page=page)


def text_too_large(max_chars: int, *, at_page: int | None = None) -> DocumentFault:
    where = f" (passed at page {at_page}; extraction stopped there)" if at_page else ""
    return DocumentFault(
        FaultCode.TEXT_TOO_LARGE,
        f"The PDF holds more than {max_chars:,} characters of text, the limit{where}.",
    )


def file_missing() -> DocumentFault:
    return DocumentFault(FaultCode.FILE_MISSING, "The uploaded file is no longer on disk.")


def visible_chars(pages: Iterable[PageText]) -> int:
    distinct = {"".join(page.text.split()) for page in pages}
    return sum(len(text) for text in distinct)


def require_text(pages: Iterable[PageText]) -> None:
    if visible_chars(pages) < MIN_VISIBLE_CHARS:
        raise DocumentFault(
            FaultCode.NO_EXTRACTABLE_TEXT,
            "No text could be extracted: the PDF looks like scanned images without a text layer "
            "(OCR it first, then upload it again).",
        )


def open_pdf(path: Path) -> PdfReader:
    """Open ``path`` for reading, decrypting it with the empty password if it needs one."""
    try:
        reader = PdfReader(path)
    except FileNotDecryptedError as exc:
        raise _encrypted() from exc
    except (PyPdfError, ValueError, KeyError, TypeError, OSError) as exc:
        raise _corrupt(exc) from exc
    if reader.is_encrypted:
        # An empty user password still opens many "protected" PDFs; anything else cannot be read.
        try:
            if not reader.decrypt(""):
                raise _encrypted()
        except (FileNotDecryptedError, NotImplementedError, PdfReadError) as exc:
            raise _encrypted() from exc
    return reader


def _encrypted() -> DocumentFault:
    return DocumentFault(
        FaultCode.ENCRYPTED_PDF,
        "The PDF is password-protected; remove the password and upload it again.",
    )


def _corrupt(exc: Exception, *, page: int | None = None) -> DocumentFault:
    where = f" (page {page})" if page else ""
    return DocumentFault(
        FaultCode.CORRUPT_PDF,
        f"The PDF is damaged or truncated and cannot be read{where}: {exc}",
    )
