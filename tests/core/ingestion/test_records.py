"""core/ingestion/records.py, the persistence of documents and processing tasks, on SQLite
and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError

from core.ingestion import records
from core.ingestion.service import _progress_from_row
from core.ingestion.tables import (
    Document,
    DocumentStatus,
    FileProcessingTask,
    ProcessingState,
    ProcessingStatus,
    ProcessingStep,
)
from workflows.contracts import Progress


def new_document(
    engine: Engine, *, owner: str = "alice", sha256: str = "a" * 64
) -> tuple[Document, FileProcessingTask]:
    document = Document(
        filename="report.pdf", stored_name="x.pdf", size_bytes=10, sha256=sha256, owner=owner
    )
    task = FileProcessingTask(document_id=document.id, workflow_id="", owner=owner)
    task.workflow_id = f"ingest-{task.id}"
    records.create_document_and_task(engine, document=document, task=task)
    return document, task


def test_a_document_is_found_for_its_owner_only(engine: Engine) -> None:
    document, _ = new_document(engine, owner="alice")
    mine = records.get_owned_document(engine, document.id, owner="alice")
    assert mine is not None and mine.id == document.id
    # Another principal's document reads as missing, like one that does not exist.
    assert records.get_owned_document(engine, document.id, owner="bob") is None
    assert records.get_owned_document(engine, "missing", owner="alice") is None


def test_the_mirrored_fields_are_the_progress_fields_of_the_workflow() -> None:
    # One vocabulary: every field the row mirrors is a field of the workflow's Progress and a
    # column of the task table, so the row and the workflow cannot drift apart.
    progress_fields = set(Progress.__dataclass_fields__)
    assert set(records.MIRRORED_FIELDS) <= progress_fields
    assert set(records.MIRRORED_FIELDS) <= set(FileProcessingTask.__table__.columns.keys())  # type: ignore[attr-defined]
    assert {"upload_progress", "vectorization_progress", "error_code"} <= set(
        records.MIRRORED_FIELDS
    )


def test_create_and_read_back(engine: Engine) -> None:
    document, task = new_document(engine)
    stored = records.get_document(engine, document.id)
    assert stored is not None and stored.filename == "report.pdf"
    assert stored.status == DocumentStatus.PROCESSING
    row = records.get_task(engine, task.id)
    assert row is not None and row.status == ProcessingStatus.PENDING
    assert row.state == ProcessingState.QUEUED
    assert row.current_step == ProcessingStep.UPLOAD
    # Timestamps come back as the same instant, in UTC, whatever the server's time zone.
    assert row.created_at.tzinfo is not None
    assert row.created_at == task.created_at
    assert records.get_task(engine, "missing") is None


def test_same_bytes_race_on_the_unique_constraint(engine: Engine) -> None:
    document, task = new_document(engine)
    with pytest.raises(IntegrityError):
        new_document(engine)
    new_document(engine, owner="bob")  # another principal may hold the same bytes
    found = records.find_document_by_hash(engine, owner="alice", sha256="a" * 64)
    assert found is not None
    assert found[0].id == document.id and found[1] is not None and found[1].id == task.id
    assert records.find_document_by_hash(engine, owner="carol", sha256="a" * 64) is None


def test_listing_is_per_owner_newest_first(engine: Engine) -> None:
    first, _ = new_document(engine, sha256="1" * 64)
    second, second_task = new_document(engine, sha256="2" * 64)
    new_document(engine, owner="bob", sha256="3" * 64)
    listed = records.list_documents(engine, owner="alice", limit=10, offset=0)
    assert [d.id for d in listed] == [second.id, first.id]
    assert [d.id for d in records.list_documents(engine, owner="alice", limit=1, offset=1)] == [
        first.id
    ]
    records.update_task_step(engine, second_task.id, current_step=ProcessingStep.EXTRACT)
    active = records.list_tasks(
        engine, owner="alice", states=[ProcessingState.RUNNING, ProcessingState.RETRYING]
    )
    assert [t.id for t in active] == [second_task.id]


def test_step_progress_and_mirrored_end(engine: Engine) -> None:
    document, task = new_document(engine)
    records.update_task_step(
        engine,
        task.id,
        current_step=ProcessingStep.EXTRACT,
        upload_progress=100.0,
        extraction_progress=50.0,
    )
    row = records.get_task(engine, task.id)
    assert row is not None
    assert row.state == ProcessingState.RUNNING and row.started_at is not None
    assert row.status == ProcessingStatus.EXTRACTING
    assert row.progress_percentage == pytest.approx(37.5)
    assert datetime.now(UTC) - row.updated_at < timedelta(minutes=1)

    records.record_progress(
        engine,
        task.id,
        Progress(
            status="completed",
            current_step="done",
            upload_progress=100.0,
            extraction_progress=100.0,
            chunking_progress=100.0,
            vectorization_progress=100.0,
            progress_percentage=100.0,
            page_count=3,
            pages_extracted=3,
            chunk_count=7,
            chunks_embedded=7,
        ),
    )
    row = records.get_task(engine, task.id)
    stored = records.get_document(engine, document.id)
    assert row is not None and stored is not None
    assert row.status == ProcessingStatus.COMPLETED and row.completed_at is not None
    assert row.state == ProcessingState.COMPLETED
    assert stored.status == DocumentStatus.READY and stored.chunk_count == 7
    assert records.latest_task_for(engine, document.id) == row

    with pytest.raises(LookupError):
        records.update_task_step(engine, "missing", extraction_progress=1.0)
    records.record_progress(engine, "missing", Progress())  # a deleted task: nothing to mirror


def test_batches_that_end_out_of_order_never_take_the_row_back(engine: Engine) -> None:
    _, task = new_document(engine)
    records.update_task_step(engine, task.id, chunks_embedded=128, vectorization_progress=50.0)
    # An earlier batch that ran at the same time ends later and writes its own, lower, stop.
    records.update_task_step(engine, task.id, chunks_embedded=64, vectorization_progress=25.0)
    row = records.get_task(engine, task.id)
    assert row is not None
    assert (row.chunks_embedded, row.vectorization_progress) == (128, 50.0)


def test_delete_document_rows(engine: Engine) -> None:
    document, task = new_document(engine)
    records.delete_document_rows(engine, document.id)
    assert records.get_document(engine, document.id) is None
    assert records.get_task(engine, task.id) is None


def test_a_retryable_failure_stays_retryable_on_the_row(engine: Engine) -> None:
    # The row is the view when the workflow cannot be asked: it must not make the failure
    # permanent (issue 14, item 8).
    _, task = new_document(engine)
    failed = Progress(
        status="failed",
        current_step="vectorize",
        error_code="step_failed",
        error_message="vector store unreachable",
        retryable=True,
    )
    records.record_progress(engine, task.id, failed)
    row = records.get_task(engine, task.id)
    assert row is not None and row.state == ProcessingState.WAITING_FOR_RETRY
    assert _progress_from_row(row) == failed

    records.record_progress(engine, task.id, Progress(status="failed", retryable=False))
    row = records.get_task(engine, task.id)
    assert row is not None and row.state == ProcessingState.FAILED
    assert _progress_from_row(row).retryable is False
