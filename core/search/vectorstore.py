"""Chunk vectors in Qdrant: local mode on disk by default, a Qdrant server when configured.

Each point holds a chunk's dense vector (the embedding model's) and its keyword vector (term
frequencies, scored with Qdrant's IDF: see core.search.keywords). Search asks for the dense
side, the keyword side, or both fused by reciprocal rank fusion in one Qdrant query.
"""

from __future__ import annotations

import contextlib
import math
import threading
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from qdrant_client import QdrantClient, models
from qdrant_client.hybrid.fusion import reciprocal_rank_fusion

from core.search import RETRIEVALS, Retrieval, layout
from core.search.keywords import KeywordVector, keyword_vector, query_vector
from core.search.local_index import IndexedPoint, LocalSearchIndex
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


def point_id(document_id: str, chunk_index: int, generation: int = 0) -> str:
    # A document's first version keeps the ids points had before versions existed.
    name = (
        f"{document_id}:{chunk_index}"
        if not generation
        else f"{document_id}:{generation}:{chunk_index}"
    )
    return str(uuid.uuid5(POINT_NAMESPACE, name))


# ``(document id, generation shown)`` of the documents that may have vectors of two versions
# now, for the searcher ``owner`` (None: anyone's): see ``VectorStore.generations``.
ReplacedGenerations = Callable[[str | None], Sequence[tuple[str, int]]]


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
    # The document version the chunk belongs to (docs/replace.md): its neighbours are of it.
    generation: int = 0
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
        # Local mode's search arrays, loaded on the first search (see _local_index).
        self._index: LocalSearchIndex | None = None
        self._index_source = ""
        # Set for the active-index alias (core.search.index_versions): makes sure the alias
        # points at a version before first use, and names the other versions' collections,
        # which a deleted document must leave too.
        self.prepare: Callable[[QdrantClient], None] | None = None
        self.other_collections: Callable[[], list[str]] | None = None
        # A store on another collection of the same client (``on_collection``) never closes it.
        self._shared = False
        # Set by the process's resources (core.runtime): which documents are being replaced,
        # so reads show only their current version. None: no document ever is.
        self.generations: ReplacedGenerations | None = None

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

    @property
    def local(self) -> bool:
        return self._local

    @property
    def collection(self) -> str:
        return self._collection

    @contextlib.contextmanager
    def locked_client(self) -> Iterator[QdrantClient]:
        """The client, held alone (local mode is single-threaded)."""
        with self._lock:
            yield self._client

    def on_collection(self, collection: str, *, model: ModelIdentity) -> VectorStore:
        """A store on another collection through this one's client and lock (local mode
        allows one client per folder)."""
        twin = VectorStore(lambda: self._client, collection, local=self._local, model=model)
        twin._lock = self._lock
        twin._shared = True
        return twin

    def ensure_collection(self) -> None:
        """Create the collection, or check the one there: it must be of this model, and one
        of the layout before keyword vectors is migrated to the current one first."""
        if self._ensured:
            return
        with self._lock:
            client, name = self._client, self._collection
            if self.prepare is not None:
                # The alias of the active version: index_versions made it (and migrated a
                # pre-versions collection); only the model remains to check.
                self.prepare(client)
                self._check_model()
                self._ensured = True
                return
            migrating = client.collection_exists(name + layout.MIGRATION_SUFFIX)
            if not client.collection_exists(name) and not migrating:
                layout.create(client, name, self.model, payload_indexes=not self._local)
            elif migrating or not layout.is_current(client, name):
                self._check_old_dimension()
                layout.migrate(client, name, self.model, payload_indexes=not self._local)
            self._check_model()
            self._ensured = True

    def _check_model(self) -> None:
        stored = layout.stored_model(self._client, self._collection)
        if stored is not None and stored != self.model:
            raise EmbeddingModelMismatchError(self._collection, stored, self.model)

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
        generation: int = 0,
    ) -> int:
        self.ensure_collection()
        points = []
        terms = []
        for chunk, vector in zip(chunks, vectors, strict=True):
            if len(vector) != self.model.dim:
                raise EmbeddingModelMismatchError(
                    self._collection, self.model, ModelIdentity("the embedder", len(vector))
                )
            named: dict[str, models.Vector] = {layout.DENSE: list(vector)}
            keywords = keyword_vector(chunk.text)
            terms.append(keywords)
            if keywords:  # a chunk of punctuation alone has no terms
                named[layout.KEYWORD] = _sparse(keywords)
            points.append(
                models.PointStruct(
                    id=point_id(document_id, chunk.index, generation),
                    vector=named,
                    payload={
                        "document_id": document_id,
                        "filename": filename,
                        "owner": owner,
                        "page": chunk.page,
                        "label": location_label(chunk.page, chunk.label),
                        "chunk_index": chunk.index,
                        "text": chunk.text,
                        "generation": generation,
                    },
                )
            )
        with self._lock:
            self._client.upsert(self._collection, points=points, wait=True)
            if self._index is not None:
                self._index.add(
                    IndexedPoint(
                        point_id=str(point.id),
                        document_id=document_id,
                        owner=owner,
                        generation=generation,
                        dense=vector,
                        term_ids=keywords.indices,
                        term_weights=keywords.values,
                    )
                    for point, vector, keywords in zip(points, vectors, terms, strict=True)
                )
        return len(points)

    def count(self, document_id: str) -> int:
        """The vectors of the document's version that search shows."""
        self.ensure_collection()
        where = self._visible(_documents_filter([document_id]), None)
        with self._lock:
            result = self._client.count(self._collection, count_filter=where, exact=True)
        return result.count

    def count_all_versions(self, document_id: str) -> int:
        self.ensure_collection()
        with self._lock:
            result = self._client.count(
                self._collection, count_filter=_documents_filter([document_id]), exact=True
            )
        return result.count

    def vectors_of_texts(
        self, document_id: str, generation: int, texts: Sequence[str]
    ) -> dict[str, list[float]]:
        """``{chunk text: dense vector}`` of those ``texts`` that chunks of the document's
        version ``generation`` have: a new version reuses them even where the embedding cache
        has none (vectors stored before the cache, or by another worker host)."""
        wanted = sorted(set(texts))
        if not wanted:
            return {}
        self.ensure_collection()
        where = models.Filter(
            must=[
                _document_is(document_id),
                _generation_is(generation),
                models.FieldCondition(key="text", match=models.MatchAny(any=wanted)),
            ]
        )
        found: dict[str, list[float]] = {}
        offset = None
        with self._lock:
            while True:
                records, offset = self._client.scroll(
                    self._collection,
                    scroll_filter=where,
                    limit=256,
                    offset=offset,
                    with_payload=["text"],
                    with_vectors=[layout.DENSE],
                )
                for record in records:
                    dense = (
                        record.vector.get(layout.DENSE) if isinstance(record.vector, dict) else None
                    )
                    if isinstance(dense, list) and dense and isinstance(dense[0], float):
                        text = str((record.payload or {})["text"])
                        found[text] = [float(x) for x in dense if isinstance(x, float)]
                if offset is None:
                    return found

    def delete_generation(self, document_id: str, generation: int) -> None:
        """Remove one version's vectors (a new version that failed or was cancelled)."""
        self._delete(models.Filter(must=[_document_is(document_id), _generation_is(generation)]))

    def delete_other_generations(self, document_id: str, keep: int) -> None:
        """Remove every version's vectors but ``keep``'s (the old one, once replaced)."""
        self._delete(
            models.Filter(must=[_document_is(document_id)], must_not=[_generation_is(keep)])
        )

    def _delete(self, where: models.Filter) -> None:
        self.ensure_collection()
        with self._lock:
            self._client.delete(
                self._collection, points_selector=models.FilterSelector(filter=where), wait=True
            )

    def _visible(self, where: models.Filter | None, owner: str | None) -> models.Filter | None:
        """``where``, less the points of versions search must not see: a document being
        replaced shows the generation its row names, never the other one (before the switch
        the new one is hidden, after it the old one, until its points are removed)."""
        replaced = self.generations(owner) if self.generations is not None else ()
        if not replaced:
            return where
        hidden: list[models.Condition] = [
            models.Filter(must=[_document_is(document_id)], must_not=[_generation_is(shown)])
            for document_id, shown in replaced
        ]
        if where is None:
            return models.Filter(must_not=hidden)
        return where.model_copy(update={"must_not": [*(where.must_not or []), *hidden]})

    def delete_document(self, document_id: str) -> None:
        """Remove the document's points here and, for the active index, from every other
        version too: a version activated later must not bring a deleted document back."""
        self.ensure_collection()
        others = self.other_collections() if self.other_collections is not None else []
        selector = models.FilterSelector(filter=_documents_filter([document_id]))
        with self._lock:
            for collection in [self._collection, *others]:
                self._client.delete(collection, points_selector=selector, wait=True)
            if self._index is not None:
                self._index.remove_document(document_id)

    def count_all(self) -> int:
        self.ensure_collection()
        with self._lock:
            return self._client.count(self._collection, exact=True).count

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
        where. Local mode scores each side in its search arrays (core.search.local_index:
        Qdrant local mode scores point by point in Python, seconds at 10,000 chunks) and
        fuses them with the function local mode's own fused query uses: the same ranking.
        """
        self.ensure_collection()
        where = self._visible(_filter(document_ids, owner), owner)
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
        if self._local:
            return self._search_local(
                dense, keywords, embedded, (document_ids, owner), limit, depth, retrieval
            )
        # Each side carries its payload and dense vector only where its own list is the
        # answer (a single side).
        whole = retrieval != "hybrid"
        sides: dict[str, models.QueryRequest] = {}
        if dense is not None:
            sides["dense"] = _side(dense, layout.DENSE, where, depth, whole=whole)
        if keywords:
            sides["keyword"] = _side(_sparse(keywords), layout.KEYWORD, where, depth, whole=whole)
        requests = list(sides.values())
        fused_by_server = retrieval == "hybrid"
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
        lists = [response.points for response in responses[int(fused_by_server) :]]
        ranked = {
            side: {point.id: (rank, point.score) for rank, point in enumerate(points, 1)}
            for side, points in zip(sides, lists, strict=True)
        }
        final = responses[0].points if fused_by_server else lists[0][:limit]
        return [_hit(point, ranked, embedded) for point in final]

    def _search_local(
        self,
        dense: list[float] | None,
        keywords: KeywordVector | None,
        embedded: list[float] | None,
        where: tuple[Sequence[str] | None, str | None],
        limit: int,
        depth: int,
        retrieval: Retrieval,
    ) -> list[SearchHit]:
        """Local mode: each side from the search arrays (core.search.local_index), fused
        with the very function Qdrant's local fused query uses, and only the final hits'
        payloads read from Qdrant."""
        document_ids, owner = where
        shown = self.generations(owner) if self.generations is not None else ()
        with self._lock:
            index = self._local_index()
            lists: dict[str, list[tuple[str, float]]] = {}
            if dense is not None:
                lists["dense"] = index.dense(
                    dense, depth=depth, document_ids=document_ids, owner=owner, shown=shown
                )
            if keywords:
                lists["keyword"] = index.keyword(
                    keywords.indices,
                    keywords.values,
                    depth=depth,
                    document_ids=document_ids,
                    owner=owner,
                    shown=shown,
                )
            scored = {
                side: [models.ScoredPoint(id=pid, version=0, score=s) for pid, s in found]
                for side, found in lists.items()
            }
            if retrieval == "hybrid":
                final = reciprocal_rank_fusion(
                    list(scored.values()), limit=limit, ranking_constant_k=RRF_K
                )
            else:
                final = next(iter(scored.values()))[:limit]
            records = self._client.retrieve(
                self._collection, ids=[point.id for point in final], with_payload=True
            )
            payloads = {str(record.id): record.payload or {} for record in records}
            cosine = {
                str(point.id): index.cosine(str(point.id), embedded)
                for point in final
                if embedded is not None
            }
        ranked: dict[str, dict[models.ExtendedPointId, tuple[int, float]]] = {
            side: {pid: (rank, s) for rank, (pid, s) in enumerate(found, 1)}
            for side, found in lists.items()
        }
        return [
            _hit(
                point.model_copy(update={"payload": payloads[str(point.id)]}),
                ranked,
                embedded,
                cosine=cosine.get(str(point.id)),
            )
            for point in final
            if str(point.id) in payloads
        ]

    def _local_index(self) -> LocalSearchIndex:
        """The search arrays of local mode, (re)loaded from Qdrant when missing or when
        Qdrant holds another number of points (a write that did not go through here)."""
        stored = self._client.count(self._collection, exact=True).count
        # The active-index alias may have been switched to another version since the load.
        target = self._alias_target()
        if self._index is None or len(self._index) != stored or self._index_source != target:
            self._index = LocalSearchIndex.load(self._client, self._collection, self.model.dim)
            self._index_source = target
        return self._index

    def _alias_target(self) -> str:
        """The collection this store's name resolves to (itself unless it is an alias)."""
        for alias in self._client.get_aliases().aliases:
            if alias.alias_name == self._collection:
                return alias.collection_name
        return self._collection

    def chunk_texts(
        self,
        document_id: str,
        chunk_indexes: Sequence[int],
        *,
        owner: str | None,
        generation: int = 0,
    ) -> dict[int, tuple[int, str]]:
        """``{chunk index: (page, text)}`` of those chunks of one version of a document (the
        owner's only)."""
        if not chunk_indexes:
            return {}
        self.ensure_collection()
        # Point ids derive from (document, chunk index, version): fetching them by id costs the
        # same in local mode and on a server, where a filtered scroll is evaluated point by
        # point in local mode. The owner check is the filter's.
        ids = [point_id(document_id, index, generation) for index in chunk_indexes]
        with self._lock:
            fetched = self._client.retrieve(self._collection, ids=ids, with_payload=True)
        records = [
            record
            for record in fetched
            if (record.payload or {}).get("document_id") == document_id
            and (owner is None or (record.payload or {}).get("owner") == owner)
        ]
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
            if self._opened is not None and not self._shared:
                self._opened.close()
                self._opened = None
                self._ensured = False
                self._index = None


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


