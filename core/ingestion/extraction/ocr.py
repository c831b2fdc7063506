"""Optical character recognition with Tesseract (Debian's tesseract-ocr and its language
data), one page image at a time, through pytesseract: a thin wrapper that runs the
``tesseract`` program, so a page that hangs is killed at its time cap and nothing is
downloaded at run time (no model hub; the language data are distribution files)."""

from __future__ import annotations

import os
from functools import lru_cache

import pytesseract
from PIL import Image

from core.ingestion.extraction.units import ExtractionLimits, no_text
from core.ingestion.faults import DocumentFault, FaultCode


@lru_cache(maxsize=1)
def installed_languages() -> frozenset[str]:
    """The language data Tesseract has; empty when Tesseract itself is missing."""
    try:
        return frozenset(pytesseract.get_languages(config=""))
    except (pytesseract.TesseractNotFoundError, pytesseract.TesseractError, OSError):
        return frozenset()


def languages(limits: ExtractionLimits) -> str:
    """The configured languages Tesseract has, as its ``-l`` argument. A missing language is
    left out rather than failing every scan; none at all means OCR cannot run here."""
    wanted = [name for name in limits.ocr_languages.split("+") if name]
    have = installed_languages()
    usable = [name for name in wanted if name in have]
    if not usable:
        raise no_text(
            "the document needs OCR, and Tesseract or its language data "
            f"({limits.ocr_languages}) is not installed on this worker."
        )
    return "+".join(usable)


def recognise(image: Image.Image, limits: ExtractionLimits, *, where: str) -> str:
    """The text Tesseract reads on one page image."""
    prepared = _flatten(image)
    # Tesseract's OpenMP threads fight the worker's other processes for the cores: one
    # thread reads a page about four times faster on a busy two-core machine (measured,
    # docs/formats.md). Set OMP_THREAD_LIMIT in the environment to choose otherwise.
    os.environ.setdefault("OMP_THREAD_LIMIT", "1")
    try:
        text = pytesseract.image_to_string(
            prepared, lang=languages(limits), timeout=limits.ocr_page_timeout_seconds
        )
    except RuntimeError as exc:
        # pytesseract reports its kill at the time cap as RuntimeError("... timeout").
        if "timeout" not in str(exc).lower():
            raise
        raise DocumentFault(
            FaultCode.OCR_LIMIT_EXCEEDED,
            f"Recognising the text of {where} took longer than "
            f"{limits.ocr_page_timeout_seconds:g} s, the per-page limit.",
        ) from exc
    return str(text).replace("\x0c", "").strip()


def _flatten(image: Image.Image) -> Image.Image:
    # Transparent pixels are black to Tesseract: put them on white paper first.
    if image.mode in ("RGBA", "LA", "P"):
        rgba = image.convert("RGBA")
        paper = Image.new("RGB", rgba.size, "white")
        paper.paste(rgba, mask=rgba.getchannel("A"))
        return paper
    if image.mode not in ("RGB", "L", "1"):
        return image.convert("RGB")
    return image


def check_ocr_budget(done: int, limits: ExtractionLimits) -> None:
    if done > limits.ocr_max_pages:
        raise DocumentFault(
            FaultCode.OCR_LIMIT_EXCEEDED,
            f"The document needs OCR on more than {limits.ocr_max_pages} pages, the limit "
            "(DOCCHAT_OCR_MAX_PAGES).",
        )
