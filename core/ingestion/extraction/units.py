"""What every extractor produces: numbered units of text, each with a readable location."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from core.ingestion.faults import DocumentFault, FaultCode

if TYPE_CHECKING:
    from core.settings import Settings

OcrMode = Literal["auto", "off", "force"]


@dataclass(frozen=True)
class Unit:
    """One piece of a document the workflow extracts, batches and cites as it does PDF pages.

    ``number`` is 1-based and dense (1..unit_count), so extraction batches split a document by
    unit number whatever its format; ``label`` says where the text is for people: "page 3",
    "slide 2", 'sheet "Q1" rows 2-41', "§Setup › Installation".
    """

    number: int
    text: str
    label: str
    ocr: bool = False  # the text was recognised from an image, not read from a text layer


@dataclass(frozen=True)
class ExtractionLimits:
    """Every cap extraction enforces; ``from_settings`` maps the ``DOCCHAT_*`` settings."""

    max_units: int = 2000
    max_chars: int = 20_000_000
    max_archive_bytes: int = 512 * 1024 * 1024
    max_compression_ratio: float = 200.0
    max_image_pixels: int = 64_000_000
    ocr: OcrMode = "auto"
    ocr_languages: str = "eng+deu+jpn+jpn_vert"
    ocr_vertical_retry_confidence: float = 60.0
    ocr_max_pages: int = 500
    ocr_page_timeout_seconds: float = 120.0
    ocr_dpi: int = 200

    @classmethod
    def from_settings(cls, settings: Settings) -> ExtractionLimits:
        return cls(
            max_units=settings.max_pages,
            max_chars=settings.max_extracted_chars,
            max_archive_bytes=settings.max_archive_bytes,
            max_compression_ratio=settings.max_compression_ratio,
            max_image_pixels=settings.max_image_pixels,
            ocr=settings.ocr,
            ocr_languages=settings.ocr_languages,
            ocr_vertical_retry_confidence=settings.ocr_vertical_retry_confidence,
            ocr_max_pages=settings.ocr_max_pages,
            ocr_page_timeout_seconds=settings.ocr_page_timeout_seconds,
            ocr_dpi=settings.ocr_dpi,
        )


def corrupt(what: str, exc: BaseException | str) -> DocumentFault:
    return DocumentFault(
        FaultCode.CORRUPT_DOCUMENT, f"The {what} is damaged and cannot be read: {exc}"
    )


def no_text(why: str) -> DocumentFault:
    return DocumentFault(FaultCode.NO_EXTRACTABLE_TEXT, f"No text could be extracted: {why}")


def too_many_units(count: int, limit: int, kind: str) -> DocumentFault:
    return DocumentFault(
        FaultCode.TOO_MANY_PAGES, f"The document has {count} {kind}s; the limit is {limit}."
    )


def text_too_large(limit: int) -> DocumentFault:
    return DocumentFault(
        FaultCode.TEXT_TOO_LARGE,
        f"The document holds more than {limit:,} characters of text, the limit.",
    )
