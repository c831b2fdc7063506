"""The re-index activities: list the ready documents, rebuild one into a version, swap.

A document is rebuilt from the pages its ingestion extracted and kept in ``artifacts/``:
chunked with the target version's settings, embedded and written to the target's collection
through the ingestion's own embedding pipeline. Its points in the target are removed first,
and point ids derive from (document, chunk index), so a retried or taken-over rebuild leaves
exactly one vector per chunk.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import datetime

from sqlalchemy import and_, func, or_
from sqlmodel import col, select
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.ingest import IngestActivities, IngestDependencies, _page_groups, _Target
from activities.progress import StepBeat, seconds_left
from core.db import session_scope
from core.errors import NotFoundError
from core.ingestion import offload, records
from core.ingestion.tables import Document, DocumentStatus
from core.search.embeddings import bundled_model_path
from core.search.index_versions import IndexVersions
from core.search.model_identity import ModelIdentity
from core.texts import Chunk, PageText
from workflows.contracts import Step
from workflows.reindex_contracts import (
    CountResult,
    DocumentInput,
    DocumentResult,
    ListedDocument,
    ListInput,
    ListResult,
    ReindexActivity,
)

# Text per chunking call in the text child (whole pages, at least one), as in ingestion.
CHUNK_CALL_CHARS = 50_000


class ReindexActivities:
    def __init__(self, deps: IngestDependencies, versions: IndexVersions) -> None:
        self._deps = deps
        self._versions = versions

    @activity.defn(name=ReindexActivity.COUNT)
    def count_documents(self, version: str) -> CountResult:
        with session_scope(self._deps.engine) as session:
            documents, chunks = session.exec(
                select(func.count(), func.coalesce(func.sum(Document.chunk_count), 0)).where(
                    Document.status == DocumentStatus.READY
                )
            ).one()
        return CountResult(int(documents), int(chunks or 0), self._versions.active_version())

    @activity.defn(name=ReindexActivity.LIST)
    def list_documents(self, job: ListInput) -> ListResult:
        """Ready documents after the cursor, by (updated_at, id)."""
        statement = select(Document.id, Document.updated_at).where(
            Document.status == DocumentStatus.READY
        )
        if job.cursor.updated_at:
            after = datetime.fromisoformat(job.cursor.updated_at)
            statement = statement.where(
                or_(
                    col(Document.updated_at) > after,
                    and_(
                        col(Document.updated_at) == after, col(Document.id) > job.cursor.document_id
                    ),
                )
            )
        statement = statement.order_by(col(Document.updated_at), col(Document.id)).limit(job.limit)
        with session_scope(self._deps.engine) as session:
            rows = session.exec(statement).all()
        return ListResult([ListedDocument(row[0], row[1].isoformat()) for row in rows])

    @activity.defn(name=ReindexActivity.DOCUMENT)
    def reindex_document(self, job: DocumentInput) -> DocumentResult:
        document = records.get_document(self._deps.engine, job.document_id)
        if document is None or document.status != DocumentStatus.READY:
            return DocumentResult(0, 0, skipped=True)  # deleted (or re-ingesting) meanwhile
        try:
            target = self._versions.get(job.version)
        except NotFoundError as missing:
            raise ApplicationError(
                missing.message, type="index_version_not_found", non_retryable=True
            ) from missing
        configured = ModelIdentity.of(self._deps.embedder.model_path)
        if target.spec.model != configured:
            raise ApplicationError(
                f"Index version {job.version} needs {target.spec.embedding_model}, but this "
                f"worker embeds with {configured.name}.",
                type="embedding_model_mismatch",
                non_retryable=True,
            )
        pages = list(self._deps.storage.read_pages(job.document_id))
        if not pages:
            raise ApplicationError(
                f"The extracted text of document {job.document_id} is not in artifacts/: "
                "upload the document again.",
                type="artifacts_missing",
                non_retryable=True,
            )
        chunks = self._chunk(pages, target.spec.chunk_tokens, target.spec.overlap_tokens)
        store = self._versions.store(target)
        store.delete_document(job.document_id)  # a retried rebuild starts clean
        beat = StepBeat(Step.VECTORIZE, done=0, total=len(chunks))
        # The ingestion's embedding pipeline (embedding process, overlapped stores), aimed at
        # the target version's collection.
        pipeline = IngestActivities(replace(self._deps, vectors=store))
        stored = pipeline._embed_and_store(_Target.of(document, None), chunks, first=0, beat=beat)
        return DocumentResult(chunks=stored.vectors, previous_chunks=document.chunk_count or 0)

    def _chunk(self, pages: list[PageText], chunk_tokens: int, overlap: int) -> list[Chunk]:
        beat = StepBeat(Step.CHUNK, done=0, total=len(pages))
        chunks: list[Chunk] = []
        done = 0
        for group in _page_groups(pages, CHUNK_CALL_CHARS):
            watch = offload.Watch(heartbeat=beat, timeout=seconds_left())
            chunks.extend(
                offload.text_work.run(
                    watch,
                    offload.chunk_pages,
                    group,
                    first_index=len(chunks),
                    tokenizer_path=self._deps.embedder.model_path or bundled_model_path(),
                    chunk_tokens=chunk_tokens,
                    overlap_tokens=overlap,
                )
            )
            done += len(group)
            beat.advance(done)
        return chunks

    @activity.defn(name=ReindexActivity.SWAP)
    def swap(self, version: str) -> None:
        self._versions.activate(version, finish_build=True)

    @activity.defn(name=ReindexActivity.DROP)
    def drop_target(self, version: str) -> None:
        try:
            self._versions.drop_building(version)
        except NotFoundError:
            pass  # already gone

    def all(self) -> list[Callable[..., object]]:
        return [
            self.count_documents,
            self.list_documents,
            self.reindex_document,
            self.swap,
            self.drop_target,
        ]
