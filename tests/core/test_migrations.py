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
from core.db import make_engine

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
    # Start-up used to run create_all: such a database has the baseline's tables, no version.
    # (Today's models have columns added since, so the baseline is made by its own migration.)
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
