"""Persistence of documents and their processing tasks: small keyword-only functions."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from core.db import session_scope
from core.errors import ConflictError
from core.ingestion.tables import (
    Document,
    DocumentStatus,
    FileProcessingTask,
    ProcessingState,
    ProcessingStatus,
    ProcessingStep,
    TaskProgressBase,
    utcnow,
)
from workflows.contracts import Progress, overall_progress, public_status, task_state

_DOCUMENT_STATUS_FOR = {
    ProcessingState.COMPLETED: DocumentStatus.READY,
    ProcessingState.FAILED: DocumentStatus.FAILED,
    ProcessingState.WAITING_FOR_RETRY: DocumentStatus.FAILED,
    ProcessingState.CANCELLED: DocumentStatus.CANCELLED,
}


# The workflow's progress fields that the task row mirrors under the same names.
MIRRORED_FIELDS = tuple(TaskProgressBase.model_fields)


def create_document_and_task(
    engine: Engine, *, document: Document, task: FileProcessingTask
) -> None:
    with session_scope(engine) as session:
        session.add(document)
        session.flush()
        session.add(task)
        session.commit()


def get_task(engine: Engine, task_id: str) -> FileProcessingTask | None:
    with session_scope(engine) as session:
        return session.get(FileProcessingTask, task_id)


def get_document(engine: Engine, document_id: str) -> Document | None:
    with session_scope(engine) as session:
        return session.get(Document, document_id)


def get_owned_document(engine: Engine, document_id: str, *, owner: str) -> Document | None:
    """The document, if ``owner`` owns it: the one owner check of documents. Another
    principal's document reads as missing, so that ids cannot be probed."""
    document = get_document(engine, document_id)
    return document if document is not None and document.owner == owner else None


def find_document_by_hash(
    engine: Engine, *, owner: str, sha256: str
) -> tuple[Document, FileProcessingTask | None] | None:
    with session_scope(engine) as session:
        document = session.exec(
            select(Document).where(Document.owner == owner).where(Document.sha256 == sha256)
        ).first()
    if document is None:
        return None
    return document, latest_task_for(engine, document.id)


def latest_task_for(engine: Engine, document_id: str) -> FileProcessingTask | None:
    with session_scope(engine) as session:
        statement = (
            select(FileProcessingTask)
            .where(FileProcessingTask.document_id == document_id)
            .order_by(col(FileProcessingTask.created_at).desc())
        )
        return session.exec(statement).first()


def list_documents(engine: Engine, *, owner: str, limit: int, offset: int) -> Sequence[Document]:
    with session_scope(engine) as session:
        statement = (
            select(Document)
            .where(Document.owner == owner)
            .order_by(col(Document.created_at).desc())
            .offset(offset)
            .limit(limit)
        )
        return session.exec(statement).all()


def list_tasks(
    engine: Engine, *, owner: str, states: Sequence[ProcessingState]
) -> Sequence[FileProcessingTask]:
    with session_scope(engine) as session:
        statement = (
            select(FileProcessingTask)
            .where(FileProcessingTask.owner == owner)
            .where(col(FileProcessingTask.state).in_(list(states)))
            .order_by(col(FileProcessingTask.created_at))
        )
        return session.exec(statement).all()


# The counts activities write as their batches end; the workflow's own record sets them exactly.
_NEVER_BACK = frozenset(
    {"pages_extracted", "extraction_progress", "chunks_embedded", "vectorization_progress"}
)


def update_task_step(engine: Engine, task_id: str, **fields: Any) -> None:
    """Write one step's progress; the overall percentage follows from the four step fields."""
    with session_scope(engine) as session:
        task = _task(session, task_id)
        for name, value in fields.items():
            if name in _NEVER_BACK:
                # Batches that run at once finish in any order: a batch that ends after a
                # later one must not take the row's progress back.
                value = max(value, getattr(task, name) or 0)
            setattr(task, name, value)
        now = utcnow()
        set_state(task, ProcessingState.RUNNING)
        task.started_at = task.started_at or now
        task.updated_at = now
        task.progress_percentage = overall_progress(
            task.upload_progress,
            task.extraction_progress,
            task.chunking_progress,
            task.vectorization_progress,
        )
        session.add(task)
        session.commit()


