"""Index versions: what shapes the vectors makes a version, each version its own collection.

An index version is fixed by everything that shapes a chunk's vectors: the embedding model
(name and dimension), its precision, the chunker's settings and the point layout (dense plus
keyword vectors, ``core.search.layout``). Its id is a hash of those, so the same settings on
any machine name the same version. Each version is its own Qdrant collection
(``<base>__<version>``), its spec and state (``building`` or ``ready``) kept in the
collection's metadata: Qdrant itself is the registry, nothing to keep in step elsewhere.

Search, chat and ingestion use one name, the alias ``<base>__active``, pointing at the active
version; ``activate`` moves it in one atomic alias operation, so a reader sees the old version
or the new one, never neither. This module is the one place that resolves it.

An install from before versions has a plain collection named ``<base>``: it is adopted as
version ``1`` in place (its points are neither copied nor re-embedded), its spec taken from the
model recorded in it and the chunker settings of the first process that adopts it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from dataclasses import asdict, dataclass, fields
from datetime import UTC, datetime
from typing import Any

from qdrant_client import QdrantClient, models

from core.errors import ConflictError, NotFoundError
from core.search import layout
from core.search.model_identity import ModelIdentity
from core.search.vectorstore import VectorStore
from core.settings import Settings

log = logging.getLogger("docchat.index_versions")

# The point layout's own version: 2 is named dense + keyword (IDF) vectors. Bump it when the
# layout changes what a point holds, and every install is told to re-index.
LAYOUT_VERSION = 2
LEGACY_VERSION = "1"
ACTIVE_SUFFIX = "__active"
META_VERSION = "index_version"
META_SPEC = "index_spec"
META_STATE = "index_state"
META_CREATED = "index_created_at"


class IndexState:
    BUILDING = "building"
    READY = "ready"


@dataclass(frozen=True)
class IndexSpec:
    """Everything that shapes the stored vectors; equal specs make interchangeable indexes."""

    embedding_model: str
    embedding_dim: int
    precision: str
    chunk_tokens: int
    overlap_tokens: int
    layout: int = LAYOUT_VERSION

    @classmethod
    def from_settings(cls, settings: Settings) -> IndexSpec:
        model = ModelIdentity.of(settings.embedding_model_path)
        return cls(
            embedding_model=model.name,
            embedding_dim=model.dim,
            precision=settings.embedding_precision,
            chunk_tokens=settings.chunk_tokens,
            overlap_tokens=settings.chunk_overlap_tokens,
        )

    @property
    def model(self) -> ModelIdentity:
        return ModelIdentity(self.embedding_model, self.embedding_dim)

    def version_id(self) -> str:
        canonical = json.dumps(asdict(self), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()[:12]

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> IndexSpec:
        names = {f.name for f in fields(cls)}
        return cls(**{key: value for key, value in data.items() if key in names})

    def differences(self, other: IndexSpec) -> dict[str, dict[str, Any]]:
        """``{setting: {"index": ours, "configured": theirs}}`` where ``other`` differs."""
        ours, theirs = asdict(self), asdict(other)
        return {
            key: {"index": ours[key], "configured": theirs[key]}
            for key in ours
            if ours[key] != theirs[key]
        }


@dataclass(frozen=True)
class IndexVersion:
    version: str
    collection: str
    spec: IndexSpec
    state: str
    created_at: str
    active: bool

    def as_dict(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "collection": self.collection,
            "state": self.state,
            "active": self.active,
            "created_at": self.created_at,
            "spec": self.spec.as_dict(),
        }


class IndexVersionNotFoundError(NotFoundError):
    error_code = "index_version_not_found"


class IndexVersionConflictError(ConflictError):
    error_code = "index_version_conflict"


def alias_name(base: str) -> str:
    """The name search and chat use: an alias of the active version's collection."""
    return base + ACTIVE_SUFFIX


def collection_name(base: str, version: str) -> str:
    return base if version == LEGACY_VERSION else f"{base}__{version}"


