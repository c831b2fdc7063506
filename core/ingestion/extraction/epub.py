"""EPUB e-books: the package document's spine gives the chapters in reading order; each is
XHTML, read as HTML is (core.ingestion.extraction.html), headings giving the section labels.

Read directly from the zip (container.xml, then the OPF, with defusedxml) rather than with
ebooklib, which loads every item of the book into memory and parses with plain lxml.
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterator
from pathlib import Path
from zipfile import ZipFile

from core.ingestion.extraction.containers import open_zip
from core.ingestion.extraction.html import decode_html, html_blocks
from core.ingestion.extraction.opendocument import parse_xml
from core.ingestion.extraction.sections import Block, sections_to_units
from core.ingestion.extraction.units import ExtractionLimits, Unit, corrupt, no_text

_CONTAINER = "{urn:oasis:names:tc:opendocument:xmlns:container}"
_OPF = "{http://www.idpf.org/2007/opf}"
_DOCUMENT_TYPES = {"application/xhtml+xml", "text/html", "application/x-dtbook+xml"}


def epub_units(path: Path, limits: ExtractionLimits) -> list[Unit]:
    with open_zip(path, limits, what="e-book") as archive:
        units = sections_to_units(_blocks(archive))
    if not units:
        raise no_text("the e-book has no text.")
    return units


def _blocks(archive: ZipFile) -> Iterator[Block]:
    for name in spine(archive):
        try:
            data = archive.read(name)
        except KeyError:
            continue  # a spine entry the zip lacks: read what is there
        yield from html_blocks(decode_html(data))


def spine(archive: ZipFile) -> list[str]:
    """The zip names of the book's content documents, in reading order."""
    try:
        container = parse_xml(archive.read("META-INF/container.xml"), what="e-book")
    except KeyError as exc:
        raise corrupt("e-book", "it has no META-INF/container.xml") from exc
    rootfile = container.find(f".//{_CONTAINER}rootfile")
    opf_name = rootfile.get("full-path") if rootfile is not None else None
    if not opf_name:
        raise corrupt("e-book", "container.xml names no package document")
    try:
        package = parse_xml(archive.read(opf_name), what="e-book")
    except KeyError as exc:
        raise corrupt("e-book", f"its package document {opf_name!r} is missing") from exc
    base = posixpath.dirname(opf_name)
    manifest = {
        item.get("id"): item
        for item in package.iterfind(f"{_OPF}manifest/{_OPF}item")
        if item.get("id")
    }
    names: list[str] = []
    for ref in package.iterfind(f"{_OPF}spine/{_OPF}itemref"):
        item = manifest.get(ref.get("idref"))
        if item is None or item.get("media-type") not in _DOCUMENT_TYPES:
            continue
        href = item.get("href") or ""
        names.append(posixpath.normpath(posixpath.join(base, href.split("#")[0])))
    if not names:
        raise corrupt("e-book", "its spine lists no readable chapter")
    return names
