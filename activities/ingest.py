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
from pathlib import Path
from typing import ParamSpec, TypeVar

from sqlalchemy import Engine
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.progress import StepBeat, seconds_left
from core.ingestion import extraction, offload, records
from core.ingestion.extraction import ExtractionLimits
from core.ingestion.extraction.ocr import check_ocr_budget
from core.ingestion.extraction.units import text_too_large
from core.ingestion.faults import DocumentFault, FaultCode
from core.ingestion.storage import DocumentStorage
from core.ingestion.tables import Document, ProcessingStep
from core.runtime import Resources
from core.search.embedding_cache import CACHE_FILE, EmbeddingCache, index_version_key, text_hash
from core.search.embeddings import bundled_model_path, length_sorted_batches
from core.search.index_versions import IndexVersions
from core.search.vectorstore import VectorStore
from core.texts import Chunk, PageText
from workflows.contracts import (
    Activity,
    ChunkInput,
    ChunkResult,
    ExtractInput,
    ExtractResult,
    IngestInput,
    Replacement,
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
    # The index versions: a document is chunked as the active version was, so a changed
    # chunker setting never mixes two chunkings in one index (it takes a re-index).
    versions: IndexVersions | None = None

    def chunker_settings(self) -> tuple[int, int]:
        """(chunk tokens, overlap tokens) of the active index version."""
        if self.versions is None:
            return self.chunk_tokens, self.overlap_tokens
        spec = self.versions.active().spec
        return spec.chunk_tokens, spec.overlap_tokens

    # Vectors of chunk texts embedded before (None: embed every chunk).
    cache: EmbeddingCache | None = None

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
            versions=resources.versions,
            cache=EmbeddingCache(settings.data_dir / CACHE_FILE),
        )


@dataclass(frozen=True)
class Stored:
    """What one vectorize call wrote: vectors, of which embedded now or reused."""

    vectors: int
    embedded: int
    reused: int


