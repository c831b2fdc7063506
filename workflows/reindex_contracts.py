"""Plain data shared by the re-index workflows, their activities and their clients.

As for ingestion, only ids and counts travel through history: the pages come from
``artifacts/``, the chunks and vectors go straight to the target version's collection.
"""

from __future__ import annotations

from dataclasses import dataclass, field

REINDEX_WORKFLOW = "ReindexIndex"
REINDEX_DOCUMENT_WORKFLOW = "ReindexDocument"
# One re-index at a time per install: its workflow id is fixed (continue-as-new keeps it).
REINDEX_WORKFLOW_ID = "reindex-index"


def reindex_workflow_id(task_queue: str) -> str:
    """The one re-index of a deployment. Deployments that share a Temporal namespace are told
    apart by their task queue (as the tests' stacks are), so each gets its own."""
    return f"{REINDEX_WORKFLOW_ID}-{task_queue}"


REINDEX_PROGRESS_QUERY = "progress"


class ReindexSignal:
    PAUSE = "pause"
    RESUME = "resume"
    CANCEL = "cancel"
    RETRY_FAILED = "retry_failed"


class ReindexActivity:
    COUNT = "reindex_count_documents"
    LIST = "reindex_list_documents"
    DOCUMENT = "reindex_document"
    SWAP = "reindex_swap"
    DROP = "reindex_drop_target"


class ReindexStatus:
    RUNNING = "running"
    PAUSED = "paused"
    # The pass is over but some documents failed: the swap waits for a retry or a cancel.
    WAITING_FOR_RETRY = "waiting_for_retry"
    SWAPPING = "swapping"
    COMPLETED = "completed"
    CANCELLED = "cancelled"


def document_workflow_id(version: str, document_id: str) -> str:
    return f"reindex-{version}-{document_id}"


@dataclass
class ReindexOptions:
    # Documents rebuilt at once (child workflows in flight): the sliding window.
    window: int = 4
    # Document ids per listing page.
    page_size: int = 100
    # Documents one run handles before it continues as new (history stays small).
    documents_per_run: int = 500
    max_attempts: int = 3
    heartbeat_timeout_seconds: float = 30.0


@dataclass
class Cursor:
    """Where the listing got to: documents are listed by (updated_at, id), so a document
    that finishes ingesting during the re-index comes after the cursor and is rebuilt too."""

    updated_at: str = ""
    document_id: str = ""


@dataclass
class FailedDocument:
    document_id: str
    error: str


@dataclass
class ReindexProgress:
    version: str = ""
    previous_version: str = ""
    status: str = ReindexStatus.RUNNING
    documents_total: int = 0
    documents_done: int = 0
    chunks_done: int = 0
    # Estimated from the current index's chunk counts, corrected as each document is rebuilt.
    chunks_total: int = 0
    failed: list[FailedDocument] = field(default_factory=list)
    started_at: str = ""
    finished_at: str = ""
    paused_seconds: float = 0.0
    runs: int = 1
    swapped: bool = False


@dataclass
class ReindexInput:
    version: str
    collection: str
    options: ReindexOptions = field(default_factory=ReindexOptions)
    # Carried over by continue-as-new.
    progress: ReindexProgress | None = None
    cursor: Cursor = field(default_factory=Cursor)
    paused: bool = False


@dataclass
class CountResult:
    documents: int
    chunks: int
    active_version: str = ""


@dataclass
class ListInput:
    cursor: Cursor
    limit: int


@dataclass
class ListedDocument:
    document_id: str
    updated_at: str


@dataclass
class ListResult:
    documents: list[ListedDocument]


@dataclass
class DocumentInput:
    document_id: str
    version: str
    collection: str
    options: ReindexOptions = field(default_factory=ReindexOptions)


@dataclass
class DocumentResult:
    chunks: int
    previous_chunks: int
    # The document was deleted meanwhile: nothing to rebuild.
    skipped: bool = False
