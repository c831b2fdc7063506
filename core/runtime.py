"""Builds the long-lived resources of a process (database, storage, vectors, embedder)."""

from __future__ import annotations

import gc
import threading
from dataclasses import dataclass, field

from sqlalchemy import Engine

from core import migrate
from core.db import make_engine
from core.ingestion import offload, records
from core.ingestion.storage import DocumentStorage
from core.search.embeddings import Embedder
from core.search.index_versions import IndexSpec, IndexVersions, alias_name
from core.search.model_identity import ModelIdentity
from core.search.vectorstore import VectorStore
from core.settings import Settings


@dataclass
class Resources:
    settings: Settings
    engine: Engine
    storage: DocumentStorage
    vectors: VectorStore
    # The index versions (core.search.index_versions); ``vectors`` is the active one's alias.
    versions: IndexVersions
    _embedder: Embedder | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def embedder_config(self) -> offload.EmbedderConfig:
        return offload.EmbedderConfig.from_settings(self.settings)

    def embedder(self) -> Embedder:
        # Loaded on first use, for questions (search, chat); ingestion embeds in the worker's
        # embedding process instead (core.ingestion.offload).
        with self._lock:
            if self._embedder is None:
                self._embedder = self.embedder_config().load()
            return self._embedder

    def close(self) -> None:
        self.vectors.close()
        self.engine.dispose()


def open_resources(settings: Settings, *, embedder: Embedder | None = None) -> Resources:
    for folder in (settings.data_dir, settings.uploads_dir, settings.artifacts_dir):
        folder.mkdir(parents=True, exist_ok=True)
    engine = make_engine(settings.sql_url)
    migrate.upgrade(engine)  # under a lock: replicas starting together migrate once
    vectors = VectorStore.connect(
        url=settings.qdrant_url,
        api_key=settings.qdrant_api_key,
        path=settings.qdrant_path,
        collection=alias_name(settings.qdrant_collection),
        model=ModelIdentity.of(settings.embedding_model_path),
    )
    versions = IndexVersions(vectors, settings.qdrant_collection, IndexSpec.from_settings(settings))
    vectors.prepare = versions.bootstrap
    vectors.other_collections = versions.other_collections
    # Reads show one version of a document being replaced (core.ingestion.records, replace.md).
    vectors.generations = lambda owner: records.replaced_generations(engine, owner)
    return Resources(
        settings=settings,
        engine=engine,
        storage=DocumentStorage(
            uploads_dir=settings.uploads_dir, artifacts_dir=settings.artifacts_dir
        ),
        vectors=vectors,
        versions=versions,
        _embedder=embedder,
    )


def freeze_startup_heap() -> None:
    """Exempt everything loaded so far (torch, transformers, the chat model, the Temporal
    SDK: millions of objects that live as long as the process) from garbage collection.

    A full collection walks every tracked object; over this heap that stalled the event loop
    for 50-340 ms at a time, the whole tail of status and WebSocket latency. Frozen, a full
    collection walks only what was made since.
    """
    gc.collect()
    gc.freeze()