class IndexVersions:
    """The versions of one install's index (``base`` is DOCCHAT_QDRANT_COLLECTION)."""

    def __init__(self, store: VectorStore, base: str, configured: IndexSpec) -> None:
        self._store = store
        self.base = base
        self.alias = alias_name(base)
        self.configured = configured
        self._lock = threading.RLock()

    # -- the active version ---------------------------------------------------------------

    def bootstrap(self, client: QdrantClient) -> None:
        """Make sure the alias points at a version: adopt a pre-versions collection as
        version 1, or create the configured version in a fresh install. Idempotent."""
        with self._lock:
            if self._alias_target(client) is not None:
                return
            if client.collection_exists(self.base):
                self._adopt_legacy(client)
                target = self.base
            else:
                version = self.configured.version_id()
                target = collection_name(self.base, version)
                if not client.collection_exists(target):
                    self._create(client, target, version, self.configured, IndexState.READY)
                else:
                    self._set_state(client, target, IndexState.READY)
            client.update_collection_aliases(
                change_aliases_operations=[_create_alias(target, self.alias)]
            )
            log.info("index: %r now points at %r", self.alias, target)

    def _adopt_legacy(self, client: QdrantClient) -> None:
        if not layout.is_current(client, self.base):
            layout.migrate(client, self.base, self.configured.model, payload_indexes=False)
        meta = client.get_collection(self.base).config.metadata or {}
        if META_VERSION in meta:
            return
        stored = ModelIdentity.from_metadata(meta) or self.configured.model
        spec = IndexSpec(
            embedding_model=stored.name,
            embedding_dim=stored.dim,
            precision=self.configured.precision,
            chunk_tokens=self.configured.chunk_tokens,
            overlap_tokens=self.configured.overlap_tokens,
        )
        client.update_collection(self.base, metadata=_metadata(LEGACY_VERSION, spec, "ready"))
        log.info("index: the collection %r is adopted as index version 1", self.base)

    def active(self) -> IndexVersion:
        """The version search and chat read (k19 and ingestion write into it)."""
        with self._store.locked_client() as client:
            self.bootstrap(client)
            target = self._alias_target(client)
            assert target is not None
            return self._describe(client, target, active_target=target)

    def active_version(self) -> str:
        return self.active().version

    # -- the registry ---------------------------------------------------------------------

    def all_versions(self) -> list[IndexVersion]:
        with self._store.locked_client() as client:
            self.bootstrap(client)
            target = self._alias_target(client)
            names = [c.name for c in client.get_collections().collections]
            found = []
            for name in names:
                if name != self.base and not name.startswith(self.base + "__"):
                    continue
                meta = client.get_collection(name).config.metadata or {}
                if META_VERSION in meta:
                    found.append(self._describe(client, name, active_target=target))
            return sorted(found, key=lambda v: (v.created_at, v.version))

    def get(self, version: str) -> IndexVersion:
        for candidate in self.all_versions():
            if candidate.version == version:
                return candidate
        raise IndexVersionNotFoundError(
            f"There is no index version {version!r}.", details={"version": version}
        )

    def prepare_target(self, spec: IndexSpec) -> IndexVersion:
        """The collection a re-index builds ``spec`` into: created as ``building``, or the
        one a re-index interrupted before (its finished documents are kept)."""
        version = spec.version_id()
        name = collection_name(self.base, version)
        with self._store.locked_client() as client:
            self.bootstrap(client)
            if self._alias_target(client) == name:
                raise IndexVersionConflictError(
                    f"Index version {version} is already the active one: nothing to rebuild.",
                    details={"version": version},
                )
            if client.collection_exists(name):
                self._set_state(client, name, IndexState.BUILDING)
            else:
                self._create(client, name, version, spec, IndexState.BUILDING)
            return self._describe(client, name, active_target=self._alias_target(client))

    def building(self) -> list[IndexVersion]:
        return [v for v in self.all_versions() if v.state == IndexState.BUILDING]

    def activate(self, version: str, *, finish_build: bool = False) -> IndexVersion:
        """Point the alias at ``version`` in one atomic alias operation. A version still
        being built is refused unless its re-index finished it (``finish_build``)."""
        chosen = self.get(version)
        if chosen.state != IndexState.READY and not finish_build:
            raise IndexVersionConflictError(
                f"Index version {version} is still being built; wait for its re-index.",
                details={"version": version, "state": chosen.state},
            )
        with self._store.locked_client() as client:
            if finish_build:
                self._set_state(client, chosen.collection, IndexState.READY)
            operations: list[models.AliasOperations] = []
            if self._alias_target(client) is not None:
                operations.append(
                    models.DeleteAliasOperation(
                        delete_alias=models.DeleteAlias(alias_name=self.alias)
                    )
                )
            operations.append(_create_alias(chosen.collection, self.alias))
            client.update_collection_aliases(change_aliases_operations=operations)
        log.info("index: version %s is active", version)
        return self.get(version)

    def delete(self, version: str) -> None:
        chosen = self.get(version)
        if chosen.active:
            raise IndexVersionConflictError(
                f"Index version {version} is the active one; activate another first.",
                details={"version": version},
            )
        with self._store.locked_client() as client:
            client.delete_collection(chosen.collection)
        log.info("index: version %s dropped", version)

    def drop_building(self, version: str) -> None:
        """Drop a version a cancelled re-index left half-built."""
        chosen = self.get(version)
        if chosen.state == IndexState.BUILDING and not chosen.active:
            self.delete(version)

    def store(self, version: IndexVersion) -> VectorStore:
        """A store on ``version``'s own collection, sharing this process's client."""
        return self._store.on_collection(version.collection, model=version.spec.model)

    def other_collections(self) -> list[str]:
        """Every version's collection but the active one's: a deleted document leaves all."""
        return [v.collection for v in self.all_versions() if not v.active]

    # -- settings against the index -------------------------------------------------------

    def report(self) -> dict[str, Any]:
        """Whether the configured settings match the active version, and what to do if not."""
        active = self.active()
        configured = self.configured.version_id()
        differences = active.spec.differences(self.configured)
        matches = not differences
        report: dict[str, Any] = {
            "active_version": active.version,
            "configured_version": configured,
            "matches": matches,
            "differences": differences,
        }
        if not matches:
            report["action"] = (
                "The settings no longer match the active index. Search and chat keep using "
                f"version {active.version} (and new uploads are chunked as it was) until you "
                "re-index: POST /index/reindex or `docchat reindex` builds version "
                f"{configured} from the kept text and switches to it when it is complete."
            )
            if active.spec.model != self.configured.model:
                report["action"] += (
                    " The embedding model differs: until then search and uploads are refused "
                    "with embedding_model_mismatch."
                )
        return report

    # -- helpers --------------------------------------------------------------------------

    def _alias_target(self, client: QdrantClient) -> str | None:
        for alias in client.get_aliases().aliases:
            if alias.alias_name == self.alias:
                return alias.collection_name
        return None

    def _create(
        self, client: QdrantClient, name: str, version: str, spec: IndexSpec, state: str
    ) -> None:
        layout.create(client, name, spec.model, payload_indexes=not self._store.local)
        client.update_collection(name, metadata=_metadata(version, spec, state))
        log.info("index: created version %s (%s) as %r", version, state, name)

    def _set_state(self, client: QdrantClient, name: str, state: str) -> None:
        client.update_collection(name, metadata={META_STATE: state})

    def _describe(
        self, client: QdrantClient, name: str, *, active_target: str | None
    ) -> IndexVersion:
        meta = client.get_collection(name).config.metadata or {}
        spec_data = meta.get(META_SPEC)
        spec = IndexSpec.from_dict(spec_data) if isinstance(spec_data, dict) else self.configured
        return IndexVersion(
            version=str(meta.get(META_VERSION, LEGACY_VERSION)),
            collection=name,
            spec=spec,
            state=str(meta.get(META_STATE, IndexState.READY)),
            created_at=str(meta.get(META_CREATED, "")),
            active=name == active_target,
        )


def _metadata(version: str, spec: IndexSpec, state: str) -> dict[str, Any]:
    return {
        **spec.model.metadata(),
        META_VERSION: version,
        META_SPEC: spec.as_dict(),
        META_STATE: state,
        META_CREATED: datetime.now(UTC).isoformat(timespec="seconds"),
    }


def _create_alias(collection: str, alias: str) -> models.CreateAliasOperation:
    return models.CreateAliasOperation(
        create_alias=models.CreateAlias(collection_name=collection, alias_name=alias)
    )
