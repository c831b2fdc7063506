"""Where a document's bytes and intermediate artifacts live on disk.

Activities pass document ids through workflow history and find the data here, so every worker
that shares the uploads and artifacts folders (a volume in production) can pick up any step.

Only the worker process (the activity itself, never a child process) writes here, so a step
that was cancelled or timed out, whose child was stopped, can write nothing after it returned.
"""

from __future__ import annotations

import json
import os
import shutil
import struct
from collections.abc import Iterable, Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

from core.texts import Chunk, PageText

# The chunks' index: the byte offset of each line of chunks.jsonl, then the file's size, as
# little-endian unsigned 64-bit integers, so a vectorize batch reads only its own lines.
_OFFSET = struct.Struct("<Q")


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

    def chunks_index_path(self, document_id: str) -> Path:
        return self.artifact_dir(document_id) / "chunks.idx"

    def write_pages(self, document_id: str, first_page: int, pages: Iterable[PageText]) -> None:
        write_jsonl(self.pages_path(document_id, first_page), (asdict(p) for p in pages))

    def pages_files(self, document_id: str) -> list[Path]:
        return sorted((self.artifact_dir(document_id) / "pages").glob("*.jsonl"))

    def read_pages(self, document_id: str) -> Iterator[PageText]:
        for path in self.pages_files(document_id):
            for row in read_jsonl(path):
                yield PageText(**row)

    def write_chunks(self, document_id: str, chunks: Iterable[Chunk]) -> int:
        """Write the chunks and their index; return how many there are. The index is written
        first: chunks.jsonl, renamed into place last, is what says the step is done."""
        lines = [_jsonl_line(asdict(chunk)) for chunk in chunks]
        offsets = [0]
        for line in lines:
            offsets.append(offsets[-1] + len(line))
        _write_atomically(self.chunks_index_path(document_id), [_OFFSET.pack(o) for o in offsets])
        _write_atomically(self.chunks_path(document_id), lines)
        return len(lines)

    def read_chunks(self, document_id: str, start: int = 0, stop: int | None = None) -> list[Chunk]:
        """Chunks ``start`` to ``stop``: seeks to them with the index, so a batch decodes its
        own lines only, however far into the document it starts."""
        offsets = self._chunk_offsets(document_id)
        with self.chunks_path(document_id).open("rb") as handle:
            if offsets is None or offsets[-1] != os.fstat(handle.fileno()).st_size:
                # Chunked before the index existed (or a crash left one of another run).
                return self._scan_chunks(document_id, start, stop)
            count = len(offsets) - 1
            stop = count if stop is None else min(stop, count)
            if start >= stop:
                return []
            handle.seek(offsets[start])
            raw = handle.read(offsets[stop] - offsets[start])
        return [Chunk(**json.loads(line)) for line in raw.splitlines() if line.strip()]

    def _chunk_offsets(self, document_id: str) -> list[int] | None:
        try:
            packed = self.chunks_index_path(document_id).read_bytes()
        except FileNotFoundError:
            return None
        return [value for (value,) in _OFFSET.iter_unpack(packed)]

    def _scan_chunks(self, document_id: str, start: int, stop: int | None) -> list[Chunk]:
        chunks: list[Chunk] = []
        for position, row in enumerate(read_jsonl(self.chunks_path(document_id))):
            if position < start:
                continue
            if stop is not None and position >= stop:
                break
            chunks.append(Chunk(**row))
        return chunks

    def promote_artifacts(self, document_id: str, staged_key: str) -> None:
        """Make the artifacts kept under ``staged_key`` (a new version's) the document's own,
        replacing the old version's. Each piece is moved once, so a retry after a crash
        finishes the move without touching what already moved."""
        staged = self.artifact_dir(staged_key)
        target = self.artifact_dir(document_id)
        for name in ("pages", "chunks.idx", "chunks.jsonl"):
            source = staged / name
            if not source.exists():
                continue  # moved by an earlier attempt
            destination = target / name
            if destination.is_dir():
                shutil.rmtree(destination)
            destination.unlink(missing_ok=True)
            source.rename(destination)
        shutil.rmtree(staged, ignore_errors=True)

    def remove_document(self, document_id: str, stored_name: str) -> None:
        self.upload_path(stored_name).unlink(missing_ok=True)
        self.remove_artifacts(document_id)

    def remove_artifacts(self, document_id: str) -> None:
        """Everything extracted from a document; needs only its id, not its row."""
        shutil.rmtree(self.artifact_dir(document_id), ignore_errors=True)


def write_jsonl(path: Path, rows: Iterable[dict[str, Any]]) -> None:
    _write_atomically(path, (_jsonl_line(row) for row in rows))


def _jsonl_line(row: dict[str, Any]) -> bytes:
    return json.dumps(row, ensure_ascii=False).encode("utf-8") + b"\n"


def _write_atomically(path: Path, pieces: Iterable[bytes]) -> None:
    # Write then rename, so a crash mid-write never leaves a half file a retry would trust.
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    with partial.open("wb") as handle:
        for piece in pieces:
            handle.write(piece)
        handle.flush()
        os.fsync(handle.fileno())
    partial.replace(path)


def read_jsonl(path: Path) -> Iterator[dict[str, Any]]:
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                yield json.loads(line)
