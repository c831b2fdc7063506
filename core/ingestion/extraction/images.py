"""Image uploads (PNG, JPEG, multi-page TIFF) read with Pillow and recognised by OCR, one
unit per frame ("page N"). The pixel count is checked from the header before any decoding,
so a decompression bomb (a tiny file declaring a gigapixel canvas) is refused unread."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from core.ingestion.extraction import ocr
from core.ingestion.extraction.units import ExtractionLimits, Unit, corrupt, no_text
from core.ingestion.faults import DocumentFault, FaultCode


def frame_count(path: Path, limits: ExtractionLimits) -> int:
    if limits.ocr == "off":
        raise no_text("the document is an image, and OCR is off (DOCCHAT_OCR=off).")
    with _open(path) as image:
        count = int(getattr(image, "n_frames", 1))
        check_pixels(image.size, limits, where="the image")
    return count


def image_units(
    path: Path, first: int, last: int, limits: ExtractionLimits, *, ocr_pages_before: int = 0
) -> Iterator[Unit]:
    with _open(path) as image:
        for number in range(first, last + 1):
            try:
                image.seek(number - 1)
            except EOFError as exc:
                raise corrupt("image", f"it has no frame {number}") from exc
            check_pixels(image.size, limits, where=f"frame {number}")
            ocr.check_ocr_budget(ocr_pages_before + number - first + 1, limits)
            try:
                image.load()
            except (OSError, ValueError, SyntaxError) as exc:
                raise corrupt("image", exc) from exc
            text = ocr.recognise(image, limits, where=f"page {number}")
            yield Unit(number=number, text=text, label=f"page {number}", ocr=True)


def check_pixels(size: tuple[int, int], limits: ExtractionLimits, *, where: str) -> None:
    pixels = size[0] * size[1]
    if pixels > limits.max_image_pixels:
        raise DocumentFault(
            FaultCode.DECOMPRESSION_BOMB,
            f"The document is refused unopened: {where} is {size[0]:,} × {size[1]:,} pixels, "
            f"more than the {limits.max_image_pixels:,} allowed.",
        )


def _open(path: Path) -> Image.Image:
    try:
        with warnings.catch_warnings():
            # Pillow warns (then fails) on huge canvases itself; check_pixels decides here.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            return Image.open(path)
    except Image.DecompressionBombError as exc:
        raise DocumentFault(
            FaultCode.DECOMPRESSION_BOMB, f"The document is refused unopened: {exc}"
        ) from exc
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise corrupt("image", exc) from exc
