"""``docchat reindex``: refused while the index matches the settings; after a chunk-size
change it rebuilds, follows the progress to the end and prints the result."""

from __future__ import annotations

from pathlib import Path

from temporalio.testing import WorkflowEnvironment

from core.search.embeddings import Embedder
from tests.cli.conftest import docchat
from tests.servers import live_api


async def test_reindex_rebuilds_after_a_settings_change(
    tmp_path: Path, temporal_env: WorkflowEnvironment, embedder: Embedder, corpus: Path
) -> None:
    data_dir = tmp_path / "data"
    async with live_api(data_dir, temporal_env, embedder, corpus) as api:
        none = await docchat("reindex", "status", url=api.url)
        assert none.code == 1 and "reindex_not_found" in none.stderr
        current = await docchat("reindex", url=api.url)
        assert current.code == 1 and "already the active one" in current.stderr
    async with live_api(
        data_dir, temporal_env, embedder, corpus, ingest=False, chunk_tokens=64
    ) as api:
        configured = (await api.http.get("/index/versions")).json()["data"]["configured_version"]
        done = await docchat("reindex", url=api.url, timeout=300)
        assert done.code == 0, done.stderr
        assert f"Re-indexing into version {configured}." in done.stderr
        assert "100% completed: 1/1 documents" in done.stderr  # the progress bar's end
        assert configured in done.stdout and "completed" in done.stdout and "1 / 1" in done.stdout
        status = await docchat("reindex", "status", url=api.url)
        assert status.code == 0 and "completed" in status.stdout
        again = await docchat("reindex", "pause", url=api.url)
        assert again.code == 1 and "reindex_not_running" in again.stderr
