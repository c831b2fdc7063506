"""One local Qdrant folder, one process: a standalone worker next to an API that has no
``DOCCHAT_QDRANT_URL`` refuses to start at once, saying what to set (instead of failing on
Qdrant's lock at its first vectorize step); so does an API next to such a worker."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from temporalio.testing import WorkflowEnvironment

from api.app import create_app
from core.search.embeddings import Embedder
from core.search.local_qdrant import LocalQdrantClaim, QdrantFolderInUseError
from core.settings import Settings

REPO = Path(__file__).resolve().parents[3]  # tests/core/search/ -> the repository


def _worker(data_dir: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(REPO / "worker.py")],
        cwd=data_dir.parent,
        env={
            "PATH": "/usr/bin:/bin",
            "PYTHONPATH": str(REPO),
            "DOCCHAT_DATA_DIR": str(data_dir),
            # Nothing listens here: a worker that got past the check would fail differently.
            "DOCCHAT_TEMPORAL_ADDRESS": "127.0.0.1:9",
            **env,
        },
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def test_a_worker_next_to_an_api_on_the_same_folder_refuses_to_start(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    api = LocalQdrantClaim.take(Settings(data_dir=data_dir), role="the API")
    assert api is not None
    try:
        result = _worker(data_dir)
    finally:
        api.release()
    assert result.returncode == 1, result.stderr
    assert result.stderr.startswith("docchat worker: Cannot start a worker"), result.stderr
    assert "used by the API (pid" in result.stderr
    assert "DOCCHAT_QDRANT_URL" in result.stderr and "DOCCHAT_EMBEDDED_WORKER" in result.stderr
    assert "Traceback" not in result.stderr


async def test_an_api_next_to_a_worker_on_the_same_folder_refuses_to_start(
    tmp_path: Path, temporal_env: WorkflowEnvironment, embedder: Embedder
) -> None:
    settings = Settings(
        data_dir=tmp_path / "data",
        temporal_address=temporal_env.client.service_client.config.target_host,
    )
    worker = LocalQdrantClaim.take(settings, role="a worker")
    assert worker is not None
    app = create_app(settings, embedder=embedder)
    with pytest.raises(QdrantFolderInUseError, match="DOCCHAT_QDRANT_URL") as refused:
        async with app.router.lifespan_context(app):
            pass
    assert "used by a worker (pid" in str(refused.value)
    # Once the worker has gone (its claim dies with it), the API starts.
    worker.release()
    async with app.router.lifespan_context(app):
        assert app.state.services.resources.settings.qdrant_path.parent == settings.data_dir


def test_with_a_qdrant_server_nothing_is_claimed(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data", qdrant_url="http://qdrant:6333")
    assert LocalQdrantClaim.take(settings, role="the API") is None
    assert LocalQdrantClaim.take(settings, role="a worker") is None
