"""Plain text and Markdown: decoded by content (core.ingestion.extraction.encoding), then cut
into units.

Plain text is cited by line numbers ("lines 1–80"); Markdown by its heading path, parsed
with markdown-it-py (CommonMark: setext headings and fenced code count as they render).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from markdown_it import MarkdownIt
from markdown_it.token import Token

from core.ingestion.extraction import encoding
from core.ingestion.extraction.sections import MAX_UNIT_CHARS, Block, sections_to_units
from core.ingestion.extraction.units import ExtractionLimits, Unit, no_text
from core.ingestion.faults import DocumentFault, FaultCode


def read_text(path: Path, limits: ExtractionLimits) -> str:
    data = path.read_bytes()
    text = encoding.decode(data)
    if text is None:
        raise DocumentFault(
            FaultCode.UNSUPPORTED_FORMAT, "The file's text is in no encoding docchat can read."
        )
    if not text.strip():
        raise no_text("the file holds only whitespace.")
    return text


def text_units(path: Path, limits: ExtractionLimits) -> list[Unit]:
    return line_units(read_text(path, limits))


def line_units(text: str, *, start: int = 1) -> list[Unit]:
    """Runs of whole lines up to a unit's size, labelled by their line numbers."""
    units: list[Unit] = []
    lines: list[str] = []
    size = 0
    first = 1
    for number, line in enumerate(text.splitlines(), start=1):
        if lines and size + len(line) > MAX_UNIT_CHARS:
            units.append(_lines_unit(start + len(units), lines, first))
            lines, size, first = [], 0, number
        lines.append(line)
        size += len(line) + 1
    if lines:
        units.append(_lines_unit(start + len(units), lines, first))
    return _renumber([unit for unit in units if unit.text.strip()], start)


def _lines_unit(number: int, lines: list[str], first: int) -> Unit:
    last = first + len(lines) - 1
    label = f"line {first}" if last == first else f"lines {first}–{last}"
    return Unit(number=number, text="\n".join(lines), label=label)


def _renumber(units: list[Unit], start: int) -> list[Unit]:
    return [
        Unit(number=start + i, text=u.text, label=u.label, ocr=u.ocr) for i, u in enumerate(units)
    ]


def markdown_units(path: Path, limits: ExtractionLimits) -> list[Unit]:
    return sections_to_units(markdown_blocks(read_text(path, limits)), fallback="paragraphs")


def markdown_blocks(text: str) -> Iterator[Block]:
    # No HTML rendering is involved: only the token stream, so raw HTML in the Markdown is
    # kept as text and never run.
    tokens = MarkdownIt("commonmark").parse(text)
    level: int | None = None
    for token in tokens:
        if token.type == "heading_open":
            level = int(token.tag[1:])
        elif token.type == "heading_close":
            level = None
        elif token.type == "inline":
            yield Block(_inline_text(token), level=level)
        elif token.type in ("fence", "code_block", "html_block"):
            yield Block(token.content)


def _inline_text(token: Token) -> str:
    parts: list[str] = []
    for child in token.children or []:
        if child.type in ("text", "code_inline", "html_inline"):
            parts.append(child.content)
        elif child.type in ("softbreak", "hardbreak"):
            parts.append("\n")
        elif child.type == "image":
            parts.append(child.content)  # the alt text
    return "".join(parts)
