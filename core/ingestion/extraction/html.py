"""HTML (and the XHTML of EPUB chapters) as blocks of visible text, with heading levels.

Parsed by lxml's HTML parser (libxml2: fast on a 2.4 MB filing, forgiving of broken markup,
and it never fetches or runs anything). Scripts, styles, templates, forms' hidden parts and
navigation are dropped before any text is read, so they are never indexed.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import lxml.html
from lxml import etree

from core.ingestion.extraction import encoding
from core.ingestion.extraction.sections import Block, sections_to_units
from core.ingestion.extraction.units import ExtractionLimits, Unit, corrupt, no_text
from core.ingestion.faults import DocumentFault, FaultCode

# Never text: code, styling, embedded objects, and the navigation repeated on every page.
DROPPED = frozenset(
    {
        "script", "style", "noscript", "template", "nav", "svg", "math", "iframe", "object",
        "embed", "canvas", "select", "button", "head",
    }
)  # fmt: skip
_HEADINGS = {f"h{level}": level for level in range(1, 7)}
# Elements that end a run of text: what comes after them starts a new block.
_BLOCKS = frozenset(
    {
        "p", "div", "section", "article", "main", "aside", "header", "footer", "blockquote",
        "pre", "li", "dt", "dd", "figcaption", "caption", "address", "tr", "table", "ul",
        "ol", "dl", "br", "hr", "body", "form", "fieldset", "details", "summary",
    }
)  # fmt: skip
_DECLARED = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_.:-]+)""", re.I)
_XML_DECLARED = re.compile(rb"""^\s*<\?xml[^>]*encoding\s*=\s*["']([A-Za-z0-9_.:-]+)""")
_XML_DECLARATION = re.compile(r"^\s*<\?xml[^>]*\?>")
_HIDDEN_STYLE = re.compile(r"display\s*:\s*none|visibility\s*:\s*hidden", re.I)
_SPACES = re.compile(r"[ \t\r\f\v\u00a0]+")


def declared_charset(head: bytes) -> str | None:
    """The charset a page declares in its first bytes (<meta charset>, http-equiv, or an
    XML declaration), as a Python codec name."""
    found = _XML_DECLARED.search(head[:1024]) or _DECLARED.search(head[:4096])
    if not found:
        return None
    return encoding.normalise_label(found.group(1).decode("ascii"))


def decode_html(data: bytes) -> str:
    text = encoding.decode(data, declared=declared_charset(data))
    if text is None:
        raise DocumentFault(
            FaultCode.UNSUPPORTED_FORMAT, "The page's text is in no encoding docchat can read."
        )
    return text


def html_units(path: Path, limits: ExtractionLimits) -> list[Unit]:
    units = sections_to_units(html_blocks(decode_html(path.read_bytes())))
    if not units:
        raise no_text("the page has no visible text.")
    return units


def html_blocks(text: str) -> Iterator[Block]:
    if not text.strip():
        return
    try:
        root = lxml.html.document_fromstring(_XML_DECLARATION.sub("", text, count=1))
    except (etree.ParserError, ValueError) as exc:
        if "empty" in str(exc).lower():
            return
        raise corrupt("page", exc) from exc
    _drop_invisible(root)
    body = root.find("body")
    if body is None:
        body = root
    pieces: list[str] = [body.text or ""]
    yield from _walk(body, pieces)
    yield from _flush(pieces)


def _drop_invisible(root: etree._Element) -> None:
    """Remove what a reader never sees, wherever it sits (a script inside a table cell is
    still a script), keeping the text that follows each removed element."""
    etree.strip_elements(root, etree.Comment, etree.ProcessingInstruction, with_tail=False)
    doomed = [
        element
        for element in root.iter()
        if element.tag in DROPPED
        or element.get("hidden") is not None
        or _HIDDEN_STYLE.search(element.get("style") or "")
    ]
    for element in doomed:
        if element.getparent() is not None:
            element.drop_tree()


def _walk(element: etree._Element, pieces: list[str]) -> Iterator[Block]:
    """Depth-first over the tree, text gathered into ``pieces`` until a block ends."""
    for child in element:
        tag = child.tag if isinstance(child.tag, str) else ""
        if not tag:
            continue
        if tag in _HEADINGS:
            yield from _flush(pieces)
            yield Block(_clean(child.text_content()), level=_HEADINGS[tag])
        elif tag == "tr":
            yield from _flush(pieces)
            cells = [_clean(cell.text_content()) for cell in child if _is_cell(cell)]
            row = " | ".join(cell for cell in cells if cell)
            if row:
                yield Block(row)
        elif tag == "pre":
            yield from _flush(pieces)
            yield Block(child.text_content())
        elif tag in _BLOCKS:
            yield from _flush(pieces)
            if child.text:
                pieces.append(child.text)
            yield from _walk(child, pieces)
            yield from _flush(pieces)
        else:
            if child.text:
                pieces.append(child.text)
            yield from _walk(child, pieces)
        if child.tail:
            pieces.append(child.tail)


def _is_cell(element: etree._Element) -> bool:
    return element.tag in ("td", "th")


def _flush(pieces: list[str]) -> Iterator[Block]:
    text = _clean("".join(pieces))
    pieces.clear()
    if text:
        yield Block(text)


def _clean(text: str) -> str:
    lines = (_SPACES.sub(" ", line).strip() for line in text.splitlines())
    return " ".join(line for line in lines if line)
