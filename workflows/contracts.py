"""Plain data shared by the ingestion workflow, its activities and its clients.

Only references and counts travel through workflow history: document text, chunks and vectors
stay on disk and in the stores, found again by ``document_id``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

WORKFLOW_NAME = "IngestDocument"
PROGRESS_QUERY = "progress"
RETRY_SIGNAL = "retry"


class Activity:
    VALIDATE = "validate_upload"
    EXTRACT = "extract_pages"
    CHUNK = "chunk_document"
    VECTORIZE = "vectorize_chunks"
    RECORD_STATE = "record_task_state"
    DISCARD_VECTORS = "discard_vectors"
    DISCARD_DOCUMENT = "discard_document"
    # A new version of a document (``IngestInput.replacement``): make it the one search shows,
    # then remove the old version's vectors; or, failed or cancelled, remove the new one's.
    COMMIT_REPLACEMENT = "commit_replacement"
    FINISH_REPLACEMENT = "finish_replacement"
    DISCARD_REPLACEMENT = "discard_replacement"


class Step:
    UPLOAD = "upload"
    EXTRACT = "extract"
    CHUNK = "chunk"
    VECTORIZE = "vectorize"
    DONE = "done"


class Status:
    """The lifecycle words the workflow keeps in ``Progress.status`` (recorded in histories)."""

    QUEUED = "queued"
    RUNNING = "running"
    RETRYING = "retrying"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


class State(Status):
    """A task's lifecycle as clients read it in ``state``: the workflow's words, with a failed
    task that waits (in its open workflow) for a retry told apart from one that failed for good.
    """

    WAITING_FOR_RETRY = "waiting_for_retry"


class PublicStatus:
    """The seed's ``ProcessingStatus`` values that ``status`` carries, plus ``cancelled``."""

    PENDING = "pending"
    UPLOADING = "uploading"
    EXTRACTING = "extracting"
    CHUNKING = "chunking"
    VECTORIZING = "vectorizing"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


_STATUS_OF_STEP = {
    Step.UPLOAD: PublicStatus.UPLOADING,
    Step.EXTRACT: PublicStatus.EXTRACTING,
    Step.CHUNK: PublicStatus.CHUNKING,
    Step.VECTORIZE: PublicStatus.VECTORIZING,
    # Only a completed task is at "done"; anything else there is finishing its last step.
    Step.DONE: PublicStatus.VECTORIZING,
}


def task_state(status: str, *, retryable: bool) -> str:
    """The ``state`` of a task whose workflow says ``status`` (``Progress.status``)."""
    if status == Status.FAILED and retryable:
        return State.WAITING_FOR_RETRY
    return status


def public_status(state: str, current_step: str) -> str:
    """The seed's ``status`` for a task in ``state`` at ``current_step``: the one mapping.

    Ends map to themselves (a failure waiting for a retry is ``failed`` too: the seed's
    "failed tasks can be retried"); a task no worker has started is ``pending``; a task that
    runs, retries or waits for a worker between two batches is in its step's stage.
    """
    if state in (State.COMPLETED, State.CANCELLED, State.FAILED):
        return state
    if state == State.WAITING_FOR_RETRY:
        return PublicStatus.FAILED
    if state == State.QUEUED and current_step == Step.UPLOAD:
        return PublicStatus.PENDING
    return _STATUS_OF_STEP.get(current_step, PublicStatus.PENDING)


def workflow_id_for(task_id: str) -> str:
    return f"ingest-{task_id}"


def overall_progress(upload: float, extraction: float, chunking: float, vectors: float) -> float:
    """Each step owns a quarter: upload 0-25, extract 25-50, chunk 50-75, vectors 75-100."""
    return round((upload + extraction + chunking + vectors) / 4, 2)


@dataclass
class IngestOptions:
    extract_pages_per_activity: int = 25
    vectorize_chunks_per_activity: int = 64
    max_attempts: int = 5
    heartbeat_timeout_seconds: float = 30.0
    schedule_to_start_timeout_seconds: float = 6 * 3600.0
    failed_retention_hours: float = 24 * 7.0
    # How long a replaced document's old vectors outlive the switch to the new version: a
    # search that read which version is current just before the switch still finds its
    # points (docs/replace.md).
    replace_grace_seconds: float = 5.0
    # How many extract (and OCR) batches, and how many vectorize batches, of one document run
    # at once, spread over every worker polling their queue. 1 (the default of payloads that
    # predate the fields) runs them one after another.
    extract_parallel_batches: int = 1
    vectorize_parallel_batches: int = 1
    # The task queues text work (extract, OCR, chunk) and embedding (vectorize) are scheduled
    # on; None: the workflow's own queue. Chosen per run, in the workflow.
    text_task_queue: str | None = None
    embedding_task_queue: str | None = None
    # Past this many history events (0: never) the run continues as a new run of the same
    # workflow id, between batches, so a huge document's history stays bounded.
    continue_as_new_after_events: int = 0


