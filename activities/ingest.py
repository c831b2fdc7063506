"""The ingestion activities. Each is synchronous and runs in the worker's thread pool, so
CPU-heavy work (pypdf, the tokenizer, torch) never blocks the worker's event loop.

Activities heartbeat as they go: a dead worker is noticed by heartbeat timeout, and a
cancellation reaches a running activity at its next heartbeat. Each heartbeat carries how far
the step got (``activities.progress``), which status reads show as progress inside the step.

The text child (pypdf, the splitter) is called a few pages at a time and only returns what it
found; the activity writes the artifacts, and only once its document still exists, so a
cancelled or deleted document's step leaves nothing behind (``core.ingestion.offload``).
"""

from __future__ import annotations

import functools
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field, replace
from typing import ParamSpec, TypeVar

from sqlalchemy import Engine
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.progress import StepBeat, seconds_left
from core.ingestion import extraction, offload, records
from core.ingestion.extraction import ExtractionLimits
from core.ingestion.faults import DocumentFault, FaultCode
from core.ingestion.storage import DocumentStorage
from core.ingestion.tables import Document, ProcessingStep
from core.runtime import Resources
from core.search.embeddings import bundled_model_path, length_sorted_batches
from core.search.vectorstore import VectorStore
from core.texts import Chunk, PageText
from workflows.contracts import (
    Activity,
    ChunkInput,
    ChunkResult,
    ExtractInput,
    ExtractResult,
    Step,
    TaskState,
    ValidateInput,
    ValidateResult,
    VectorizeInput,
    VectorizeResult,
)

P = ParamSpec("P")
R = TypeVar("R")

# About how long one call to the text child extracts: short enough that progress moves at
# least once a second and that documents take turns in the one child, long enough that the
# round trip (about a millisecond) does not matter.
EXTRACT_CALL_SECONDS = 0.5
# How much text one chunking call takes (whole pages, at least one).
CHUNK_CALL_CHARS = 50_000


