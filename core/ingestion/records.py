"""Persistence of documents and their processing tasks: small keyword-only functions."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from core.db import session_scope
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


def update_task_step(engine: Engine, task_id: str, **fields: Any) -> None:
    """Write one step's progress; the overall percentage follows from the four step fields."""
    with session_scope(engine) as session:
        task = _task(session, task_id)
        for name, value in fields.items():
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


def record_progress(engine: Engine, task_id: str, progress: Progress) -> None:
    """Mirror the workflow's own state on the row (at failures, resumes and the end)."""
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
        document = session.get(Document, task.document_id)
        if document is not None:
            document.status = _DOCUMENT_STATUS_FOR.get(state, DocumentStatus.PROCESSING)
            document.page_count = progress.page_count
            document.chunk_count = progress.chunk_count
            document.updated_at = now
            session.add(document)
        session.commit()


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
