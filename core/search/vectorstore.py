"""Chunk vectors in Qdrant: local mode on disk by default, a Qdrant server when configured.

Each point holds a chunk's dense vector (the embedding model's) and its keyword vector (term
frequencies, scored with Qdrant's IDF: see core.search.keywords). Search asks for the dense
side, the keyword side, or both fused by reciprocal rank fusion in one Qdrant query.
"""

from __future__ import annotations

import math
import threading
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from qdrant_client import QdrantClient, models
from qdrant_client.hybrid.fusion import reciprocal_rank_fusion

from core.search import RETRIEVALS, Retrieval, layout
from core.search.keywords import KeywordVector, keyword_vector, query_vector
from core.search.model_identity import EmbeddingModelMismatchError, ModelIdentity
from core.texts import Chunk, location_label

# Fixed namespace: point ids derive from (document, chunk index), so a re-run overwrites
# instead of duplicating.
POINT_NAMESPACE = uuid.UUID("5b0d3c1e-8a47-4c1f-9d1e-3f7a2e6c9b10")

__all__ = ["RETRIEVALS", "Retrieval", "SearchHit", "VectorStore", "point_id"]
# How deep each side looks before fusion: a chunk ranked 40th by one side and 2nd by the
# other must still reach the fused list.
MIN_SIDE_LIMIT = 40
# Reciprocal rank fusion: a chunk scores the sum over the sides of 1 / (RRF_K + rank).
RRF_K = 2


def point_id(document_id: str, chunk_index: int) -> str:
    return str(uuid.uuid5(POINT_NAMESPACE, f"{document_id}:{chunk_index}"))


@dataclass(frozen=True)
class SearchHit:
    document_id: str
    filename: str
    page: int
    chunk_index: int
    text: str
    # The score the hits are ordered by: cosine similarity (dense), BM25 (keyword) or the
    # reciprocal rank fusion of both (hybrid).
    score: float
    label: str = ""  # "page 3", "slide 2", "§Setup" (core/extraction)
    # Each side's 1-based rank and score, where that side found the chunk (None: it did not
    # rank it within its depth). ``dense_score`` is the cosine similarity whenever the query
    # was embedded, even for a chunk only the keyword side found.
    dense_rank: int | None = None
    keyword_rank: int | None = None
    dense_score: float | None = None
    keyword_score: float | None = None
    # The chunk with its neighbours on the same page, when the answer step asked for them
    # (core.search.context); empty otherwise.
    context: str = ""

    @property
    def passage(self) -> str:
        """What the model is given: the chunk in its context where there is one."""
        return self.context or self.text

    @property
    def found_by(self) -> list[str]:
        sides = (("dense", self.dense_rank), ("keyword", self.keyword_rank))
        return [side for side, rank in sides if rank is not None]