def permanent_faults(fn: Callable[P, R]) -> Callable[P, R]:
    """Turn document faults into non-retryable, typed application errors."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except DocumentFault as fault:
            raise ApplicationError(
                fault.message, type=fault.code.value, non_retryable=True
            ) from fault
        except LookupError as missing:
            # The task or document was deleted while the workflow ran: nothing left to do.
            raise ApplicationError(
                str(missing), type=FaultCode.FILE_MISSING.value, non_retryable=True
            ) from missing

    return wrapper


@dataclass
class IngestDependencies:
    engine: Engine
    storage: DocumentStorage
    vectors: VectorStore
    embedder: offload.EmbedderConfig
    chunk_tokens: int
    overlap_tokens: int
    max_pages: int
    max_extracted_chars: int
    # Formats and OCR (core/extraction); its max_units/max_chars are max_pages/_chars above.
    formats: ExtractionLimits = field(default_factory=ExtractionLimits)

    def extraction_limits(self) -> ExtractionLimits:
        return replace(self.formats, max_units=self.max_pages, max_chars=self.max_extracted_chars)

    @classmethod
    def from_resources(cls, resources: Resources) -> IngestDependencies:
        settings = resources.settings
        return cls(
            engine=resources.engine,
            storage=resources.storage,
            vectors=resources.vectors,
            embedder=resources.embedder_config(),
            chunk_tokens=settings.chunk_tokens,
            overlap_tokens=settings.chunk_overlap_tokens,
            max_pages=settings.max_pages,
            max_extracted_chars=settings.max_extracted_chars,
            formats=ExtractionLimits.from_settings(settings),
        )


class IngestActivities:
    def __init__(self, deps: IngestDependencies) -> None:
        self._deps = deps

    def _document(self, document_id: str) -> Document:
        document = records.get_document(self._deps.engine, document_id)
        if document is None:
            raise LookupError(f"document {document_id} no longer exists")
        return document

    def _text_child(
        self, beat: Callable[[], object], fn: Callable[P, R], *args: P.args, **kwargs: P.kwargs
    ) -> R:
        """Call ``fn`` in the text child, heartbeating while it waits, within the activity's
        time: a call past it, or abandoned by a cancel, stops the child."""
        watch = offload.Watch(heartbeat=beat, timeout=seconds_left())
        return offload.text_work.run(watch, fn, *args, **kwargs)

    @activity.defn(name=Activity.VALIDATE)
    @permanent_faults
    def validate_upload(self, job: ValidateInput) -> ValidateResult:
        document = self._document(job.document_id)
        records.update_task_step(self._deps.engine, job.task_id, current_step=ProcessingStep.UPLOAD)
        path = self._deps.storage.upload_path(document.stored_name)
        # Format by content and unit count (pages, slides, sections...), in the text child,
        # never here: a hostile file can only take down the child.
        info = self._text_child(
            activity.heartbeat, offload.inspect_document, path, self._deps.extraction_limits()
        )
        records.update_task_step(
            self._deps.engine,
            job.task_id,
            upload_progress=100.0,
            page_count=info.unit_count,
        )
        return ValidateResult(page_count=info.unit_count)

    @activity.defn(name=Activity.EXTRACT)
    @permanent_faults
    def extract_pages(self, job: ExtractInput) -> ExtractResult:
        document = self._document(job.document_id)
        records.update_task_step(
            self._deps.engine, job.task_id, current_step=ProcessingStep.EXTRACT
        )
        path = self._deps.storage.upload_path(document.stored_name)
        # The text cap counts the whole document: what earlier batches found, then this batch
        # page by page, so a decompression bomb stops as soon as it passes the cap.
        # The OCR page cap counts the whole document the same way.
        earlier = job.characters_before
        ocr_earlier = job.ocr_pages_before
        if earlier is None or ocr_earlier is None:
            # Scheduled by a workflow that does not carry the counts yet: count them here.
            earlier, ocr_earlier = self._extracted_before(job.document_id, job.first_page)
        limits = self._deps.extraction_limits()
        beat = StepBeat(Step.EXTRACT, done=job.first_page - 1, total=job.page_count)
        pages: list[PageText] = []
        characters = 0
        while job.first_page + len(pages) <= job.last_page:
            found = self._text_child(
                beat,
                offload.extract_some,
                path,
                job.first_page + len(pages),
                job.last_page,
                limits=limits,
                max_chars=self._deps.max_extracted_chars - earlier - characters,
                ocr_pages_before=ocr_earlier + sum(page.ocr for page in pages),
                seconds=EXTRACT_CALL_SECONDS,
            )
            pages.extend(found)
            characters += sum(len(page.text) for page in found)
            beat.advance(job.first_page + len(pages) - 1)
        self._document(job.document_id)  # deleted meanwhile: write nothing
        self._deps.storage.write_pages(job.document_id, job.first_page, pages)
        if job.last_page == job.page_count:
            # Only the last batch sees the whole document, so whole-document checks live here.
            extraction.require_text(
                self._deps.storage.read_pages(job.document_id),
                extraction.detect_format(path),
                ocr=self._deps.formats.ocr,
            )
        records.update_task_step(
            self._deps.engine,
            job.task_id,
            pages_extracted=job.last_page,
            extraction_progress=round(100.0 * job.last_page / job.page_count, 2),
        )
        ocr_pages = sum(page.ocr for page in pages)
        return ExtractResult(pages=len(pages), characters=characters, ocr_pages=ocr_pages)

    def _extracted_before(self, document_id: str, first_page: int) -> tuple[int, int]:
        """Characters and OCRed pages of the batches before ``first_page``, read back."""
        before = [
            page for page in self._deps.storage.read_pages(document_id) if page.page < first_page
        ]
        return sum(len(page.text) for page in before), sum(page.ocr for page in before)

    @activity.defn(name=Activity.CHUNK)
    @permanent_faults
    def chunk_document(self, job: ChunkInput) -> ChunkResult:
        self._document(job.document_id)
        records.update_task_step(self._deps.engine, job.task_id, current_step=ProcessingStep.CHUNK)
        pages = list(self._deps.storage.read_pages(job.document_id))
        beat = StepBeat(Step.CHUNK, done=0, total=len(pages))
        chunks: list[Chunk] = []
        done = 0
        for group in _page_groups(pages, CHUNK_CALL_CHARS):
            chunks.extend(
                self._text_child(
                    beat,
                    offload.chunk_pages,
                    group,
                    first_index=len(chunks),
                    tokenizer_path=self._deps.embedder.model_path or bundled_model_path(),
                    chunk_tokens=self._deps.chunk_tokens,
                    overlap_tokens=self._deps.overlap_tokens,
                )
            )
            done += len(group)
            beat.advance(done)
        self._document(job.document_id)  # deleted meanwhile: write nothing
        chunk_count = self._deps.storage.write_chunks(job.document_id, chunks)
        records.update_task_step(
            self._deps.engine,
            job.task_id,
            chunk_count=chunk_count,
            chunking_progress=100.0,
        )
        return ChunkResult(chunk_count=chunk_count)

    @activity.defn(name=Activity.VECTORIZE)
    @permanent_faults
    def vectorize_chunks(self, job: VectorizeInput) -> VectorizeResult:
        document = self._document(job.document_id)
        records.update_task_step(
            self._deps.engine, job.task_id, current_step=ProcessingStep.VECTORIZE
        )
        chunks = self._deps.storage.read_chunks(job.document_id, job.start, job.stop)
        beat = StepBeat(Step.VECTORIZE, done=job.start, total=job.chunk_count)
        written = self._embed_and_store(document, chunks, first=job.start, beat=beat)
        records.update_task_step(
            self._deps.engine,
            job.task_id,
            chunks_embedded=job.stop,
            vectorization_progress=round(100.0 * job.stop / job.chunk_count, 2),
        )
        return VectorizeResult(vectors=written)

    def _embed_and_store(
        self, document: Document, chunks: list[Chunk], *, first: int, beat: StepBeat
    ) -> int:
        """Embed in the embedding process a model batch per stream per call, so a cancel or a
        dead worker is noticed between calls, and store each call's vectors while the next
        call embeds."""
        config = self._deps.embedder
        pool = offload.embedding_work
        in_flight: deque[tuple[list[int], Future[list[list[float]]]]] = deque()
        written = done = 0

        def store_oldest() -> None:
            nonlocal written, done
            batch, future = in_flight.popleft()
            vectors = pool.result(future, beat)
            written += self._deps.vectors.upsert_chunks(
                document_id=document.id,
                filename=document.filename,
                owner=document.owner,
                chunks=[chunks[i] for i in batch],
                vectors=vectors,
            )
            done += len(batch)
            beat.advance(first + done)

        texts = [chunk.text for chunk in chunks]
        try:
            for batch in length_sorted_batches(texts, config.texts_per_call):
                # The next call is queued before the last one is stored: the model never waits.
                future = pool.submit(offload.embed_texts, config, [texts[i] for i in batch])
                in_flight.append((batch, future))
                if len(in_flight) > 1:
                    store_oldest()
            while in_flight:
                store_oldest()
        finally:
            for _, future in in_flight:  # cancelled or failed: embed nothing nobody will store
                future.cancel()
        return written

    @activity.defn(name=Activity.RECORD_STATE)
    def record_task_state(self, state: TaskState) -> None:
        records.record_progress(self._deps.engine, state.task_id, state.progress)

    @activity.defn(name=Activity.DISCARD_VECTORS)
    def discard_vectors(self, document_id: str) -> None:
        self._deps.vectors.delete_document(document_id)

    @activity.defn(name=Activity.DISCARD_DOCUMENT)
    def discard_document(self, document_id: str) -> None:
        """Remove what a document that failed for good left: file, artifacts, vectors. Its
        rows stay, as the record of why it failed."""
        self._deps.vectors.delete_document(document_id)
        self._deps.storage.remove_artifacts(document_id)  # found by id: even without its row
        document = records.get_document(self._deps.engine, document_id)
        if document is not None:
            self._deps.storage.remove_document(document_id, document.stored_name)

    def all(self) -> list[Callable[..., object]]:
        return [
            self.validate_upload,
            self.extract_pages,
            self.chunk_document,
            self.vectorize_chunks,
            self.record_task_state,
            self.discard_vectors,
            self.discard_document,
        ]


def _page_groups(pages: list[PageText], max_chars: int) -> list[list[PageText]]:
    """Consecutive pages, as many per group as fit in ``max_chars`` (at least one)."""
    groups: list[list[PageText]] = []
    size = 0
    for page in pages:
        if not groups or size + len(page.text) > max_chars:
            groups.append([])
            size = 0
        groups[-1].append(page)
        size += len(page.text)
    return groups
