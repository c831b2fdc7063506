"""The ingestion activities. Each is synchronous and runs in the worker's thread pool, so
CPU-heavy work (pypdf, the tokenizer, torch) never blocks the worker's event loop.

Activities heartbeat as they go: a dead worker is noticed by heartbeat timeout, and a
cancellation reaches a running activity at its next heartbeat.
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

from core import extraction, offload, tasks
from core.embeddings import bundled_model_path, length_sorted_batches
from core.extraction import ExtractionLimits
from core.faults import DocumentFault, FaultCode
from core.models import Document, ProcessingStep
from core.storage import Chunk, DocumentStorage
from core.vectorstore import VectorStore
from workflows.contracts import (
    Activity,
    ChunkInput,
    ChunkResult,
    ExtractInput,
    ExtractResult,
    TaskState,
    ValidateInput,
    ValidateResult,
    VectorizeInput,
    VectorizeResult,
)

P = ParamSpec("P")
R = TypeVar("R")


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


class IngestActivities:
    def __init__(self, deps: IngestDependencies) -> None:
        self._deps = deps

    def _document(self, document_id: str) -> Document:
        document = tasks.get_document(self._deps.engine, document_id)
        if document is None:
            raise LookupError(f"document {document_id} no longer exists")
        return document

    @activity.defn(name=Activity.VALIDATE)
    @permanent_faults
    def validate_upload(self, job: ValidateInput) -> ValidateResult:
        document = self._document(job.document_id)
        tasks.update_task_step(self._deps.engine, job.task_id, current_step=ProcessingStep.UPLOAD)
        path = self._deps.storage.upload_path(document.stored_name)
        # Format by content and unit count (pages, slides, sections...), in the child process.
        info = offload.text_work.run(
            activity.heartbeat, offload.inspect_document, path, self._deps.extraction_limits()
        )
        tasks.update_task_step(
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
        tasks.update_task_step(self._deps.engine, job.task_id, current_step=ProcessingStep.EXTRACT)
        path = self._deps.storage.upload_path(document.stored_name)
        # The text cap counts the whole document: what earlier batches stored, then this batch
        # page by page, so a decompression bomb stops as soon as it passes the cap.
        # The OCR page cap counts the whole document the same way.
        before = [
            page
            for page in self._deps.storage.read_pages(job.document_id)
            if page.page < job.first_page
        ]
        earlier = sum(len(page.text) for page in before)
        page_sizes = offload.text_work.run(
            activity.heartbeat,
            offload.extract_to_file,
            path,
            job.first_page,
            job.last_page,
            self._deps.storage.pages_path(job.document_id, job.first_page),
            max_chars=self._deps.max_extracted_chars - earlier,
            limits=self._deps.extraction_limits(),
            ocr_pages_before=sum(page.ocr for page in before),
        )
        characters = sum(page_sizes)
        if job.last_page == job.page_count:
            # Only the last batch sees the whole document, so whole-document checks live here.
            extraction.require_text(
                self._deps.storage.read_pages(job.document_id),
                extraction.detect_format(path),
                ocr=self._deps.formats.ocr,
            )
        tasks.update_task_step(
            self._deps.engine,
            job.task_id,
            pages_extracted=job.last_page,
            extraction_progress=round(100.0 * job.last_page / job.page_count, 2),
        )
        return ExtractResult(pages=len(page_sizes), characters=characters)

    @activity.defn(name=Activity.CHUNK)
    @permanent_faults
    def chunk_document(self, job: ChunkInput) -> ChunkResult:
        tasks.update_task_step(self._deps.engine, job.task_id, current_step=ProcessingStep.CHUNK)
        chunk_count = offload.text_work.run(
            activity.heartbeat,
            offload.chunk_to_file,
            self._deps.storage.pages_files(job.document_id),
            self._deps.storage.chunks_path(job.document_id),
            tokenizer_path=self._deps.embedder.model_path or bundled_model_path(),
            chunk_tokens=self._deps.chunk_tokens,
            overlap_tokens=self._deps.overlap_tokens,
        )
        tasks.update_task_step(
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
        tasks.update_task_step(
            self._deps.engine, job.task_id, current_step=ProcessingStep.VECTORIZE
        )
        chunks = self._deps.storage.read_chunks(job.document_id, job.start, job.stop)
        written = self._embed_and_store(document, chunks, first=job.start)
        tasks.update_task_step(
            self._deps.engine,
            job.task_id,
            chunks_embedded=job.stop,
            vectorization_progress=round(100.0 * job.stop / job.chunk_count, 2),
        )
        return VectorizeResult(vectors=written)

    def _embed_and_store(self, document: Document, chunks: list[Chunk], *, first: int) -> int:
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
            vectors = pool.result(future, activity.heartbeat)
            written += self._deps.vectors.upsert_chunks(
                document_id=document.id,
                filename=document.filename,
                owner=document.owner,
                chunks=[chunks[i] for i in batch],
                vectors=vectors,
            )
            done += len(batch)
            activity.heartbeat(first + done)

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
        tasks.record_progress(self._deps.engine, state.task_id, state.progress)

    @activity.defn(name=Activity.DISCARD_VECTORS)
    def discard_vectors(self, document_id: str) -> None:
        self._deps.vectors.delete_document(document_id)

    @activity.defn(name=Activity.DISCARD_DOCUMENT)
    def discard_document(self, document_id: str) -> None:
        """Remove what a document that failed for good left: file, artifacts, vectors. Its
        rows stay, as the record of why it failed."""
        self._deps.vectors.delete_document(document_id)
        document = tasks.get_document(self._deps.engine, document_id)
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