class VectorStore:
    """Opens its client on first use: local mode locks its folder to one process, and a
    process that never touches vectors (e.g. an API replica in a test) should not take it."""

    def __init__(
        self,
        open_client: Callable[[], QdrantClient],
        collection: str,
        *,
        local: bool,
        model: ModelIdentity | None = None,
    ):
        self._open_client = open_client
        self._opened: QdrantClient | None = None
        self._local = local
        self._collection = collection
        self.model = model or ModelIdentity.bundled()
        # Local mode is a single-process SQLite store; serialise access from worker threads.
        self._lock = threading.RLock()
        self._ensured = False

    @classmethod
    def connect(
        cls,
        *,
        url: str | None,
        api_key: str | None,
        path: Path,
        collection: str,
        model: ModelIdentity | None = None,
    ) -> VectorStore:
        if url:
            return cls(
                lambda: QdrantClient(url=url, api_key=api_key), collection, local=False, model=model
            )

        def open_local() -> QdrantClient:
            path.mkdir(parents=True, exist_ok=True)
            return QdrantClient(path=str(path))

        return cls(open_local, collection, local=True, model=model)

    @property
    def _client(self) -> QdrantClient:
        with self._lock:
            if self._opened is None:
                self._opened = self._open_client()
            return self._opened

    def ensure_collection(self) -> None:
        """Create the collection, or check the one there: it must be of this model, and one
        of the layout before keyword vectors is migrated to the current one first."""
        if self._ensured:
            return
        with self._lock:
            client, name = self._client, self._collection
            migrating = client.collection_exists(name + layout.MIGRATION_SUFFIX)
            if not client.collection_exists(name) and not migrating:
                layout.create(client, name, self.model, payload_indexes=not self._local)
            elif migrating or not layout.is_current(client, name):
                self._check_old_dimension()
                layout.migrate(client, name, self.model, payload_indexes=not self._local)
            stored = layout.stored_model(client, name)
            if stored is not None and stored != self.model:
                raise EmbeddingModelMismatchError(name, stored, self.model)
            self._ensured = True

    def _check_old_dimension(self) -> None:
        client, name = self._client, self._collection
        if not client.collection_exists(name) or layout.is_current(client, name):
            return
        dim = layout.old_dimension(client, name)
        if dim is not None and dim != self.model.dim:
            stored = ModelIdentity(f"a {dim}-dimension model", dim)
            raise EmbeddingModelMismatchError(name, stored, self.model)

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
        points = []
        for chunk, vector in zip(chunks, vectors, strict=True):
            if len(vector) != self.model.dim:
                raise EmbeddingModelMismatchError(
                    self._collection, self.model, ModelIdentity("the embedder", len(vector))
                )
            named: dict[str, models.Vector] = {layout.DENSE: list(vector)}
            keywords = keyword_vector(chunk.text)
            if keywords:  # a chunk of punctuation alone has no terms
                named[layout.KEYWORD] = _sparse(keywords)
            points.append(
                models.PointStruct(
                    id=point_id(document_id, chunk.index),
                    vector=named,
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
            )
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
        vector: Sequence[float] | None,
        *,
        limit: int,
        document_ids: Sequence[str] | None = None,
        owner: str | None = None,
        text: str | None = None,
        retrieval: Retrieval = "dense",
    ) -> list[SearchHit]:
        """The ``limit`` best chunks. ``vector`` is the embedded query (needed unless
        ``retrieval`` is keyword; given in keyword mode, it still fills ``dense_score``),
        ``text`` the query itself (needed unless it is dense).

        Hybrid on a server is one round trip: the fused query (both sides as prefetches,
        fused by RRF in Qdrant) and each side alone, so every hit says which side ranked it
        where. Local mode runs each side once and fuses them with the function its own fused
        query uses (same ranking, half the scoring).
        """
        self.ensure_collection()
        where = _filter(document_ids, owner)
        keywords = query_vector(text) if text is not None and retrieval != "dense" else None
        embedded = list(vector) if vector is not None else None
        # In keyword mode an embedded query only serves to report each hit's cosine.
        dense = embedded if retrieval != "keyword" else None
        if retrieval == "hybrid" and not keywords:
            retrieval = "dense"  # nothing to match by keyword (e.g. only punctuation)
        if retrieval != "dense" and not keywords:
            return []
        if retrieval != "keyword" and dense is None:
            raise ValueError(f"{retrieval} search needs the embedded query")
        depth = max(MIN_SIDE_LIMIT, 4 * limit)
        # Each side carries its payload and dense vector only where its own list is the
        # answer (a single side, or local mode's fusion below).
        whole = retrieval != "hybrid" or self._local
        sides: dict[str, models.QueryRequest] = {}
        if dense is not None:
            sides["dense"] = _side(dense, layout.DENSE, where, depth, whole=whole)
        if keywords:
            sides["keyword"] = _side(_sparse(keywords), layout.KEYWORD, where, depth, whole=whole)
        fused_by_server = retrieval == "hybrid" and not self._local
        requests = list(sides.values())
        if fused_by_server:
            requests.insert(
                0,
                models.QueryRequest(
                    prefetch=[
                        models.Prefetch(query=s.query, using=s.using, filter=where, limit=depth)
                        for s in sides.values()
                    ],
                    query=models.RrfQuery(rrf=models.Rrf(k=RRF_K)),
                    limit=limit,
                    with_payload=True,
                    with_vector=[layout.DENSE],
                ),
            )
        with self._lock:
            responses = self._client.query_batch_points(self._collection, requests=requests)
        lists = [response.points for response in responses[1:] if fused_by_server] or [
            response.points for response in responses
        ]
        ranked = {
            side: {point.id: (rank, point.score) for rank, point in enumerate(points, 1)}
            for side, points in zip(sides, lists, strict=True)
        }
        if fused_by_server:
            final = responses[0].points
        elif retrieval == "hybrid":
            # Local mode computes a fused query by running each prefetch and fusing them with
            # this very function; calling it on the side lists gives the same ranking without
            # scoring every chunk twice (local mode scores in Python, point by point).
            final = reciprocal_rank_fusion(
                [[p.model_copy() for p in points] for points in lists],
                limit=limit,
                ranking_constant_k=RRF_K,
            )
        else:
            final = lists[0][:limit]
        return [_hit(point, ranked, embedded) for point in final]

    def chunk_texts(
        self, document_id: str, chunk_indexes: Sequence[int], *, owner: str | None
    ) -> dict[int, tuple[int, str]]:
        """``{chunk index: (page, text)}`` of those chunks of one document (the owner's only)."""
        if not chunk_indexes:
            return {}
        self.ensure_collection()
        where = _filter([document_id], owner)
        assert where is not None and isinstance(where.must, list)
        where.must.append(
            models.FieldCondition(key="chunk_index", match=models.MatchAny(any=list(chunk_indexes)))
        )
        with self._lock:
            records, _ = self._client.scroll(
                self._collection, scroll_filter=where, limit=len(chunk_indexes), with_payload=True
            )
        found = {}
        for record in records:
            payload = record.payload or {}
            found[int(payload["chunk_index"])] = (int(payload["page"]), str(payload["text"]))
        return found

    def export_chunks(self) -> tuple[list[str], list[list[float]]]:
        """Every chunk's text and dense vector (the bench copies them into a larger index)."""
        self.ensure_collection()
        texts: list[str] = []
        vectors: list[list[float]] = []
        offset = None
        with self._lock:
            while True:
                records, offset = self._client.scroll(
                    self._collection, limit=256, offset=offset, with_vectors=[layout.DENSE]
                )
                for record in records:
                    dense = (
                        record.vector.get(layout.DENSE) if isinstance(record.vector, dict) else None
                    )
                    if isinstance(dense, list) and dense and isinstance(dense[0], float):
                        texts.append(str((record.payload or {})["text"]))
                        vectors.append([float(x) for x in dense if isinstance(x, float)])
                if offset is None:
                    return texts, vectors

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


