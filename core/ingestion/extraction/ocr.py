"""Optical character recognition with Tesseract (Debian's tesseract-ocr and its language
data), one page image at a time, through pytesseract: a thin wrapper that runs the
``tesseract`` program, so a page that hangs is killed at its time cap and nothing is
downloaded at run time (no model hub; the language data are distribution files).

A page is read once in Tesseract's horizontal layout with the configured horizontal
languages. Only when that reading is weak (low confidence, or almost no text) and a vertical
language (``jpn_vert``, ``chi_sim_vert``, ... : any configured ``*_vert`` data) is installed,
Tesseract's script detection (OSD, ``--psm 0``: a fraction of a reading's time) looks at the
page; unless it names a script other than Chinese, Japanese or Korean, the page is read again
as one vertical block (``--psm 5``). The vertical reading replaces the first only when it is
itself confident and more confident than the first. A normal horizontal page therefore costs
exactly one Tesseract run, as before, and a weak Latin one (a blurred scan) one run and OSD.
"""

from __future__ import annotations

import csv
import io
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache

import pytesseract
from PIL import Image

from core.ingestion.extraction.cjk import close_cjk_gaps
from core.ingestion.extraction.units import ExtractionLimits, no_text
from core.ingestion.faults import DocumentFault, FaultCode

VERTICAL_SUFFIX = "_vert"
# Tesseract's page segmentation modes: 3 is its default (automatic, horizontal lines);
# 5 reads the page as one uniform block of vertically aligned text (top to bottom, columns
# right to left), the layout of vertical Japanese and Chinese.
HORIZONTAL_PSM = 3
VERTICAL_PSM = 5
# Fewer recognised (non-space) characters than this is a weak reading whatever its
# confidence: the same floor as a PDF page's text layer that needs OCR (pdf.MIN_VISIBLE_CHARS).
FEW_CHARS = 16
# OSD's names of the scripts written vertically (Tesseract's osd data).
VERTICAL_SCRIPTS = frozenset({"Han", "Japanese", "Hiragana", "Katakana", "Hangul", "Korean"})


@dataclass(frozen=True)
class Reading:
    """One page as Tesseract read it: the text, the mean confidence (0-100) of its words
    weighted by their characters, how many readings it took, which layout won, and the
    script OSD saw (None: OSD did not run, or could not tell)."""

    text: str
    confidence: float
    passes: int = 1
    vertical: bool = False
    script: str | None = None


@lru_cache(maxsize=1)
def installed_languages() -> frozenset[str]:
    """The language data Tesseract has; empty when Tesseract itself is missing."""
    try:
        return frozenset(pytesseract.get_languages(config=""))
    except (pytesseract.TesseractNotFoundError, pytesseract.TesseractError, OSError):
        return frozenset()


def _usable(limits: ExtractionLimits, *, vertical: bool) -> list[str]:
    wanted = [name for name in limits.ocr_languages.split("+") if name]
    have = installed_languages()
    return [n for n in wanted if n in have and n.endswith(VERTICAL_SUFFIX) is vertical]


def languages(limits: ExtractionLimits) -> str:
    """The configured horizontal languages Tesseract has, as its ``-l`` argument ("" when
    only vertical ones are usable). A missing language is left out rather than failing every
    scan; none at all means OCR cannot run here."""
    usable = _usable(limits, vertical=False)
    if not usable and not _usable(limits, vertical=True):
        raise no_text(
            "the document needs OCR, and Tesseract or its language data "
            f"({limits.ocr_languages}) is not installed on this worker."
        )
    return "+".join(usable)


def vertical_languages(limits: ExtractionLimits) -> str:
    """The configured ``*_vert`` languages Tesseract has ("" when none): the second pass."""
    return "+".join(_usable(limits, vertical=True))


def recognise(image: Image.Image, limits: ExtractionLimits, *, where: str) -> str:
    """The text Tesseract reads on one page image."""
    return read_page(image, limits, where=where).text


