"""Public response shapes."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

# SQLModel exports its config type from here only; the model below must use that type.
from sqlmodel._compat import SQLModelConfig

from api.envelope import Envelope
from core.ingestion.tables import Document, ProcessingState, ProcessingStatus, TaskProgressBase

# The seed's ProcessingStatus values (plus "cancelled") and docchat's lifecycle next to them,
# mapped by ``workflows.contracts.public_status``.
STATUS_DESCRIPTION = "The seed's stage of the task (`pending` ... `completed`, `failed`)."
STATE_DESCRIPTION = (
    "docchat's lifecycle: `queued` (no worker has the step yet), `running`, `retrying` "
    "(see `attempt`, `last_failure`), `waiting_for_retry` (failed, resumes on a retry), "
    "`failed` (for good), `completed`, `cancelled`."
)


class UploadAccepted(BaseModel):
    task_id: str
    document_id: str
    workflow_id: str
    filename: str
    size_bytes: int
    status: ProcessingStatus = Field(description=STATUS_DESCRIPTION)
    state: ProcessingState = Field(description=STATE_DESCRIPTION)
    duplicate: bool
    status_url: str
    events_url: str


class UploadEnvelope(Envelope[UploadAccepted]):
    """The seed's client reads ``result.task_id``, so the ids are also at the top level."""

    task_id: str
    document_id: str


class DocumentPublic(BaseModel):
    id: str
    filename: str
    size_bytes: int
    sha256: str
    status: str
    page_count: int | None
    chunk_count: int | None
    vector_count: int | None = None
    task_id: str | None = None
    # The version search shows (0: the first upload) and whether a new one is being made.
    generation: int = 0
    replacing: bool = False
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(
        cls, document: Document, *, task_id: str | None = None, vector_count: int | None = None
    ) -> DocumentPublic:
        return cls(
            id=document.id,
            filename=document.filename,
            size_bytes=document.size_bytes,
            sha256=document.sha256,
            status=document.status.value,
            page_count=document.page_count,
            chunk_count=document.chunk_count,
            vector_count=vector_count,
            task_id=task_id,
            generation=document.generation,
            replacing=document.replacing,
            created_at=document.created_at,
            updated_at=document.updated_at,
        )


class TaskStatus(TaskProgressBase):
    """A task's public status: its progress fields (``TaskProgressBase``, the same as its
    row's) and what the status read adds to them."""

    # Every field is always sent: the schema says so, defaults of the table notwithstanding.
    model_config = SQLModelConfig(
        from_attributes=True, json_schema_serialization_defaults_required=True
    )

    task_id: str
    document_id: str
    workflow_id: str
    status: ProcessingStatus = Field(description=STATUS_DESCRIPTION)
    state: ProcessingState = Field(description=STATE_DESCRIPTION)
    current_step: str
    retryable: bool
    attempt: int | None
    last_failure: str | None
    created_at: str | None
    started_at: str | None
    updated_at: str | None
    completed_at: str | None
    source: str


class RetryAllResult(BaseModel):
    resumed: list[str]
    skipped: list[dict[str, str]]


class ComponentHealth(BaseModel):
    ok: bool
    # Why a component is down: for authenticated and loopback callers only (and the logs).
    detail: str | None = None


class Health(BaseModel):
    status: str
    components: dict[str, ComponentHealth]
    # Addresses and deployment facts: for authenticated and loopback callers only.
    settings: dict[str, Any] | None = None
    # The active index version against the configured settings (core.search.index_versions):
    # ``matches`` false comes with ``differences`` and the ``action`` to take (re-index).
    index: dict[str, Any] | None = None
