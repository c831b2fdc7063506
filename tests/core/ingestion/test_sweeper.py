"""core/ingestion/sweeper.py: files no document row owns are removed once old enough,
nothing else is.

Real files on disk and a real database of each kind. Ages are made by sweeping at a ``now``
in the future, since a file's change time (which the sweeper also reads) cannot be set back.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlmodel import SQLModel

from core.db import make_engine
from core.ingestion import records
from core.ingestion.storage import DocumentStorage, write_jsonl
from core.ingestion.sweeper import run_sweeper, sweep
from core.ingestion.tables import Document, FileProcessingTask
from core.search.embeddings import Embedder
from core.settings import Settings
from tests.helpers import api_client, until

MIN_AGE = 600.0
LATER = 3 * MIN_AGE  # sweeping this far ahead, a file made now is older than MIN_AGE


def storage_in(root: Path) -> DocumentStorage:
    storage = DocumentStorage(uploads_dir=root / "uploads", artifacts_dir=root / "artifacts")
    storage.uploads_dir.mkdir(parents=True)
    storage.artifacts_dir.mkdir(parents=True)
    return storage


def touch(path: Path, *, fresh: bool = False) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"%PDF-1.4 leftover")
    if fresh:  # still being written when the sweep runs
        future = time.time() + LATER
        os.utime(path, (future, future))
    return path


def owned_document(engine: Engine, stored_name: str) -> Document:
    document = Document(filename="a.pdf", stored_name=stored_name, size_bytes=1, sha256="b" * 64)
    task = FileProcessingTask(document_id=document.id, workflow_id="ingest-x")
    records.create_document_and_task(engine, document=document, task=task)
    return document


def test_only_old_files_that_no_row_owns_are_swept(engine: Engine, tmp_path: Path) -> None:
    storage = storage_in(tmp_path)
    document = owned_document(engine, "owned.pdf")
    owned_upload = touch(storage.upload_path("owned.pdf"))
    orphan_upload = touch(storage.upload_path("orphan.pdf"))
    fresh_orphan = touch(storage.upload_path("arriving.pdf"), fresh=True)
    stale_partial = touch(storage.uploads_dir / "cut-off.pdf.partial")
    upload_in_flight = touch(storage.uploads_dir / "streaming.pdf.partial", fresh=True)

    owned_pages = storage.pages_path(document.id, 1)
    write_jsonl(owned_pages, [{"page": 1, "text": "kept"}])
    crashed_write = touch(owned_pages.with_name("000026.partial"))
    write_in_flight = touch(owned_pages.with_name("000051.partial"), fresh=True)
    orphan_dir = storage.artifact_dir("deleted-document")
    touch(orphan_dir / "pages" / "000001.jsonl")
    busy_orphan_dir = storage.artifact_dir("being-written")
    touch(busy_orphan_dir / "pages" / "000001.jsonl")
    touch(busy_orphan_dir / "chunks.partial", fresh=True)

    result = sweep(engine, storage, min_age_s=MIN_AGE, now=time.time() + LATER)

    assert sorted(result.uploads) == [orphan_upload]
    assert sorted(result.partials) == sorted([stale_partial, crashed_write])
    assert result.artifact_dirs == [orphan_dir]
    for gone in (orphan_upload, stale_partial, crashed_write, orphan_dir):
        assert not gone.exists(), gone
    for kept in (owned_upload, fresh_orphan, upload_in_flight, owned_pages, write_in_flight):
        assert kept.is_file(), kept
    assert busy_orphan_dir.is_dir()


def test_nothing_is_swept_before_the_minimum_age(engine: Engine, tmp_path: Path) -> None:
    storage = storage_in(tmp_path)
    orphan = touch(storage.upload_path("orphan.pdf"))
    partial = touch(storage.uploads_dir / "x.pdf.partial")
    touch(storage.artifact_dir("gone") / "chunks.jsonl")
    result = sweep(engine, storage, min_age_s=MIN_AGE)
    assert result.removed == 0
    assert orphan.exists() and partial.exists() and storage.artifact_dir("gone").exists()


def test_missing_folders_sweep_nothing(engine: Engine, tmp_path: Path) -> None:
    storage = DocumentStorage(uploads_dir=tmp_path / "no-up", artifacts_dir=tmp_path / "no-art")
    assert sweep(engine, storage, min_age_s=MIN_AGE).removed == 0


async def test_a_failed_sweep_is_tried_again(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # A database that cannot be read yet (here: no tables) must not end the sweeper.
    engine = make_engine(f"sqlite:///{tmp_path / 'empty.db'}")
    storage = storage_in(tmp_path)
    orphan = touch(storage.upload_path("orphan.pdf"))
    caplog.set_level(logging.WARNING, logger="docchat.sweeper")
    sweeper = asyncio.create_task(run_sweeper(engine, storage, interval_s=0.05, min_age_s=0.01))
    try:
        await until(lambda: "sweeping orphaned files failed" in caplog.text, within=20)
        assert orphan.exists() and not sweeper.done()
        SQLModel.metadata.create_all(engine)
        await until(lambda: not orphan.exists(), within=20)
    finally:
        sweeper.cancel()
        engine.dispose()


async def test_the_api_sweeps_while_it_runs(settings: Settings, embedder: Embedder) -> None:
    settings.sweep_interval_minutes = settings.sweep_min_age_minutes = 0.005  # 0.3 s
    orphan = touch(settings.uploads_dir / "left-by-a-crash.pdf")
    orphan_dir = settings.artifacts_dir / "a-deleted-document"
    touch(orphan_dir / "chunks.jsonl")
    async with api_client(settings, embedder):
        await until(lambda: not orphan.exists() and not orphan_dir.exists(), within=20)