class IngestActivities:
    def __init__(self, deps: IngestDependencies) -> None:
        self._deps = deps
        # The one place the embedding cache's version key is taken (index versions replace it).
        self._version_key = index_version_key(deps.vectors.model, deps.embedder.precision)

    def _upload_path(self, document: Document, replacement: Replacement | None) -> Path:
        """The file a step reads: a new version's own upload until it is committed."""
        name = replacement.stored_name if replacement else document.stored_name
        return self._deps.storage.upload_path(name)

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
        path = self._upload_path(document, job.replacement)
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
        path = self._upload_path(document, job.replacement)
        artifacts = _artifacts_key(job.document_id, job.replacement)
        # The text cap counts the whole document: what earlier batches found, then this batch
        # page by page, so a decompression bomb stops as soon as it passes the cap.
        # The OCR page cap counts the whole document the same way.
        earlier = job.characters_before
        ocr_earlier = job.ocr_pages_before
        if earlier is None or ocr_earlier is None:
            # Scheduled by a workflow that does not carry the counts yet: count them here.
            earlier, ocr_earlier = self._extracted_before(artifacts, job.first_page)
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
        self._deps.storage.write_pages(artifacts, job.first_page, pages)
        ocr_pages = sum(page.ocr for page in pages)
        if job.last_page == job.page_count:
            # Only the last batch sees the whole document, so whole-document checks live here.
            # The workflow runs it after every other batch (with batches in parallel too), and
            # each earlier batch only knew the batches finished before it started: their sums
            # are checked against the caps once more here.
            self._require_within_caps(earlier + characters, ocr_earlier + ocr_pages)
            extraction.require_text(
                self._deps.storage.read_pages(artifacts),
                extraction.detect_format(path),
                ocr=self._deps.formats.ocr,
            )
        records.update_task_step(
            self._deps.engine,
            job.task_id,
            pages_extracted=job.last_page,
            extraction_progress=round(100.0 * job.last_page / job.page_count, 2),
        )
        return ExtractResult(pages=len(pages), characters=characters, ocr_pages=ocr_pages)

    def _require_within_caps(self, characters: int, ocr_pages: int) -> None:
        limits = self._deps.extraction_limits()
        if characters > limits.max_chars:
            raise text_too_large(limits.max_chars)
        check_ocr_budget(ocr_pages, limits)

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
        artifacts = _artifacts_key(job.document_id, job.replacement)
        pages = list(self._deps.storage.read_pages(artifacts))
        beat = StepBeat(Step.CHUNK, done=0, total=len(pages))
        chunks: list[Chunk] = []
        done = 0
        chunk_tokens, overlap_tokens = self._deps.chunker_settings()
        for group in _page_groups(pages, CHUNK_CALL_CHARS):
            chunks.extend(
                self._text_child(
                    beat,
                    offload.chunk_pages,
                    group,
                    first_index=len(chunks),
                    tokenizer_path=self._deps.embedder.model_path or bundled_model_path(),
                    chunk_tokens=chunk_tokens,
                    overlap_tokens=overlap_tokens,
                )
            )
            done += len(group)
            beat.advance(done)
        self._document(job.document_id)  # deleted meanwhile: write nothing
        chunk_count = self._deps.storage.write_chunks(artifacts, chunks)
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
        artifacts = _artifacts_key(job.document_id, job.replacement)
        chunks = self._deps.storage.read_chunks(artifacts, job.start, job.stop)
        beat = StepBeat(Step.VECTORIZE, done=job.start, total=job.chunk_count)
        target = _Target.of(document, job.replacement)
        stored = self._embed_and_store(target, chunks, first=job.start, beat=beat)
        records.update_task_step(
            self._deps.engine,
            job.task_id,
            chunks_embedded=job.stop,
            vectorization_progress=round(100.0 * job.stop / job.chunk_count, 2),
        )
        return VectorizeResult(
            vectors=stored.vectors, embedded=stored.embedded, reused=stored.reused
        )

    def _embed_and_store(
        self, target: _Target, chunks: list[Chunk], *, first: int, beat: StepBeat
    ) -> Stored:
        """Store the chunks whose text has a cached vector at once; embed the others in the
        embedding process a model batch per stream per call, so a cancel or a dead worker is
        noticed between calls, and store each call's vectors while the next call embeds."""
        config = self._deps.embedder
        cache = self._deps.cache
        pool = offload.embedding_work
        in_flight: deque[tuple[list[int], Future[list[list[float]]]]] = deque()
        written = done = 0
        hashes = [text_hash(chunk.text) for chunk in chunks]
        known = cache.get_many(self._version_key, hashes) if cache is not None else {}
        if target.previous is not None:
            # A new version: what the cache lacks, the current version's points may have.
            unknown = [
                chunk.text for chunk, key in zip(chunks, hashes, strict=True) if key not in known
            ]
            stored = self._deps.vectors.vectors_of_texts(
                target.document_id, target.previous, unknown
            )
            found = {text_hash(text): vector for text, vector in stored.items()}
            if cache is not None:
                cache.put_many(self._version_key, found)
            known.update(found)

        def store(batch: list[int], vectors: list[list[float]]) -> None:
            nonlocal written, done
            written += self._deps.vectors.upsert_chunks(
                document_id=target.document_id,
                filename=target.filename,
                owner=target.owner,
                chunks=[chunks[i] for i in batch],
                vectors=vectors,
                generation=target.generation,
            )
            done += len(batch)
            beat.advance(first + done)

        def store_oldest() -> None:
            batch, future = in_flight.popleft()
            vectors = pool.result(future, beat)
            if cache is not None:
                cache.put_many(
                    self._version_key,
                    {hashes[i]: vector for i, vector in zip(batch, vectors, strict=True)},
                )
            store(batch, vectors)

        reused = [i for i, key in enumerate(hashes) if key in known]
        if reused:
            store(reused, [known[hashes[i]] for i in reused])
        missing = [i for i, key in enumerate(hashes) if key not in known]
        texts = [chunks[i].text for i in missing]
        try:
            for order in length_sorted_batches(texts, config.texts_per_call):
                batch = [missing[i] for i in order]
                # The next call is queued before the last one is stored: the model never waits.
                future = pool.submit(offload.embed_texts, config, [chunks[i].text for i in batch])
                in_flight.append((batch, future))
                if len(in_flight) > 1:
                    store_oldest()
            while in_flight:
                store_oldest()
        finally:
            for _, future in in_flight:  # cancelled or failed: embed nothing nobody will store
                future.cancel()
        return Stored(vectors=written, embedded=len(missing), reused=len(reused))

    @activity.defn(name=Activity.RECORD_STATE)
    def record_task_state(self, state: TaskState) -> None:
        records.record_progress(
            self._deps.engine, state.task_id, state.progress, replacement=state.replacement
        )

    @activity.defn(name=Activity.COMMIT_REPLACEMENT)
    @permanent_faults
    def commit_replacement(self, job: IngestInput) -> None:
        """Make the new version the one search shows: one SQL transaction moves the row to it
        (searches filter by the row's generation), then its artifacts become the document's
        and the old upload goes. Its old vectors stay for the grace period (finish)."""
        replacement = _required(job.replacement)
        task = records.get_task(self._deps.engine, job.task_id)
        if task is None:
            raise LookupError(f"processing task {job.task_id} no longer exists")
        old_file = records.commit_replacement(
            self._deps.engine,
            document_id=job.document_id,
            generation=replacement.generation,
            filename=replacement.filename,
            stored_name=replacement.stored_name,
            size_bytes=replacement.size_bytes,
            sha256=replacement.sha256,
            page_count=task.page_count,
            chunk_count=task.chunk_count,
        )
        self._deps.storage.promote_artifacts(
            job.document_id, replacement.artifacts_key(job.document_id)
        )
        if old_file is not None and old_file != replacement.stored_name:
            self._deps.storage.upload_path(old_file).unlink(missing_ok=True)

    @activity.defn(name=Activity.FINISH_REPLACEMENT)
    def finish_replacement(self, job: IngestInput) -> None:
        """Remove the old version's vectors; the document has one version again."""
        document = records.get_document(self._deps.engine, job.document_id)
        if document is None:
            return  # deleted meanwhile, vectors and all
        self._deps.vectors.delete_other_generations(job.document_id, keep=document.generation)
        records.end_replacement(self._deps.engine, job.document_id)

    @activity.defn(name=Activity.DISCARD_REPLACEMENT)
    def discard_replacement(self, job: IngestInput) -> None:
        """A new version that failed or was cancelled: remove its file, artifacts and vectors;
        the document stays as it was. One committed already (a cancel that came as the
        commit ended) is the document now: only the old version goes."""
        replacement = _required(job.replacement)
        document = records.get_document(self._deps.engine, job.document_id)
        if document is None:
            self._deps.storage.upload_path(replacement.stored_name).unlink(missing_ok=True)
            return
        if document.generation >= replacement.generation:
            self.finish_replacement(job)
            return
        self._deps.vectors.delete_generation(job.document_id, replacement.generation)
        self._deps.storage.remove_artifacts(replacement.artifacts_key(job.document_id))
        self._deps.storage.upload_path(replacement.stored_name).unlink(missing_ok=True)
        records.end_replacement(self._deps.engine, job.document_id)

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

    def text(self) -> list[Callable[..., object]]:
        """What runs on the text task queue: the work of the text child (validate, which is
        short, runs on the workflows' queue, served by the same workers)."""
        return [self.extract_pages, self.chunk_document]

    def embedding(self) -> list[Callable[..., object]]:
        """What runs on the embedding task queue."""
        return [self.vectorize_chunks]

    def all(self) -> list[Callable[..., object]]:
        return [
            self.validate_upload,
            self.extract_pages,
            self.chunk_document,
            self.vectorize_chunks,
            self.record_task_state,
            self.discard_vectors,
            self.discard_document,
            self.commit_replacement,
            self.finish_replacement,
            self.discard_replacement,
        ]


@dataclass(frozen=True)
class _Target:
    """Whose vectors a vectorize call writes: the document's, of its version ``generation``."""

    document_id: str
    filename: str
    owner: str
    generation: int
    # The version search shows, when this is a new one: its points may hold reusable vectors.
    previous: int | None = None

    @classmethod
    def of(cls, document: Document, replacement: Replacement | None) -> _Target:
        if replacement is None:
            return cls(document.id, document.filename, document.owner, document.generation)
        return cls(
            document.id,
            replacement.filename,
            document.owner,
            replacement.generation,
            previous=document.generation,
        )


def _artifacts_key(document_id: str, replacement: Replacement | None) -> str:
    return replacement.artifacts_key(document_id) if replacement else document_id


def _required(replacement: Replacement | None) -> Replacement:
    if replacement is None:
        raise ApplicationError("not a new version of a document", non_retryable=True)
    return replacement


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