def read_page(image: Image.Image, limits: ExtractionLimits, *, where: str) -> Reading:
    """The better of a horizontal reading and, only where that one is weak, a vertical one."""
    prepared = _flatten(image)
    # Tesseract's OpenMP threads fight the worker's other processes for the cores: one
    # thread reads a page about four times faster on a busy two-core machine (measured,
    # docs/formats.md). Set OMP_THREAD_LIMIT in the environment to choose otherwise.
    os.environ.setdefault("OMP_THREAD_LIMIT", "1")
    horizontal, vertical = languages(limits), vertical_languages(limits)
    deadline = time.monotonic() + limits.ocr_page_timeout_seconds
    if not horizontal:  # only vertical data configured: that is the one reading
        return _run(prepared, vertical, VERTICAL_PSM, deadline, limits, where=where)
    first = _run(prepared, horizontal, HORIZONTAL_PSM, deadline, limits, where=where)
    if not vertical or not _weak(first, limits):
        return first
    script = _script(prepared, deadline, limits, where=where)
    if script is not None and script not in VERTICAL_SCRIPTS:
        return Reading(first.text, first.confidence, script=script)
    second = _run(prepared, vertical, VERTICAL_PSM, deadline, limits, where=where)
    confident = second.confidence >= limits.ocr_vertical_retry_confidence
    if confident and second.confidence > first.confidence:
        return Reading(second.text, second.confidence, passes=2, vertical=True, script=script)
    return Reading(first.text, first.confidence, passes=2, script=script)


def _weak(reading: Reading, limits: ExtractionLimits) -> bool:
    chars = len("".join(reading.text.split()))
    return chars < FEW_CHARS or reading.confidence < limits.ocr_vertical_retry_confidence


def _script(
    image: Image.Image, deadline: float, limits: ExtractionLimits, *, where: str
) -> str | None:
    """The script Tesseract's OSD sees on the page; None without the osd data, or where OSD
    gives up (too few characters: then only the vertical reading can tell)."""
    if "osd" not in installed_languages():
        return None
    try:
        with _time_cap(deadline, limits, where=where) as left:
            # A copy has no file format: pytesseract then hands Tesseract a PNG without the
            # 72 dpi a JPEG may declare, at which OSD finds "too few characters" on a page.
            found = pytesseract.image_to_osd(
                image.copy(), config="--psm 0", output_type=pytesseract.Output.DICT, timeout=left
            )
    except pytesseract.TesseractError:
        return None
    script = found.get("script")
    return str(script) if script else None


@contextmanager
def _time_cap(deadline: float, limits: ExtractionLimits, *, where: str) -> Iterator[float]:
    """What is left of the page's time cap; its end, in any Tesseract run, is a typed fault."""
    left = deadline - time.monotonic()
    try:
        if left <= 0:
            raise RuntimeError("Tesseract process timeout")
        yield left
    except RuntimeError as exc:
        # pytesseract reports its kill at the time cap as RuntimeError("... timeout").
        if "timeout" not in str(exc).lower():
            raise
        raise DocumentFault(
            FaultCode.OCR_LIMIT_EXCEEDED,
            f"Recognising the text of {where} took longer than "
            f"{limits.ocr_page_timeout_seconds:g} s, the per-page limit.",
        ) from exc


def _run(
    image: Image.Image,
    lang: str,
    psm: int,
    deadline: float,
    limits: ExtractionLimits,
    *,
    where: str,
) -> Reading:
    """One Tesseract run writing its plain text (exactly what ``image_to_string`` returns)
    and its word table (for the confidences) together: one recognition, two renderers."""
    with (
        _time_cap(deadline, limits, where=where) as left,
        pytesseract.pytesseract.save(image) as (base, input_name),
    ):
        pytesseract.pytesseract.run_tesseract(
            input_name,
            base,
            "txt tsv",
            lang,
            config=f"--psm {psm} -c tessedit_create_tsv=1",
            timeout=left,
        )
        text = _read(f"{base}.txt")
        table = _read(f"{base}.tsv")
    return Reading(close_cjk_gaps(text.replace("\x0c", "")).strip(), word_confidence(table))


def _read(path: str) -> str:
    with open(path, encoding="utf-8", errors="replace") as handle:
        return handle.read()


def word_confidence(tsv: str) -> float:
    """Mean confidence of the recognised words in Tesseract's TSV, weighted by characters
    (a CJK "word" is often one character, a Latin one several); 0 when nothing was read."""
    total = weight = 0.0
    rows = csv.DictReader(io.StringIO(tsv), delimiter="\t", quoting=csv.QUOTE_NONE)
    for row in rows:
        word = (row.get("text") or "").strip()
        try:
            confidence = float(row.get("conf") or -1)
        except ValueError:
            continue
        if word and confidence >= 0:
            total += confidence * len(word)
            weight += len(word)
    return total / weight if weight else 0.0


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
