"""PDF pages: the text layer through core.ingestion.extraction.pdf (pypdf), and OCR for the
pages that have none.

A page is OCRed when ``DOCCHAT_OCR=force``, or under ``auto`` when its text layer holds
fewer than core.ingestion.extraction.pdf.MIN_VISIBLE_CHARS visible characters (a scan, a
scanner's lone
"Background" label). Such pages are rendered with pypdfium2 (PDFium, the renderer of
Chromium, shipped inside its wheel) at DOCCHAT_OCR_DPI, never above the pixel cap.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pypdf import PdfReader

from core.ingestion.extraction import ocr, pdf
from core.ingestion.extraction.units import ExtractionLimits, Unit, corrupt

# Open readers of the documents being worked on, by (path, size, mtime): each short extract
# call (core.ingestion.offload.extract_some) goes on where the last one stopped without parsing the
# PDF's structure again.
_READERS_KEPT = 2
_readers: OrderedDict[tuple[str, int, int], PdfReader] = OrderedDict()


def open_reader(path: Path) -> PdfReader:
    try:
        stat = path.stat()
    except FileNotFoundError:  # removed between two calls: the document was deleted
        raise pdf.file_missing() from None
    key = (str(path), stat.st_size, stat.st_mtime_ns)
    if key in _readers:
        _readers.move_to_end(key)
        return _readers[key]
    reader = pdf.open_pdf(path)
    _readers[key] = reader
    while len(_readers) > _READERS_KEPT:
        _readers.popitem(last=False)
    return reader


def page_count(path: Path, limits: ExtractionLimits) -> int:
    return pdf.inspect_pdf(path, max_pages=limits.max_units, opener=open_reader).page_count


def needs_ocr(text: str, limits: ExtractionLimits) -> bool:
    if limits.ocr == "off":
        return False
    return limits.ocr == "force" or len("".join(text.split())) < pdf.MIN_VISIBLE_CHARS


def pdf_units(
    path: Path, first: int, last: int, limits: ExtractionLimits, *, ocr_pages_before: int = 0
) -> Iterator[Unit]:
    renderer: Any = None
    recognised = 0
    try:
        for page in pdf.extract_pages(open_reader(path), first, last, max_chars=limits.max_chars):
            if not needs_ocr(page.text, limits):
                yield Unit(number=page.page, text=page.text, label=f"page {page.page}")
                continue
            recognised += 1
            ocr.check_ocr_budget(ocr_pages_before + recognised, limits)
            if renderer is None:
                renderer = _open(path)
            image = render(renderer, page.page, limits)
            text = ocr.recognise(image, limits, where=f"page {page.page}")
            # Nothing recognised (a photo, a blank page): the little text layer is all there is.
            yield Unit(
                number=page.page, text=text or page.text, label=f"page {page.page}", ocr=True
            )
    finally:
        if renderer is not None:
            renderer.close()


def _open(path: Path) -> Any:
    import pypdfium2

    try:
        # core.ingestion.extraction.pdf has already refused a PDF that an empty password does
        # not open.
        return pypdfium2.PdfDocument(str(path), password="")
    except pypdfium2.PdfiumError as exc:
        raise corrupt("PDF", exc) from exc


def render(document: Any, number: int, limits: ExtractionLimits) -> Any:
    import pypdfium2

    try:
        page = document[number - 1]
        width, height = page.get_size()  # points, 1/72 inch
        scale = limits.ocr_dpi / 72
        # A page the size of a wall would render to gigapixels: shrink to the pixel cap.
        area = max(width * height, 1.0)
        scale = min(scale, math.sqrt(limits.max_image_pixels / area))
        return page.render(scale=scale, grayscale=True).to_pil()
    except pypdfium2.PdfiumError as exc:
        raise corrupt("PDF", f"page {number} cannot be rendered: {exc}") from exc