def _document_is(document_id: str) -> models.FieldCondition:
    return models.FieldCondition(key="document_id", match=models.MatchValue(value=document_id))


def _generation_is(generation: int) -> models.Condition:
    match = models.FieldCondition(key="generation", match=models.MatchValue(value=generation))
    if generation:
        return match
    # Points stored before versions existed carry no generation: they are the first, 0.
    return models.Filter(
        should=[match, models.IsEmptyCondition(is_empty=models.PayloadField(key="generation"))]
    )


def _documents_filter(document_ids: Sequence[str]) -> models.Filter:
    where = _filter(document_ids, None)
    assert where is not None
    return where


def _hit(
    point: models.ScoredPoint,
    ranked: dict[str, dict[models.ExtendedPointId, tuple[int, float]]],
    query: list[float] | None,
    *,
    cosine: float | None = None,
) -> SearchHit:
    """``cosine``: the hit's cosine similarity where the caller knows it (local mode);
    otherwise it is computed from the dense vector the hit carries."""
    payload = point.payload or {}
    dense_rank, dense_score = ranked.get("dense", {}).get(point.id, (None, None))
    keyword_rank, keyword_score = ranked.get("keyword", {}).get(point.id, (None, None))
    if dense_score is None:
        dense_score = cosine
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
        generation=int(str(payload.get("generation") or 0)),
    )


def _cosine(query: list[float], stored: object) -> float | None:
    """The cosine similarity of a hit the dense side did not rank (found by keyword alone)."""
    vector = stored.get(layout.DENSE) if isinstance(stored, dict) else None
    if not isinstance(vector, list) or not vector or not isinstance(vector[0], float):
        return None
    dot = sum(a * b for a, b in zip(query, vector, strict=True))
    norms = math.sqrt(sum(a * a for a in query)) * math.sqrt(sum(b * b for b in vector))
    return dot / norms if norms else None
