"""Text out of every accepted format, as numbered units with readable locations.

``inspect_document`` tells the format (by content) and how many units the document has, up
front, so the workflow batches extraction by unit number as it does PDF pages;
``extract_units`` yields units ``first..last`` of it. Formats read page by page (PDF, PPTX,
TIFF) extract only the asked units; flowing formats (DOCX, ODT, HTML, Markdown, EPUB, text,
RTF, CSV, XLSX) are parsed whole once per process and sliced (see ``_whole_document``).
Every failure is a ``core.ingestion.faults.DocumentFault`` with its code. See docs/formats.md.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from core.ingestion.extraction import (
    epub,
    html,
    images,
    office,
    opendocument,
    pdf,
    pdf_pages,
    rtf,
    tables,
    text,
)
from core.ingestion.extraction.detect import ACCEPTED, IMAGES, Format, detect_format
from core.ingestion.extraction.units import (
    ExtractionLimits,
    OcrMode,
    Unit,
    no_text,
    text_too_large,
    too_many_units,
)
from core.texts import PageText

__all__ = [
    "ACCEPTED",
    "DocumentInfo",
    "ExtractionLimits",
    "Format",
    "Unit",
    "detect_format",
    "extract_units",
    "inspect_document",
    "require_text",
]

WholeExtractor = Callable[[Path, ExtractionLimits], list[Unit]]
_WHOLE: dict[Format, WholeExtractor] = {
    Format.DOCX: office.docx_units,
    Format.ODT: opendocument.odt_units,
    Format.XLSX: tables.xlsx_units,
    Format.CSV: tables.csv_units,
    Format.HTML: html.html_units,
    Format.MARKDOWN: text.markdown_units,
    Format.TEXT: text.text_units,
    Format.EPUB: epub.epub_units,
    Format.RTF: rtf.rtf_units,
}
UNIT_KINDS = {
    Format.PDF: "page",
    Format.PPTX: "slide",
    Format.XLSX: "row group",
    Format.CSV: "row group",
    Format.TEXT: "part",
    Format.RTF: "part",
    **dict.fromkeys(IMAGES, "page"),
}


@dataclass(frozen=True)
class DocumentInfo:
    format: Format
    unit_count: int

    @property
    def unit_kind(self) -> str:
        return UNIT_KINDS.get(self.format, "section")


def inspect_document(path: Path, limits: ExtractionLimits) -> DocumentInfo:
    found = detect_format(path)
    if found is Format.PDF:
        count = pdf_pages.page_count(path, limits)
        if limits.ocr == "force" and count > limits.ocr_max_pages:
            from core.ingestion.extraction.ocr import check_ocr_budget

            check_ocr_budget(count, limits)
    elif found is Format.PPTX:
        count = office.pptx_slide_count(path, limits)
    elif found in IMAGES:
        count = images.frame_count(path, limits)
    else:
        units = _whole_document(path, found, limits)
        if sum(len(unit.text) for unit in units) > limits.max_chars:
            raise text_too_large(limits.max_chars)
        count = len(units)
    info = DocumentInfo(format=found, unit_count=count)
    if count == 0:
        raise no_text(f"the document has no {info.unit_kind}s.")
    if count > limits.max_units:
        raise too_many_units(count, limits.max_units, info.unit_kind)
    return info


def extract_units(
    path: Path,
    first: int,
    last: int,
    limits: ExtractionLimits,
    *,
    ocr_pages_before: int = 0,
) -> Iterator[Unit]:
    """Units ``first..last`` (1-based, inclusive). ``limits.max_chars`` is what this call may
    still extract and ``ocr_pages_before`` how many pages earlier calls OCRed: callers that
    extract in batches pass what is left of the whole document's caps."""
    found = detect_format(path)
    if found is Format.PDF:
        units: Iterable[Unit] = pdf_pages.pdf_units(
            path, first, last, limits, ocr_pages_before=ocr_pages_before
        )
    elif found is Format.PPTX:
        units = office.pptx_units(path, first, last, limits)
    elif found in IMAGES:
        units = images.image_units(path, first, last, limits, ocr_pages_before=ocr_pages_before)
    else:
        units = _whole_document(path, found, limits)[first - 1 : last]
    spent = 0
    for unit in units:
        spent += len(unit.text)
        if spent > limits.max_chars:
            raise text_too_large(limits.max_chars)
        yield unit


def require_text(
    units: Iterable[Unit] | Iterable[PageText], found: Format, *, ocr: OcrMode = "auto"
) -> None:
    """Fail with ``no_extractable_text`` unless the document (all its units) has real text.

    Pages (PDF, scans) need core.ingestion.extraction.pdf.MIN_VISIBLE_CHARS distinct visible
    characters, as a
    scanner's label or OCR's stray marks on a blank page are no text; other formats any."""
    paged = found is Format.PDF or found in IMAGES
    if pdf.visible_chars(_as_pages(units)) >= (pdf.MIN_VISIBLE_CHARS if paged else 1):
        return
    what = "PDF" if found is Format.PDF else "image" if found in IMAGES else "document"
    if not paged:
        raise no_text(f"the {what} holds no readable text.")
    if ocr == "off":
        raise no_text(
            f"the {what} looks like scanned images without a text layer, and OCR is off "
            "(DOCCHAT_OCR=off)."
        )
    raise no_text(f"the {what} has no text layer, and OCR recognised no text on its pages.")


def _as_pages(units: Iterable[Unit] | Iterable[PageText]) -> Iterator[PageText]:
    for unit in units:
        yield unit if isinstance(unit, PageText) else PageText(unit.number, unit.text)


def _whole_document(path: Path, found: Format, limits: ExtractionLimits) -> list[Unit]:
    stat = path.stat()
    return _parsed(str(path), stat.st_mtime_ns, stat.st_size, found, limits)


# Batches of one document run one after another in the same extraction process: parse a
# flowing document once for all of them, not once per batch. Keyed by the file's identity
# on disk, so a replaced file is parsed again.
@lru_cache(maxsize=2)
def _parsed(
    path: str, mtime_ns: int, size: int, found: Format, limits: ExtractionLimits
) -> list[Unit]:
    return _WHOLE[found](Path(path), limits)
