"""Opening zip containers (DOCX, PPTX, XLSX, ODT, EPUB) safely, and telling encrypted Office
files apart from legacy ones.

Everything here is decided from the zip's central directory and a few bytes of each XML part,
before any library inflates the container: a zip bomb, an encrypted member or an XML entity
declaration is refused with its typed fault while nothing large has been read.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

from core.ingestion.extraction.units import ExtractionLimits, corrupt
from core.ingestion.faults import DocumentFault, FaultCode

OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
ZIP_MAGIC = b"PK\x03\x04"
# A member smaller than this may compress as well as it likes (a run of blanks in styles.xml
# reaches ratios in the hundreds); the ratio cap is for members that could fill memory.
_RATIO_FREE_BYTES = 1024 * 1024
_MAX_MEMBERS = 50_000
_XML_SUFFIXES = (".xml", ".rels", ".opf", ".ncx", ".xhtml", ".htm", ".html", ".svg")
# How much of each XML part is read to find its prologue (where a DTD would be).
_PROLOGUE_BYTES = 64 * 1024
_ENTITY_MARKERS = tuple(
    marker.encode(codec)
    for marker in ("<!ENTITY", "<!DOCTYPE")
    for codec in ("utf-8", "utf-16-le", "utf-16-be")
)


def is_ole(head: bytes) -> bool:
    return head.startswith(OLE_MAGIC)


def ole_is_encrypted(path: Path) -> bool:
    """An encrypted OOXML file (Office's "Encrypt with password") is an OLE compound file
    holding the streams EncryptionInfo and EncryptedPackage; their names are stored in the
    file's directory sectors in UTF-16."""
    data = path.read_bytes()[: 16 * 1024 * 1024]
    return "EncryptedPackage".encode("utf-16-le") in data


def encrypted_office() -> DocumentFault:
    return DocumentFault(
        FaultCode.ENCRYPTED_DOCUMENT,
        "The document is password-protected; remove the password and upload it again.",
    )


def open_zip(path: Path, limits: ExtractionLimits, *, what: str) -> zipfile.ZipFile:
    """The container, once its directory shows it is neither a bomb nor encrypted and its XML
    parts declare no entities."""
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise corrupt(what, exc) from exc
    try:
        check_directory(archive.infolist(), limits)
        check_xml_prologues(archive)
    except BaseException:
        archive.close()
        raise
    return archive


def check_directory(members: list[zipfile.ZipInfo], limits: ExtractionLimits) -> None:
    # zipfile never inflates a member past the size its directory entry declares (it stops
    # there and fails the CRC check), so the declared sizes bound what can be read.
    if len(members) > _MAX_MEMBERS:
        raise _bomb(f"it holds {len(members):,} files")
    total = 0
    for member in members:
        if member.flag_bits & 0x1:
            raise encrypted_office()
        total += member.file_size
        if total > limits.max_archive_bytes:
            raise _bomb(
                f"it would inflate to more than {limits.max_archive_bytes:,} bytes, the limit"
            )
        if member.file_size > _RATIO_FREE_BYTES:
            ratio = member.file_size / max(member.compress_size, 1)
            if ratio > limits.max_compression_ratio:
                raise _bomb(
                    f"{member.filename!r} inflates {ratio:,.0f} times, "
                    f"more than the {limits.max_compression_ratio:,.0f} allowed"
                )


def check_xml_prologues(archive: zipfile.ZipFile) -> None:
    """Refuse a container any of whose XML parts declares a DTD: Office, OpenDocument and
    EPUB parts never need one, and a DTD is how entity expansion ("billion laughs") and
    external entities get in, whatever parser reads the part later."""
    for member in archive.infolist():
        if not member.filename.lower().endswith(_XML_SUFFIXES) or member.is_dir():
            continue
        try:
            with archive.open(member) as handle:
                head = handle.read(_PROLOGUE_BYTES)
        except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
            raise corrupt("document", f"{member.filename}: {exc}") from exc
        if _declares_dtd(head):
            raise DocumentFault(
                FaultCode.UNSAFE_XML,
                f"The document's part {member.filename!r} declares a DTD or XML entities, "
                "which documents of this kind never need; it is refused unread.",
            )


def _declares_dtd(head: bytes) -> bool:
    if not any(marker in head for marker in _ENTITY_MARKERS):
        return False
    # XHTML in EPUBs carries a plain doctype; only an internal subset ("[") or an external
    # identifier other than the well-known XHTML ones can define entities.
    text = head.decode("utf-8", "replace") if b"\x00" not in head[:64] else ""
    if not text:
        return True
    if "<!ENTITY" in text:
        return True
    start = text.find("<!DOCTYPE")
    end = text.find(">", start)
    declaration = text[start : end if end >= 0 else len(text)]
    return "[" in declaration or ("SYSTEM" in declaration and "-//W3C//DTD" not in declaration)


def _bomb(why: str) -> DocumentFault:
    return DocumentFault(FaultCode.DECOMPRESSION_BOMB, f"The document is refused unopened: {why}.")