@dataclass
class CarriedState:
    """What a run hands the next one when it continues as new: counts and batch ids only."""

    progress: Progress
    characters_extracted: int
    ocr_pages: int
    extracted_batches: list[int]
    embedded_batches: list[int]


@dataclass
class Replacement:
    """A new file for an existing document: its own upload and artifacts until committed.
    ``generation`` numbers the document's versions (the first upload is 0)."""

    generation: int
    stored_name: str
    filename: str
    size_bytes: int
    sha256: str

    def artifacts_key(self, document_id: str) -> str:
        """Where this version's artifacts are kept until it is committed (inside the
        document's folder, so removing the document removes them)."""
        return f"{document_id}/generations/{self.generation}"


@dataclass
class IngestInput:
    task_id: str
    document_id: str
    options: IngestOptions = field(default_factory=IngestOptions)
    replacement: Replacement | None = None
    # Set only by a run that continued as new (IngestOptions.continue_as_new_after_events).
    carried: CarriedState | None = None


@dataclass
class ValidateInput:
    task_id: str
    document_id: str
    replacement: Replacement | None = None


@dataclass
class ValidateResult:
    page_count: int


@dataclass
class ExtractInput:
    task_id: str
    document_id: str
    first_page: int
    last_page: int
    page_count: int
    # Characters the earlier batches extracted, for the document's text cap: carried by the
    # workflow so a batch never re-reads earlier pages. None when scheduled by a workflow that
    # predates the field (the activity then counts them itself). Adding it is replay-safe:
    # replay compares the commands a workflow issues, never an activity's input payload.
    characters_before: int | None = None
    # Pages the earlier batches OCRed, for the document's OCR page cap; carried the same way.
    ocr_pages_before: int | None = None
    replacement: Replacement | None = None


@dataclass
class ExtractResult:
    pages: int
    characters: int
    ocr_pages: int = 0


@dataclass
class ChunkInput:
    task_id: str
    document_id: str
    replacement: Replacement | None = None


@dataclass
class ChunkResult:
    chunk_count: int


@dataclass
class VectorizeInput:
    task_id: str
    document_id: str
    start: int
    stop: int
    chunk_count: int
    replacement: Replacement | None = None


@dataclass
class VectorizeResult:
    vectors: int
    # Of ``vectors``, how many were embedded now and how many reused from the embedding cache
    # (core/search/embedding_cache.py). Results of older workers have neither: 0.
    embedded: int = 0
    reused: int = 0


@dataclass
class StepProgress:
    """How far a running step got inside its activity, sent as the activity's heartbeat
    details and read back by status reads through the workflow's description. ``done`` and
    ``total`` count the whole document: pages for ``extract`` and ``chunk``, chunks for
    ``vectorize``."""

    step: str
    done: int
    total: int
    # Where this activity's batch began (``done`` counts from the document's start): with
    # batches in parallel, what each running batch adds is ``done - start``. None from older
    # workers.
    start: int | None = None

    @classmethod
    def from_details(cls, details: object) -> StepProgress | None:
        """The decoded heartbeat details, if they are a step's progress (older workers sent
        other shapes, such as a bare count)."""
        if not isinstance(details, dict):
            return None
        step, done, total = details.get("step"), details.get("done"), details.get("total")
        start = details.get("start")
        if isinstance(step, str) and isinstance(done, int) and isinstance(total, int):
            return cls(step, done, total, start if isinstance(start, int) else None)
        return None


@dataclass
class Progress:
    """The workflow's view of its task, returned by the ``progress`` query.

    ``status`` is the lifecycle (a ``Status`` word, recorded in histories as such); clients
    read it as ``state`` and the seed's ``status`` derived from it by ``public_status``.
    """

    status: str = Status.QUEUED
    current_step: str = Step.UPLOAD
    upload_progress: float = 0.0
    extraction_progress: float = 0.0
    chunking_progress: float = 0.0
    vectorization_progress: float = 0.0
    progress_percentage: float = 0.0
    page_count: int | None = None
    pages_extracted: int = 0
    chunk_count: int | None = None
    chunks_embedded: int = 0
    error_code: str | None = None
    error_message: str | None = None
    retryable: bool = False
    resumes: int = 0
    # Chunks whose vectors came from the embedding cache instead of the model.
    chunks_reused: int = 0
    # Batches of the running step in flight on the parallel path, by where each starts (its
    # heartbeats' ``StepProgress.start``); None on the one-at-a-time path. A status read
    # counts only these batches' heartbeats: a finished batch's last heartbeat, still listed
    # by a describe read just before, is already in the counts above.
    running_batches: list[int] | None = None

    def refresh_overall(self) -> None:
        self.progress_percentage = overall_progress(
            self.upload_progress,
            self.extraction_progress,
            self.chunking_progress,
            self.vectorization_progress,
        )


@dataclass
class TaskState:
    """What the ``record_task_state`` activity writes to the task's SQL row."""

    task_id: str
    document_id: str
    progress: Progress
    # A new version of the document: its row keeps the current version's status and counts
    # until the new one is committed (``Activity.COMMIT_REPLACEMENT``).
    replacement: bool = False
