"""Chunk vectors in Qdrant: local mode on disk by default, a Qdrant server when configured."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from qdrant_client import QdrantClient, models

from core.embeddings import EMBEDDING_DIM
from core.storage import Chunk, location_label

# Fixed namespace: point ids derive from (document, chunk index), so a re-run overwrites
# instead of duplicating.
POINT_NAMESPACE = uuid.UUID("5b0d3c1e-8a47-4c1f-9d1e-3f7a2e6c9b10")


def point_id(document_id: str, chunk_index: int) -> str:
    return str(uuid.uuid5(POINT_NAMESPACE, f"{document_id}:{chunk_index}"))


@dataclass(frozen=True)
class SearchHit:
    document_id: str
    filename: str
    page: int
    chunk_index: int
    text: str
    score: float
    label: str = ""  # "page 3", "slide 2", "§Setup" (core/extraction)


class VectorStore:
    """Opens its client on first use: local mode locks its folder to one process, and a
    process that never touches vectors (e.g. an API replica in a test) should not take it."""

    def __init__(self, open_client: Callable[[], QdrantClient], collection: str, *, local: bool):
        self._open_client = open_client
        self._opened: QdrantClient | None = None
        self._local = local
        self._collection = collection
        # Local mode is a single-process SQLite store; serialise access from worker threads.
        self._lock = threading.RLock()
        self._ensured = False

    @classmethod
    def connect(
        cls, *, url: str | None, api_key: str | None, path: Path, collection: str
    ) -> VectorStore:
        if url:
            return cls(lambda: QdrantClient(url=url, api_key=api_key), collection, local=False)

        def open_local() -> QdrantClient:
            path.mkdir(parents=True, exist_ok=True)
            return QdrantClient(path=str(path))

        return cls(open_local, collection, local=True)

    @property
    def _client(self) -> QdrantClient:
        with self._lock:
            if self._opened is None:
                self._opened = self._open_client()
            return self._opened

    def ensure_collection(self) -> None:
        if self._ensured:
            return
        with self._lock:
            if not self._client.collection_exists(self._collection):
                self._client.create_collection(
                    self._collection,
                    vectors_config=models.VectorParams(
                        size=EMBEDDING_DIM, distance=models.Distance.COSINE
                    ),
                )
                # Local mode ignores payload indexes (and warns); a server uses them for filters.
                for field in () if self._local else ("document_id", "owner"):
                    self._client.create_payload_index(
                        self._collection, field, models.PayloadSchemaType.KEYWORD
                    )
            self._ensured = True

    def upsert_chunks(
        self,
        *,
        document_id: str,
        filename: str,
        owner: str,
        chunks: Sequence[Chunk],
        vectors: Sequence[Sequence[float]],
    ) -> int:
        self.ensure_collection()
        points = [
            models.PointStruct(
                id=point_id(document_id, chunk.index),
                vector=list(vector),
                payload={
                    "document_id": document_id,
                    "filename": filename,
                    "owner": owner,
                    "page": chunk.page,
                    "label": location_label(chunk.page, chunk.label),
                    "chunk_index": chunk.index,
                    "text": chunk.text,
                },
            )
            for chunk, vector in zip(chunks, vectors, strict=True)
        ]
        with self._lock:
            self._client.upsert(self._collection, points=points, wait=True)
        return len(points)

    def count(self, document_id: str) -> int:
        self.ensure_collection()
        with self._lock:
            result = self._client.count(
                self._collection, count_filter=_documents_filter([document_id]), exact=True
            )
        return result.count

    def delete_document(self, document_id: str) -> None:
        self.ensure_collection()
        with self._lock:
            self._client.delete(
                self._collection,
                points_selector=models.FilterSelector(filter=_documents_filter([document_id])),
                wait=True,
            )

    def search(
        self,
        vector: Sequence[float],
        *,
        limit: int,
        document_ids: Sequence[str] | None = None,
        owner: str | None = None,
    ) -> list[SearchHit]:
        self.ensure_collection()
        conditions: list[models.Condition] = []
        if document_ids is not None:
            conditions.append(
                models.FieldCondition(
                    key="document_id", match=models.MatchAny(any=list(document_ids))
                )
            )
        if owner is not None:
            conditions.append(
                models.FieldCondition(key="owner", match=models.MatchValue(value=owner))
            )
        with self._lock:
            response = self._client.query_points(
                self._collection,
                query=list(vector),
                limit=limit,
                query_filter=models.Filter(must=conditions) if conditions else None,
                with_payload=True,
            )
        return [_hit(point) for point in response.points]

    def healthy(self) -> bool:
        with self._lock:
            self._client.get_collections()
        return True

    def close(self) -> None:
        with self._lock:
            if self._opened is not None:
                self._opened.close()
                self._opened = None
                self._ensured = False


def _documents_filter(document_ids: Sequence[str]) -> models.Filter:
    return models.Filter(
        must=[
            models.FieldCondition(key="document_id", match=models.MatchAny(any=list(document_ids)))
        ]
    )


def _hit(point: models.ScoredPoint) -> SearchHit:
    payload = point.payload or {}
    return SearchHit(
        document_id=str(payload["document_id"]),
        filename=str(payload["filename"]),
        page=int(payload["page"]),
        chunk_index=int(payload["chunk_index"]),
        text=str(payload["text"]),
        score=float(point.score),
        # Points stored before labels existed have none: they were PDF pages.
        label=location_label(int(payload["page"]), str(payload.get("label") or "")),
    )
