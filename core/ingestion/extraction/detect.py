"""What a file is, told by its bytes alone: never by its name or the type a client claims."""

from __future__ import annotations

import csv
import re
import zipfile
from enum import StrEnum
from pathlib import Path

from core.ingestion.extraction import containers, encoding, pdf
from core.ingestion.extraction.html import declared_charset
from core.ingestion.extraction.units import corrupt
from core.ingestion.faults import DocumentFault, FaultCode

SAMPLE_BYTES = 64 * 1024


class Format(StrEnum):
    PDF = "pdf"
    DOCX = "docx"
    ODT = "odt"
    PPTX = "pptx"
    XLSX = "xlsx"
    CSV = "csv"
    HTML = "html"
    MARKDOWN = "markdown"
    TEXT = "text"
    EPUB = "epub"
    RTF = "rtf"
    PNG = "png"
    JPEG = "jpeg"
    TIFF = "tiff"


# What a refusal lists, in words people know.
ACCEPTED = (
    "PDF, Word (.docx), OpenDocument text (.odt), PowerPoint (.pptx), Excel (.xlsx), CSV, "
    "HTML, Markdown, plain text, EPUB, RTF, PNG, JPEG, TIFF"
)
IMAGES = frozenset({Format.PNG, Format.JPEG, Format.TIFF})

_MAGIC = (
    (b"\x89PNG\r\n\x1a\n", Format.PNG),
    (b"\xff\xd8\xff", Format.JPEG),
    (b"II*\x00", Format.TIFF),
    (b"MM\x00*", Format.TIFF),
    (b"{\\rtf", Format.RTF),
)
_ZIP_MIMETYPES = {
    b"application/epub+zip": Format.EPUB,
    b"application/vnd.oasis.opendocument.text": Format.ODT,
}
_OOXML_MAIN_PARTS = (
    ("word/document.xml", Format.DOCX),
    ("ppt/presentation.xml", Format.PPTX),
    ("xl/workbook.xml", Format.XLSX),
)
_HTML_START = re.compile(
    r"^(?:\s|<!--.*?-->|<\?xml[^>]*>)*<(?:!doctype\s+html|html|head|body|meta|title)\b",
    re.I | re.S,
)
_HTML_TAGS = re.compile(r"<(?:html|body|div|p|table|h[1-6])\b[^>]*>", re.I)
_ATX_HEADING = re.compile(r"^#{1,6}\s+\S", re.M)
_MARKDOWN_SIGNS = (
    _ATX_HEADING,
    re.compile(r"^(?:```|~~~)", re.M),  # fenced code
    re.compile(r"\[[^\]\n]+\]\([^)\s]+\)"),  # link
    re.compile(r"^\S[^\n]*\n(?:=+|-+)[ \t]*$", re.M),  # setext heading
    re.compile(r"^\s{0,3}(?:[-*+]|\d+\.)\s+\S", re.M),  # list item
    re.compile(r"(?:\*\*|__)\S[^\n]*?\S(?:\*\*|__)"),  # strong emphasis
)


def unsupported(what: str) -> DocumentFault:
    return DocumentFault(
        FaultCode.UNSUPPORTED_FORMAT,
        f"This file's content is {what}, which docchat cannot read. Accepted: {ACCEPTED}.",
    )


def detect_format(path: Path) -> Format:
    """The format of the file at ``path``, or a fault: ``empty_file``, ``encrypted_document``
    (a password-protected Office file), ``corrupt_document`` (a damaged zip), or
    ``unsupported_format`` naming what is accepted."""
    if not path.exists():
        raise DocumentFault(FaultCode.FILE_MISSING, "The uploaded file is no longer on disk.")
    with path.open("rb") as handle:
        sample = handle.read(SAMPLE_BYTES)
        complete = not handle.read(1)
    if not sample:
        raise DocumentFault(FaultCode.EMPTY_FILE, "The file is empty (0 bytes).")
    return detect_sample(sample, complete=complete, path=path)


def detect_sample(sample: bytes, *, complete: bool, path: Path) -> Format:
    """The format from a file's first bytes (``sample``), looking into zip and OLE files at
    ``path`` where the first bytes cannot tell."""
    if pdf.looks_like_pdf(sample):
        return Format.PDF
    for magic, found in _MAGIC:
        if sample.startswith(magic):
            return found
    if sample.startswith(containers.ZIP_MAGIC):
        return _zip_format(path)
    if containers.is_ole(sample):
        if containers.ole_is_encrypted(path):
            raise containers.encrypted_office()
        raise unsupported("a legacy Office file (.doc, .xls or .ppt; save it as .docx/.xlsx)")
    return _text_format(sample, complete=complete)


def _zip_format(path: Path) -> Format:
    try:
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
            if "mimetype" in names:
                mimetype = archive.read("mimetype").strip()
                if mimetype in _ZIP_MIMETYPES:
                    return _ZIP_MIMETYPES[mimetype]
            if "[Content_Types].xml" in names:
                for part, found in _OOXML_MAIN_PARTS:
                    if part in names:
                        return found
    except (zipfile.BadZipFile, OSError, ValueError, KeyError) as exc:
        raise corrupt("document (a damaged zip container)", exc) from exc
    raise unsupported("a zip archive that is no Office, OpenDocument text or EPUB document")


def _text_format(sample: bytes, *, complete: bool) -> Format:
    declared = declared_charset(sample)
    name = encoding.guess_encoding(sample, complete=complete, declared=declared)
    if name is None:
        raise unsupported("binary data of no accepted format")
    text = sample.decode(name, errors="replace").removeprefix("\ufeff")
    if not encoding.looks_like_text(text):
        raise unsupported("binary data of no accepted format")
    if _HTML_START.match(text):
        return Format.HTML
    if _looks_like_csv(text, complete=complete):
        return Format.CSV
    # Markdown before a count of HTML tags: a README may well quote HTML in a code block.
    signs = [sign for sign in _MARKDOWN_SIGNS if sign.search(text)]
    if len(signs) >= 2 or _ATX_HEADING in signs:
        return Format.MARKDOWN
    if len(_HTML_TAGS.findall(text[:8192])) >= 3:
        return Format.HTML  # a fragment without <html>
    return Format.TEXT


def _looks_like_csv(text: str, *, complete: bool) -> bool:
    """Two or more rows of the same number (2 or more) of delimited fields, every row."""
    lines = [line for line in text[:8192].splitlines() if line.strip()]
    if not complete and len(lines) > 1:
        lines = lines[:-1]  # the sample may end inside a row
    if len(lines) < 2:
        return False
    try:
        dialect = csv.Sniffer().sniff("\n".join(lines), delimiters=",;\t|")
    except csv.Error:
        return False
    widths = {len(row) for row in csv.reader(lines, dialect)}
    return len(widths) == 1 and widths.pop() >= 2
