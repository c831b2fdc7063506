"""Where a document's bytes and intermediate artifacts live on disk.

Activities pass document ids through workflow history and find the data here, so every worker
that shares the uploads and artifacts folders (a volume in production) can pick up any step.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class PageText:
    page: int  # 1-based, as people cite pages; a document's unit number in other formats
    text: str
    # Where the text is, for people: "page 3", "slide 2", "§Setup › Installation" (see
    # core/extraction). Empty in artifacts written before labels: read as "page N".
    label: str = ""
    ocr: bool = False  # recognised from an image of the page (core/extraction/ocr.py)


@dataclass(frozen=True)
class Chunk:
    index: int
    page: int
    text: str
    token_count: int
    label: str = ""  # the label of the page (unit) the chunk comes from


def location_label(page: int, label: str = "") -> str:
    return label or f"page {page}"


class DocumentStorage:
    def __init__(self, *, uploads_dir: Path, artifacts_dir: Path) -> None:
        self.uploads_dir = uploads_dir
        self.artifacts_dir = artifacts_dir

    def upload_path(self, stored_name: str) -> Path:
        return self.uploads_dir / stored_name

    def artifact_dir(self, document_id: str) -> Path:
        return self.artifacts_dir / document_id

    def pages_path(self, document_id: str, first_page: int) -> Path:
        return self.artifact_dir(document_id) / "pages" / f"{first_page:06d}.jsonl"

    def chunks_path(self, document_id: str) -> Path:
        return self.artifact_dir(document_id) / "chunks.jsonl"

    def write_pages(self, document_id: str, first_page: int, pages: Iterable[PageText]) -> None:
        write_jsonl(self.pages_path(document_id, first_page), (asdict(p) for p in pages))

    def pages_files(self, document_id: str) -> list[Path]:
        return sorted((self.artifact_dir(document_id) / "pages").glob("*.jsonl"))

    def read_pages(self, document_id: str) -> Iterator[PageText]:
        for path in self.pages_files(document_id):
            for row in read_jsonl(path):
                yield PageText(**row)

    def write_chunks(self, document_id: str, chunks: Iterable[Chunk]) -> None:
        write_jsonl(self.chunks_path(document_id), (asdict(c) for c in chunks))

    def read_chunks(self, document_id: str, start: int = 0, stop: int | None = None) -> list[Chunk]:
        chunks: list[Chunk] = []
        for position, row in enumerate(read_jsonl(self.chunks_path(document_id))):
            if position < start:
                continue
            if stop is not None and position >= stop:
                break
            chunks.append(Chunk(**row))
        return chunks

    def remove_document(self, document_id: str, stored_name: str) -> None:
        self.upload_path(stored_name).unlink(missing_ok=True)
        shutil.rmtree(self.artifact_dir(document_id), ignore_errors=True)


def write_jsonl(path: Path, rows: Iterable[dict[str, Any]]) -> None:
    # Write then rename, so a crash mid-write never leaves a half file a retry would trust.
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    with partial.open("w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False))
            handle.write("\n")
        handle.flush()
        os.fsync(handle.fileno())
    partial.replace(path)


def read_jsonl(path: Path) -> Iterator[dict[str, Any]]:
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                yield json.loads(line)
