"""Index versions on a real Qdrant (local mode): ids, the alias, adoption, swap, drop."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from core.errors import ConflictError, NotFoundError
from core.search.index_versions import (
    LEGACY_VERSION,
    IndexSpec,
    IndexState,
    IndexVersions,
    alias_name,
)
from core.search.model_identity import ModelIdentity
from core.search.vectorstore import VectorStore
from core.settings import Settings
from core.texts import Chunk

BASE = "docchat_chunks"
SPEC = IndexSpec("all-MiniLM-L6-v2", 384, "float32", 128, 32)


def open_versions(path: Path, spec: IndexSpec = SPEC) -> tuple[VectorStore, IndexVersions]:
    store = VectorStore.connect(url=None, api_key=None, path=path, collection=alias_name(BASE))
    versions = IndexVersions(store, BASE, spec)
    store.prepare = versions.bootstrap
    store.other_collections = versions.other_collections
    return store, versions


def put(store: VectorStore, document_id: str, n: int, text: str = "alpha beta") -> None:
    store.upsert_chunks(
        document_id=document_id,
        filename="a.pdf",
        owner="local",
        chunks=[Chunk(index=i, page=1, text=f"{text} {i}", token_count=3) for i in range(n)],
        vectors=[[1.0] + [0.0] * 383 for _ in range(n)],
    )


def test_the_version_id_follows_every_setting_that_shapes_vectors() -> None:
    assert SPEC.version_id() == IndexSpec("all-MiniLM-L6-v2", 384, "float32", 128, 32).version_id()
    changed = {
        replace(SPEC, chunk_tokens=64).version_id(),
        replace(SPEC, overlap_tokens=0).version_id(),
        replace(SPEC, precision="bfloat16").version_id(),
        replace(SPEC, embedding_model="other", embedding_dim=768).version_id(),
        replace(SPEC, layout=3).version_id(),
    }
    assert SPEC.version_id() not in changed and len(changed) == 5


def test_the_spec_comes_from_the_settings(tmp_path: Path) -> None:
    spec = IndexSpec.from_settings(Settings(data_dir=tmp_path, chunk_tokens=64))
    assert (spec.chunk_tokens, spec.embedding_model, spec.embedding_dim) == (
        64,
        "all-MiniLM-L6-v2",
        384,
    )


def test_a_fresh_install_gets_its_configured_version_behind_the_alias(tmp_path: Path) -> None:
    store, versions = open_versions(tmp_path)
    put(store, "d1", 3)
    [only] = versions.all_versions()
    assert only.version == SPEC.version_id() and only.active and only.state == IndexState.READY
    assert only.collection == f"{BASE}__{SPEC.version_id()}"
    assert versions.store(only).count("d1") == 3
    assert versions.report()["matches"] is True


def test_a_pre_versions_collection_becomes_version_1_in_place(tmp_path: Path) -> None:
    legacy = VectorStore.connect(url=None, api_key=None, path=tmp_path, collection=BASE)
    put(legacy, "old", 5)
    legacy.close()
    store, versions = open_versions(tmp_path)
    assert store.count("old") == 5  # read through the alias: nothing copied or re-embedded
    [adopted] = versions.all_versions()
    assert (adopted.version, adopted.collection, adopted.active) == (LEGACY_VERSION, BASE, True)
    store.close()
    # Adopted once: a second start finds the same version, points unchanged.
    store, versions = open_versions(tmp_path)
    assert [v.version for v in versions.all_versions()] == [LEGACY_VERSION]
    assert store.count("old") == 5


def test_changed_settings_are_reported_with_what_to_do(tmp_path: Path) -> None:
    store, _ = open_versions(tmp_path)
    put(store, "d1", 2)
    store.close()
    _, versions = open_versions(tmp_path, replace(SPEC, chunk_tokens=64))
    report = versions.report()
    assert report["matches"] is False
    assert report["differences"] == {"chunk_tokens": {"index": 128, "configured": 64}}
    assert report["active_version"] == SPEC.version_id()
    assert report["configured_version"] == replace(SPEC, chunk_tokens=64).version_id()
    assert "re-index" in report["action"] and "POST /index/reindex" in report["action"]


def test_swap_switch_back_and_drop(tmp_path: Path) -> None:
    store, versions = open_versions(tmp_path)
    put(store, "d1", 2, "old")
    new_spec = replace(SPEC, chunk_tokens=64)
    target = versions.prepare_target(new_spec)
    assert target.state == IndexState.BUILDING and not target.active
    put(versions.store(target), "d1", 4, "new")
    with pytest.raises(ConflictError):
        versions.activate(target.version)  # still building
    assert store.count("d1") == 2  # readers see the old version until the swap
    versions.activate(target.version, finish_build=True)
    assert store.count("d1") == 4
    assert versions.active().version == new_spec.version_id()
    with pytest.raises(ConflictError):
        versions.delete(new_spec.version_id())  # the active one
    versions.activate(SPEC.version_id())  # switching back is one call
    assert store.count("d1") == 2
    versions.activate(new_spec.version_id())
    versions.delete(SPEC.version_id())
    assert [v.version for v in versions.all_versions()] == [new_spec.version_id()]
    with pytest.raises(NotFoundError):
        versions.get(SPEC.version_id())


def test_a_deleted_document_leaves_every_version(tmp_path: Path) -> None:
    store, versions = open_versions(tmp_path)
    put(store, "d1", 2)
    target = versions.prepare_target(replace(SPEC, chunk_tokens=64))
    put(versions.store(target), "d1", 3)
    store.delete_document("d1")
    assert store.count("d1") == 0
    assert versions.store(versions.get(target.version)).count("d1") == 0


def test_rebuilding_the_active_version_is_refused(tmp_path: Path) -> None:
    _, versions = open_versions(tmp_path)
    with pytest.raises(ConflictError):
        versions.prepare_target(SPEC)


def test_the_alias_store_refuses_another_model(tmp_path: Path) -> None:
    store, _ = open_versions(tmp_path)
    put(store, "d1", 1)
    store.close()
    other = VectorStore.connect(
        url=None,
        api_key=None,
        path=tmp_path,
        collection=alias_name(BASE),
        model=ModelIdentity("bigger", 768),
    )
    versions = IndexVersions(
        other, BASE, replace(SPEC, embedding_model="bigger", embedding_dim=768)
    )
    other.prepare = versions.bootstrap
    with pytest.raises(ConflictError, match="re-index"):
        other.ensure_collection()
    assert versions.report()["differences"]["embedding_model"]["index"] == "all-MiniLM-L6-v2"
