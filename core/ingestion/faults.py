"""Permanent faults of a document: retrying cannot help, so they end the task at once."""

from __future__ import annotations

from enum import StrEnum


class FaultCode(StrEnum):
    EMPTY_FILE = "empty_file"
    NOT_A_PDF = "not_a_pdf"
    ENCRYPTED_PDF = "encrypted_pdf"
    CORRUPT_PDF = "corrupt_pdf"
    TOO_MANY_PAGES = "too_many_pages"
    TEXT_TOO_LARGE = "text_too_large"
    NO_EXTRACTABLE_TEXT = "no_extractable_text"
    FILE_MISSING = "file_missing"
    # Formats beyond PDF (issue 18, core/ingestion/extraction/).
    UNSUPPORTED_FORMAT = "unsupported_format"
    ENCRYPTED_DOCUMENT = "encrypted_document"
    CORRUPT_DOCUMENT = "corrupt_document"
    # A container (zip) or image that would inflate past the caps before any of it is read.
    DECOMPRESSION_BOMB = "decompression_bomb"
    # XML that declares entities (a "billion laughs" expansion, external entities): refused.
    UNSAFE_XML = "unsafe_xml"
    # Recognising the document's scanned pages would pass the OCR page or time caps.
    OCR_LIMIT_EXCEEDED = "ocr_limit_exceeded"


class DocumentFault(Exception):
    """A document that can never be ingested as it is; ``code`` is what clients switch on."""

    def __init__(self, code: FaultCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    def __reduce__(self) -> tuple[type[DocumentFault], tuple[FaultCode, str]]:
        # Faults cross a process boundary (see core.ingestion.offload); keep both fields when
        # pickled.
        return (DocumentFault, (self.code, self.message))
