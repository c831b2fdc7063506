"""Flowing documents (DOCX, ODT, HTML, Markdown, EPUB) as units: one per section, labelled
with its heading path ("§Guide › Installation"), long sections split at paragraph bounds."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from core.ingestion.extraction.units import Unit

# A section longer than this becomes several units (same label, "(part N)"), so one batch
# of the workflow never holds a whole book that has no headings.
MAX_UNIT_CHARS = 8000
SECTION_MARK = "§"
PATH_SEPARATOR = " › "


@dataclass(frozen=True)
class Block:
    """A paragraph, list item, table row or code block; ``level`` set for a heading (1-6)."""

    text: str
    level: int | None = None


Numbered = tuple[int, str]  # (the paragraph's number in the document, its text)


def heading_label(path: list[str]) -> str:
    return SECTION_MARK + PATH_SEPARATOR.join(path)


def sections_to_units(
    blocks: Iterable[Block], *, fallback: str = "paragraphs", start: int = 1
) -> list[Unit]:
    """Units from blocks in reading order. Text outside any heading is labelled by its
    paragraph numbers ("paragraphs 1–12"): such documents have nothing better to cite."""
    units: list[Unit] = []
    for label, paragraphs in _sections(blocks):
        for part, (first, last, body) in enumerate(_split(paragraphs), start=1):
            if label is None:
                where = f"{fallback} {first}" if first == last else f"{fallback} {first}–{last}"
            else:
                where = label + (f" (part {part})" if part > 1 else "")
            units.append(Unit(number=start + len(units), text=body, label=where))
    return units


def _sections(blocks: Iterable[Block]) -> Iterator[tuple[str | None, list[Numbered]]]:
    path: list[tuple[int, str]] = []
    label: str | None = None
    paragraphs: list[Numbered] = []
    number = 0
    for block in blocks:
        text = block.text.strip()
        if not text:
            continue
        number += 1
        if block.level is not None:
            if paragraphs:
                yield label, paragraphs
            path = [(level, title) for level, title in path if level < block.level]
            path.append((block.level, " ".join(text.split())))
            label = heading_label([title for _, title in path])
            paragraphs = []
        paragraphs.append((number, text))
    if paragraphs:
        yield label, paragraphs


def _split(paragraphs: list[Numbered]) -> Iterator[tuple[int, int, str]]:
    current: list[Numbered] = []
    size = 0
    for number, text in paragraphs:
        for piece in _pieces(text):
            if current and size + len(piece) > MAX_UNIT_CHARS:
                yield _joined(current)
                current, size = [], 0
            current.append((number, piece))
            size += len(piece) + 2
    if current:
        yield _joined(current)


def _joined(paragraphs: list[Numbered]) -> tuple[int, int, str]:
    return paragraphs[0][0], paragraphs[-1][0], "\n\n".join(text for _, text in paragraphs)


def _pieces(text: str) -> Iterator[str]:
    # One paragraph longer than a unit (a wall of text) is cut at line, then space bounds.
    while len(text) > MAX_UNIT_CHARS:
        cut = text.rfind("\n", 0, MAX_UNIT_CHARS)
        if cut <= 0:
            cut = text.rfind(" ", 0, MAX_UNIT_CHARS)
        if cut <= 0:
            cut = MAX_UNIT_CHARS
        yield text[:cut]
        text = text[cut:].lstrip()
    if text:
        yield text
