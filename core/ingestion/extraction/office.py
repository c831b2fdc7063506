"""Word (DOCX) with python-docx and PowerPoint (PPTX) with python-pptx: the maintained
readers of these formats, both on lxml with entity resolution off. The container has passed
core.ingestion.extraction.containers' checks before either library opens it."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from core.ingestion.extraction.containers import open_zip
from core.ingestion.extraction.sections import Block, sections_to_units
from core.ingestion.extraction.units import ExtractionLimits, Unit, corrupt, no_text
from core.ingestion.faults import DocumentFault

_HEADING_STYLE = re.compile(r"^(?:heading|überschrift|titre|título)\s*(\d)$", re.I)


def docx_units(path: Path, limits: ExtractionLimits) -> list[Unit]:
    import docx  # imported here: only workers that meet a DOCX pay for loading it

    open_zip(path, limits, what="Word document").close()
    try:
        document = docx.Document(str(path))
        units = sections_to_units(_docx_blocks(document))
    except DocumentFault:
        raise
    except Exception as exc:  # python-docx raises many kinds on a damaged package
        raise corrupt("Word document", exc) from exc
    if not units:
        raise no_text("the Word document has no text.")
    return units


def _docx_blocks(document: Any) -> Iterator[Block]:
    from docx.table import Table

    for item in document.iter_inner_content():
        if isinstance(item, Table):
            yield from _docx_table(item)
        else:
            yield Block(item.text, level=_docx_heading_level(item))


def _docx_heading_level(paragraph: Any) -> int | None:
    style = paragraph.style
    name = (style.name if style is not None else "") or ""
    if name.lower() == "title":
        return 1
    matched = _HEADING_STYLE.match(name.strip())
    if matched:
        return min(int(matched.group(1)), 6)
    outline = paragraph._p.pPr.outlineLvl if paragraph._p.pPr is not None else None
    if outline is not None and outline.val is not None and int(outline.val) < 9:
        return min(int(outline.val) + 1, 6)
    return None


def _docx_table(table: Any) -> Iterator[Block]:
    for row in table.rows:
        cells: list[str] = []
        for cell in row.cells:
            text = " ".join(cell.text.split())
            # A merged cell is returned once per grid column it spans: show it once.
            if text and (not cells or cells[-1] != text):
                cells.append(text)
        if cells:
            yield Block(" | ".join(cells))


def pptx_slide_count(path: Path, limits: ExtractionLimits) -> int:
    return len(_presentation(path, limits).slides)


def pptx_units(path: Path, first: int, last: int, limits: ExtractionLimits) -> Iterator[Unit]:
    presentation = _presentation(path, limits)
    slides = list(presentation.slides)
    for number in range(first, last + 1):
        try:
            text = "\n".join(_slide_texts(slides[number - 1]))
        except Exception as exc:
            raise corrupt("presentation", f"slide {number}: {exc}") from exc
        yield Unit(number=number, text=text, label=f"slide {number}")


def _presentation(path: Path, limits: ExtractionLimits) -> Any:
    import pptx

    open_zip(path, limits, what="presentation").close()
    try:
        presentation = pptx.Presentation(str(path))
        len(presentation.slides)  # resolves every slide part: a broken one fails here
    except Exception as exc:
        raise corrupt("presentation", exc) from exc
    return presentation


def _slide_texts(slide: Any) -> Iterator[str]:
    yield from _shape_texts(slide.shapes)
    if slide.has_notes_slide:
        notes = slide.notes_slide.notes_text_frame
        if notes is not None and notes.text.strip():
            yield notes.text


def _shape_texts(shapes: Any) -> Iterator[str]:
    for shape in shapes:
        if getattr(shape, "shapes", None) is not None:  # a group
            yield from _shape_texts(shape.shapes)
        if getattr(shape, "has_text_frame", False) and shape.text_frame.text.strip():
            yield shape.text_frame.text
        if getattr(shape, "has_table", False):
            for row in shape.table.rows:
                cells = [" ".join(cell.text.split()) for cell in row.cells]
                if any(cells):
                    yield " | ".join(cells)
