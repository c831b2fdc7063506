"""A document's text as every feature passes it on: its units (pages) and its chunks.

Extraction yields ``PageText``, chunking turns pages into ``Chunk``, storage writes both, the
vector store indexes chunks and chat cites them by ``location_label``; so they live here, at
``core/``'s root, and neither ingestion nor search imports the other for them.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PageText:
    page: int  # 1-based, as people cite pages; a document's unit number in other formats
    text: str
    # Where the text is, for people: "page 3", "slide 2", "§Setup › Installation" (see
    # core/extraction). Empty in artifacts written before labels: read as "page N".
    label: str = ""
    ocr: bool = False  # recognised from an image of the page (core/ingestion/extraction/ocr.py)


@dataclass(frozen=True)
class Chunk:
    index: int
    page: int
    text: str
    token_count: int
    label: str = ""  # the label of the page (unit) the chunk comes from


def location_label(page: int, label: str = "") -> str:
    return label or f"page {page}"
