"""SQL tables (SQLModel) and their public shapes.

The progress fields of a task are declared once, in ``TaskProgressBase``: the table
(``FileProcessingTask``), the public schema (``api.schemas.TaskStatus``) and the list of fields
the row mirrors from the workflow's ``Progress`` (``records.MIRRORED_FIELDS``) all derive from it,
after the ``ItemBase``/``Item(table=True)``/``ItemPublic`` family of full-stack-fastapi-template.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from enum import StrEnum

from sqlalchemy import UniqueConstraint
from sqlmodel import Field, SQLModel

from workflows.contracts import PublicStatus, State, Step


def utcnow() -> datetime:
    return datetime.now(UTC)


def new_id() -> str:
    return uuid.uuid4().hex


class ProcessingStatus(StrEnum):
    """The seed's stages of a task (``workflows.contracts.PublicStatus``), plus ``cancelled``."""

    # The strings are defined once, in the workflow's contracts.
    PENDING = PublicStatus.PENDING
    UPLOADING = PublicStatus.UPLOADING
    EXTRACTING = PublicStatus.EXTRACTING
    CHUNKING = PublicStatus.CHUNKING
    VECTORIZING = PublicStatus.VECTORIZING
    COMPLETED = PublicStatus.COMPLETED
    FAILED = PublicStatus.FAILED
    CANCELLED = PublicStatus.CANCELLED

    @property
    def is_terminal(self) -> bool:
        return self in {ProcessingStatus.COMPLETED, ProcessingStatus.CANCELLED}


class ProcessingState(StrEnum):
    """Where a task stands in its lifecycle (``workflows.contracts.State``); ``queued`` means
    no worker has picked its current step up yet, ``waiting_for_retry`` a failure whose open
    workflow resumes on a retry."""

    QUEUED = State.QUEUED
    RUNNING = State.RUNNING
    RETRYING = State.RETRYING
    WAITING_FOR_RETRY = State.WAITING_FOR_RETRY
    FAILED = State.FAILED
    COMPLETED = State.COMPLETED
    CANCELLED = State.CANCELLED

    @property
    def is_terminal(self) -> bool:
        return self in {ProcessingState.COMPLETED, ProcessingState.CANCELLED}


class ProcessingStep(StrEnum):
    """The step a task is at (``workflows.contracts.Step``)."""

    UPLOAD = Step.UPLOAD
    EXTRACT = Step.EXTRACT
    CHUNK = Step.CHUNK
    VECTORIZE = Step.VECTORIZE
    DONE = Step.DONE


class DocumentStatus(StrEnum):
    PROCESSING = "processing"
    READY = "ready"
    FAILED = "failed"
    CANCELLED = "cancelled"


class Document(SQLModel, table=True):
    # One copy of each content per principal: concurrent uploads of the same bytes race on this.
    __table_args__ = (UniqueConstraint("owner", "sha256", name="uq_document_owner_sha256"),)

    id: str = Field(default_factory=new_id, primary_key=True)
    filename: str = Field(max_length=255)
    stored_name: str = Field(max_length=64)
    content_type: str = "application/pdf"
    size_bytes: int
    sha256: str = Field(index=True, max_length=64)
    owner: str = Field(default="local", index=True, max_length=128)
    status: DocumentStatus = DocumentStatus.PROCESSING
    page_count: int | None = None
    chunk_count: int | None = None
    # Which version of the document search shows (its vectors carry it as ``generation``);
    # each new file (``PUT /docs/{id}/file``) makes the next one.
    generation: int = 0
    # A new version is being made, or the old one's vectors not yet removed: searches hide
    # this document's vectors of any other generation (docs/replace.md).
    replacing: bool = False
    # The new version's upload while it is being made (so no sweep takes it for an orphan).
    pending_stored_name: str | None = Field(default=None, max_length=64)
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


class TaskProgressBase(SQLModel):
    """How far a task got: the workflow's ``Progress`` fields that its row and its public
    status carry under the same names (``status``, ``state`` and ``current_step`` are typed
    apart, as enums of the row and strings of the workflow)."""

    progress_percentage: float = 0.0
    upload_progress: float = 0.0
    extraction_progress: float = 0.0
    chunking_progress: float = 0.0
    vectorization_progress: float = 0.0
    page_count: int | None = None
    pages_extracted: int = 0
    chunk_count: int | None = None
    chunks_embedded: int = 0
    # Of the chunks, those whose vectors came from the embedding cache (not embedded again).
    chunks_reused: int = 0
    error_code: str | None = None
    error_message: str | None = None


class FileProcessingTask(TaskProgressBase, table=True):
    id: str = Field(default_factory=new_id, primary_key=True)
    document_id: str = Field(index=True, foreign_key="document.id")
    workflow_id: str = Field(index=True, max_length=128)
    owner: str = Field(default="local", index=True, max_length=128)
    status: ProcessingStatus = Field(default=ProcessingStatus.PENDING, index=True)
    state: ProcessingState = Field(default=ProcessingState.QUEUED, index=True)
    current_step: ProcessingStep = ProcessingStep.UPLOAD
    created_at: datetime = Field(default_factory=utcnow)
    started_at: datetime | None = None
    updated_at: datetime = Field(default_factory=utcnow)
    completed_at: datetime | None = None