def _sparse(keywords: KeywordVector) -> models.SparseVector:
    return models.SparseVector(indices=keywords.indices, values=keywords.values)


def _side(
    query: list[float] | models.SparseVector,
    using: str,
    where: models.Filter | None,
    depth: int,
    *,
    whole: bool,
) -> models.QueryRequest:
    return models.QueryRequest(
        query=query,
        using=using,
        filter=where,
        limit=depth,
        with_payload=whole,
        with_vector=[layout.DENSE] if whole else False,
    )


def _filter(document_ids: Sequence[str] | None, owner: str | None) -> models.Filter | None:
    conditions: list[models.Condition] = []
    if document_ids is not None:
        conditions.append(
            models.FieldCondition(key="document_id", match=models.MatchAny(any=list(document_ids)))
        )
    if owner is not None:
        conditions.append(models.FieldCondition(key="owner", match=models.MatchValue(value=owner)))
    return models.Filter(must=conditions) if conditions else None


def _documents_filter(document_ids: Sequence[str]) -> models.Filter:
    where = _filter(document_ids, None)
    assert where is not None
    return where


def _hit(
    point: models.ScoredPoint,
    ranked: dict[str, dict[models.ExtendedPointId, tuple[int, float]]],
    query: list[float] | None,
) -> SearchHit:
    payload = point.payload or {}
    dense_rank, dense_score = ranked.get("dense", {}).get(point.id, (None, None))
    keyword_rank, keyword_score = ranked.get("keyword", {}).get(point.id, (None, None))
    if dense_score is None and query is not None:
        dense_score = _cosine(query, point.vector)
    return SearchHit(
        document_id=str(payload["document_id"]),
        filename=str(payload["filename"]),
        page=int(payload["page"]),
        chunk_index=int(payload["chunk_index"]),
        text=str(payload["text"]),
        score=float(point.score),
        # Points stored before labels existed have none: they were PDF pages.
        label=location_label(int(payload["page"]), str(payload.get("label") or "")),
        dense_rank=dense_rank,
        keyword_rank=keyword_rank,
        dense_score=dense_score,
        keyword_score=keyword_score,
    )


def _cosine(query: list[float], stored: object) -> float | None:
    """The cosine similarity of a hit the dense side did not rank (found by keyword alone)."""
    vector = stored.get(layout.DENSE) if isinstance(stored, dict) else None
    if not isinstance(vector, list) or not vector or not isinstance(vector[0], float):
        return None
    dot = sum(a * b for a, b in zip(query, vector, strict=True))
    norms = math.sqrt(sum(a * a for a in query)) * math.sqrt(sum(b * b for b in vector))
    return dot / norms if norms else None
