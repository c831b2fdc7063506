"""OpenDocument text (ODT, LibreOffice Writer): content.xml read with defusedxml.

Its structure is small and stable (text:h with an outline level, text:p, lists, tables), so
reading it directly costs less than a library: odfpy builds a DOM of the whole package and
parses with the standard library's unguarded expat.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from xml.etree.ElementTree import Element, ParseError

import defusedxml.ElementTree as SafeTree
from defusedxml import DefusedXmlException

from core.ingestion.extraction.containers import encrypted_office, open_zip
from core.ingestion.extraction.sections import Block, sections_to_units
from core.ingestion.extraction.units import ExtractionLimits, Unit, corrupt, no_text
from core.ingestion.faults import DocumentFault, FaultCode

TEXT = "{urn:oasis:names:tc:opendocument:xmlns:text:1.0}"
TABLE = "{urn:oasis:names:tc:opendocument:xmlns:table:1.0}"
OFFICE = "{urn:oasis:names:tc:opendocument:xmlns:office:1.0}"
_SKIPPED = {
    f"{TEXT}tracked-changes",
    f"{TEXT}note",
    f"{OFFICE}annotation",
    f"{TEXT}soft-page-break",
}


def odt_units(path: Path, limits: ExtractionLimits) -> list[Unit]:
    with open_zip(path, limits, what="OpenDocument file") as archive:
        names = set(archive.namelist())
        if "META-INF/manifest.xml" in names and b"encryption-data" in archive.read(
            "META-INF/manifest.xml"
        ):
            raise encrypted_office()
        if "content.xml" not in names:
            raise corrupt("OpenDocument file", "it has no content.xml")
        root = parse_xml(archive.read("content.xml"), what="OpenDocument file")
    body = root.find(f"{OFFICE}body/{OFFICE}text")
    if body is None:
        raise corrupt("OpenDocument file", "content.xml has no text body")
    units = sections_to_units(_blocks(body))
    if not units:
        raise no_text("the OpenDocument file has no text.")
    return units


def parse_xml(data: bytes, *, what: str) -> Element:
    try:
        root: Element = SafeTree.fromstring(data, forbid_dtd=True)
    except DefusedXmlException as exc:
        raise DocumentFault(
            FaultCode.UNSAFE_XML, f"The {what} declares a DTD or entities; refused: {exc!r}"
        ) from exc
    except ParseError as exc:
        raise corrupt(what, exc) from exc
    return root


def _blocks(element: Element) -> Iterator[Block]:
    for child in element:
        if child.tag in _SKIPPED:
            continue
        if child.tag == f"{TEXT}h":
            level = int(child.get(f"{TEXT}outline-level", "1") or 1)
            yield Block(_text(child), level=min(max(level, 1), 6))
        elif child.tag == f"{TEXT}p":
            yield Block(_text(child))
        elif child.tag == f"{TABLE}table-row":
            cells = [" ".join(_text(cell).split()) for cell in child]
            if any(cells):
                yield Block(" | ".join(cell for cell in cells if cell))
        else:
            yield from _blocks(child)


def _text(element: Element) -> str:
    parts = [element.text or ""]
    for child in element:
        if child.tag == f"{TEXT}s":
            parts.append(" " * int(child.get(f"{TEXT}c", "1") or 1))
        elif child.tag == f"{TEXT}tab":
            parts.append("\t")
        elif child.tag == f"{TEXT}line-break":
            parts.append("\n")
        elif child.tag not in _SKIPPED:
            parts.append(_text(child))
        parts.append(child.tail or "")
    return "".join(parts)