def record_progress(
    engine: Engine, task_id: str, progress: Progress, *, replacement: bool = False
) -> None:
    """Mirror the workflow's own state on the row (at failures, resumes and the end). A new
    version of a document (``replacement``) leaves the document row alone: it describes the
    version search shows, and ``commit_replacement`` moves it to the new one."""
    with session_scope(engine) as session:
        task = session.get(FileProcessingTask, task_id)
        if task is None:
            return  # deleted while its workflow was winding down: nothing left to mirror
        task.current_step = ProcessingStep(progress.current_step)
        state = set_state(
            task, ProcessingState(task_state(progress.status, retryable=progress.retryable))
        )
        for name in MIRRORED_FIELDS:
            setattr(task, name, getattr(progress, name))
        now = utcnow()
        task.updated_at = now
        if state in _DOCUMENT_STATUS_FOR:
            task.completed_at = now
        else:
            task.completed_at = None
        session.add(task)
        document = None if replacement else session.get(Document, task.document_id)
        if document is not None:
            document.status = _DOCUMENT_STATUS_FOR.get(state, DocumentStatus.PROCESSING)
            document.page_count = progress.page_count
            document.chunk_count = progress.chunk_count
            document.updated_at = now
            session.add(document)
        session.commit()


def start_replacement(
    engine: Engine, *, document_id: str, task: FileProcessingTask, stored_name: str
) -> int:
    """Mark ``document_id`` as being replaced and add ``task``, the new version's task, in one
    transaction; return the new version's generation. Only a ready document takes a new
    version: not while its ingestion (or another new version) runs, nor once it failed."""
    with session_scope(engine) as session:
        document = session.get(Document, document_id, with_for_update=True)
        if document is None:
            raise LookupError(f"document {document_id} does not exist")
        if document.replacing or document.status != DocumentStatus.READY:
            raise ConflictError(
                f"Document {document_id} is not ready for a new version: it is being "
                "ingested or replaced, or it failed (upload it anew).",
                error_code="document_busy",
                details={"document_id": document_id, "status": document.status.value},
            )
        document.replacing = True
        document.pending_stored_name = stored_name
        document.updated_at = utcnow()
        session.add(document)
        session.add(task)
        generation = document.generation + 1
        session.commit()
    return generation


def commit_replacement(
    engine: Engine,
    *,
    document_id: str,
    generation: int,
    filename: str,
    stored_name: str,
    size_bytes: int,
    sha256: str,
    page_count: int | None,
    chunk_count: int | None,
) -> str | None:
    """Make ``generation`` the version search shows; return the old version's stored file
    name (None when it was committed before: a retried commit changes nothing)."""
    with session_scope(engine) as session:
        document = session.get(Document, document_id, with_for_update=True)
        if document is None:
            raise LookupError(f"document {document_id} no longer exists")
        if document.generation >= generation:
            return None
        old = document.stored_name
        document.generation = generation
        document.filename = filename
        document.stored_name = stored_name
        document.size_bytes = size_bytes
        document.sha256 = sha256
        document.pending_stored_name = None
        document.page_count = page_count
        document.chunk_count = chunk_count
        document.status = DocumentStatus.READY
        document.updated_at = utcnow()
        session.add(document)
        session.commit()
    return old


def end_replacement(engine: Engine, document_id: str) -> None:
    """The document has vectors of one version again: searches need not filter it."""
    with session_scope(engine) as session:
        document = session.get(Document, document_id)
        if document is not None and document.replacing:
            document.replacing = False
            document.pending_stored_name = None
            session.add(document)
            session.commit()


def delete_task(engine: Engine, task_id: str) -> None:
    with session_scope(engine) as session:
        task = session.get(FileProcessingTask, task_id)
        if task is not None:
            session.delete(task)
            session.commit()


def replaced_generations(engine: Engine, owner: str | None) -> list[tuple[str, int]]:
    """``(document id, generation shown)`` of the documents whose vectors of another version
    may be in the store now (``owner``'s only, unless None)."""
    with session_scope(engine) as session:
        statement = select(Document.id, Document.generation).where(
            col(Document.replacing).is_(True)
        )
        if owner is not None:
            statement = statement.where(Document.owner == owner)
        return [(str(row[0]), int(row[1])) for row in session.exec(statement).all()]


def set_state(task: FileProcessingTask, state: ProcessingState) -> ProcessingState:
    """Set the row's lifecycle ``state`` and, from it and the step, the seed's ``status``."""
    task.state = state
    task.status = ProcessingStatus(public_status(state.value, task.current_step.value))
    return state


def delete_document_rows(engine: Engine, document_id: str) -> None:
    with session_scope(engine) as session:
        for task in session.exec(
            select(FileProcessingTask).where(FileProcessingTask.document_id == document_id)
        ):
            session.delete(task)
        session.flush()
        document = session.get(Document, document_id)
        if document is not None:
            session.delete(document)
        session.commit()


def _task(session: Session, task_id: str) -> FileProcessingTask:
    task = session.get(FileProcessingTask, task_id)
    if task is None:
        raise LookupError(f"processing task {task_id} does not exist")
    return task
