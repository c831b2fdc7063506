"""Alembic migrations on SQLite and PostgreSQL: empty to head, models and migrations agree,
start-up migration is safe with many processes at once, pre-migration databases are adopted."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, inspect
from sqlmodel import SQLModel

from core import migrate
from core.chat import tables as chat_tables  # noqa: F401  (the schema compared holds every table)
from core.db import make_engine
from core.ingestion import records
from core.ingestion.tables import ProcessingState, ProcessingStatus

REPO = Path(__file__).resolve().parents[2]
TABLES = {"document", "fileprocessingtask", "chatsession", "chatmessage", "typingindicator"}


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    """An empty database: unlike the shared fixture, not migrated."""
    engine = make_engine(database_url)
    yield engine
    engine.dispose()


def schema_diff(engine: Engine, metadata: sa.MetaData = SQLModel.metadata) -> list[object]:
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        diff: list[object] = compare_metadata(context, metadata)
    return diff


def test_empty_database_migrates_to_head(engine: Engine) -> None:
    assert migrate.current(engine) is None
    migrate.upgrade(engine)
    assert migrate.current(engine) == migrate.head()
    assert set(inspect(engine).get_table_names()) == TABLES | {"alembic_version"}
    migrate.upgrade(engine)  # a second start-up has nothing to do
    assert migrate.current(engine) == migrate.head()


def test_models_and_migrations_agree(engine: Engine) -> None:
    # A model changed without a migration (or the other way round) fails here.
    migrate.upgrade(engine)
    assert schema_diff(engine) == []


def test_a_model_change_without_a_migration_is_caught(engine: Engine) -> None:
    migrate.upgrade(engine)
    changed = sa.MetaData()
    for table in SQLModel.metadata.tables.values():
        table.to_metadata(changed)
    changed.tables["document"].append_column(sa.Column("language", sa.String(8)))
    diff = schema_diff(engine, changed)
    assert [(entry[0], entry[3].name) for entry in diff] == [("add_column", "language")]  # type: ignore[index]


def test_downgrade_to_base_and_back(engine: Engine) -> None:
    migrate.upgrade(engine)
    with engine.connect() as connection:
        command.downgrade(migrate.alembic_config(connection), "base")
        connection.commit()
    assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
    migrate.upgrade(engine)  # on PostgreSQL this also proves the enum types were dropped
    assert schema_diff(engine) == []


def test_replicas_starting_together_migrate_once(database_url: str) -> None:
    engines = [make_engine(database_url) for _ in range(4)]
    barrier = threading.Barrier(len(engines))
    errors: list[BaseException] = []

    def start(engine: Engine) -> None:
        barrier.wait()
        try:
            migrate.upgrade(engine)
        except BaseException as exc:  # reported below, with every other thread's
            errors.append(exc)

    threads = [threading.Thread(target=start, args=(engine,)) for engine in engines]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    try:
        assert errors == []
        assert migrate.current(engines[0]) == migrate.head()
        assert schema_diff(engines[0]) == []
    finally:
        for engine in engines:
            engine.dispose()


def test_database_made_before_migrations_is_adopted(engine: Engine) -> None:
    # Start-up used to run create_all: such a database has the baseline's tables, no version
    # (today's models are newer than the baseline, so the baseline's migration makes them).
    migrate.upgrade(engine, migrate.BASELINE)
    with engine.begin() as connection:
        connection.execute(sa.text("DROP TABLE alembic_version"))
    assert migrate.current(engine) is None
    migrate.upgrade(engine)
    assert migrate.current(engine) == migrate.head()
    assert schema_diff(engine) == []


def test_migrate_command(database_url: str, tmp_path: Path) -> None:
    env = {"PATH": "/usr/bin:/bin", "DOCCHAT_DATABASE_URL": database_url}
    env["DOCCHAT_DATA_DIR"] = str(tmp_path / "data")

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "core.migrate", *args],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
        )

    pending = run("--check")
    assert pending.returncode == 1 and "database at empty" in pending.stdout
    done = run()
    assert done.returncode == 0, done.stderr
    assert f"database at {migrate.head()}" in done.stdout
    assert run("--check").returncode == 0

    env["DOCCHAT_DATABASE_URL"] = "mysql://docchat:hunter2@db/docchat"
    refused = run()
    assert refused.returncode == 2
    assert "DOCCHAT_DATABASE_URL" in refused.stderr and "hunter2" not in refused.stderr


# (old status name, step name) of a 0001 row -> the (status, state) it has after 0002.
CONVERTED = {
    ("QUEUED", "UPLOAD"): (ProcessingStatus.PENDING, ProcessingState.QUEUED),
    ("QUEUED", "EXTRACT"): (ProcessingStatus.EXTRACTING, ProcessingState.QUEUED),
    ("RUNNING", "UPLOAD"): (ProcessingStatus.UPLOADING, ProcessingState.RUNNING),
    ("RUNNING", "CHUNK"): (ProcessingStatus.CHUNKING, ProcessingState.RUNNING),
    ("RETRYING", "VECTORIZE"): (ProcessingStatus.VECTORIZING, ProcessingState.RETRYING),
    ("FAILED", "EXTRACT"): (ProcessingStatus.FAILED, ProcessingState.FAILED),
    ("COMPLETED", "DONE"): (ProcessingStatus.COMPLETED, ProcessingState.COMPLETED),
    ("CANCELLED", "VECTORIZE"): (ProcessingStatus.CANCELLED, ProcessingState.CANCELLED),
}


def test_0002_converts_task_rows_to_the_seed_status_and_a_state(engine: Engine) -> None:
    migrate.upgrade(engine, "0001")
    rows = {f"t{i}": pair for i, pair in enumerate(CONVERTED)}
    with engine.begin() as connection:
        insert_tasks_0001(connection, rows)

    migrate.upgrade(engine)
    for task_id, pair in rows.items():
        row = records.get_task(engine, task_id)
        assert row is not None
        assert (row.status, row.state) == CONVERTED[pair], (task_id, pair)
    queued = records.list_tasks(engine, owner="local", states=[ProcessingState.QUEUED])
    assert {task.id for task in queued} == {"t0", "t1"}

    with engine.connect() as connection:
        command.downgrade(migrate.alembic_config(connection), "0001")
        connection.commit()
    with engine.connect() as connection:
        result = connection.execute(sa.text("SELECT id, status FROM fileprocessingtask"))
        back: dict[str, str] = {str(task_id): str(status) for task_id, status in result}
    assert back == {task_id: pair[0] for task_id, pair in rows.items()}
    migrate.upgrade(engine)
    assert schema_diff(engine) == []


def insert_tasks_0001(connection: sa.Connection, rows: dict[str, tuple[str, str]]) -> None:
    """Rows as 0001 stored them: enum member names, the lifecycle in ``status``."""
    now = "2026-11-30 12:00:00+00:00"
    connection.execute(
        sa.text(
            "INSERT INTO document (id, filename, stored_name, content_type, size_bytes, sha256,"
            " owner, status, created_at, updated_at) VALUES ('d', 'a.pdf', 'a', "
            "'application/pdf', 1, 'x', 'local', 'PROCESSING', :now, :now)"
        ),
        {"now": now},
    )
    for task_id, (status, step) in rows.items():
        connection.execute(
            sa.text(
                "INSERT INTO fileprocessingtask (id, document_id, workflow_id, owner, status,"
                " current_step, progress_percentage, upload_progress, extraction_progress,"
                " chunking_progress, vectorization_progress, pages_extracted, chunks_embedded,"
                " created_at, updated_at) VALUES (:id, 'd', :wf, 'local', :status, :step,"
                " 0, 0, 0, 0, 0, 0, 0, :now, :now)"
            ),
            {"id": task_id, "wf": f"ingest-{task_id}", "status": status, "step": step, "now": now},
        )
