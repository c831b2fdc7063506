"""The collection layout: a named dense vector and a keyword (sparse, IDF) vector per point,
and the migration of a collection made before keyword search (one unnamed dense vector).

The migration copies every point, with its dense vector and payload, into a new collection of
the current layout, its keyword vector computed from the stored chunk text: nothing is
re-uploaded or re-embedded. It is resumable: the copy is made in ``<name>__migrating`` and
only then replaces the old collection, so a process killed half-way starts over on its next
start, and one killed after the old collection was dropped finishes the copy back.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from qdrant_client import QdrantClient, models
from qdrant_client.conversions import common_types as types

from core.search.keywords import keyword_vector
from core.search.model_identity import ModelIdentity

DENSE = "dense"
KEYWORD = "keyword"
MIGRATION_SUFFIX = "__migrating"
COPY_BATCH = 256

Vectors = dict[str, models.Vector]

log = logging.getLogger("docchat.vectorstore")


def create(client: QdrantClient, name: str, model: ModelIdentity, *, payload_indexes: bool) -> None:
    client.create_collection(
        name,
        vectors_config={
            DENSE: models.VectorParams(size=model.dim, distance=models.Distance.COSINE)
        },
        sparse_vectors_config={KEYWORD: models.SparseVectorParams(modifier=models.Modifier.IDF)},
        metadata=model.metadata(),
    )
    # Local mode ignores payload indexes (and warns); a server uses them for filters.
    for field in ("document_id", "owner") if payload_indexes else ():
        client.create_payload_index(name, field, models.PayloadSchemaType.KEYWORD)


def is_current(client: QdrantClient, name: str) -> bool:
    """Whether ``name`` has named dense and keyword vectors (the layout ``create`` makes)."""
    params = client.get_collection(name).config.params
    return isinstance(params.vectors, dict) and KEYWORD in (params.sparse_vectors or {})


def stored_model(client: QdrantClient, name: str) -> ModelIdentity | None:
    info = client.get_collection(name)
    return ModelIdentity.from_metadata(info.config.metadata)


def old_dimension(client: QdrantClient, name: str) -> int | None:
    vectors = client.get_collection(name).config.params.vectors
    return vectors.size if isinstance(vectors, models.VectorParams) else None


def migrate(client: QdrantClient, name: str, model: ModelIdentity, *, payload_indexes: bool) -> int:
    """Bring ``name`` to the current layout (see the module docstring); returns the points
    copied into it (0 when it already had the layout)."""
    temporary = name + MIGRATION_SUFFIX
    exists = client.collection_exists(name)
    if exists and is_current(client, name) and not client.collection_exists(temporary):
        return 0
    if exists and not is_current(client, name):
        # The old collection is intact: (re)start the copy from it.
        if client.collection_exists(temporary):
            client.delete_collection(temporary)
        create(client, temporary, model, payload_indexes=False)
        total = client.count(name, exact=True).count
        log.info("vector collection %r: adding keyword vectors to %d points", name, total)
        _copy(client, name, temporary, total, old_layout=True)
        client.delete_collection(name)
    # The copy is complete in the temporary collection: move it to the real name.
    if not client.collection_exists(name):
        create(client, name, model, payload_indexes=payload_indexes)
    total = client.count(temporary, exact=True).count
    copied = _copy(client, temporary, name, total, old_layout=False)
    client.delete_collection(temporary)
    log.info("vector collection %r: migrated, %d points with keyword vectors", name, copied)
    return copied


def _copy(client: QdrantClient, source: str, target: str, total: int, *, old_layout: bool) -> int:
    vectors_of: Callable[[models.Record], Vectors] = _with_keywords if old_layout else _same_vectors
    copied = 0
    offset: types.PointId | None = None
    while True:
        records, offset = client.scroll(
            source, limit=COPY_BATCH, offset=offset, with_payload=True, with_vectors=True
        )
        if records:
            client.upsert(
                target,
                points=[
                    models.PointStruct(id=r.id, vector=vectors_of(r), payload=r.payload)
                    for r in records
                ],
                wait=True,
            )
            copied += len(records)
            log.info("vector collection %r: %d / %d points copied", target, copied, total)
        if offset is None:
            return copied


def _with_keywords(record: models.Record) -> Vectors:
    dense = record.vector
    assert isinstance(dense, list), "an old-layout point has one unnamed dense vector"
    vectors: dict[str, models.Vector] = {
        DENSE: [float(x) for x in dense if not isinstance(x, list)]
    }
    keywords = keyword_vector(str((record.payload or {}).get("text", "")))
    if keywords:
        vectors[KEYWORD] = models.SparseVector(indices=keywords.indices, values=keywords.values)
    return vectors


def _same_vectors(record: models.Record) -> Vectors:
    assert isinstance(record.vector, dict), "a current-layout point has named vectors"
    return dict(record.vector)
