"""Schema migrations (Alembic, in ``migrations/``): applied on start-up and by hand.

    python -m core.migrate            # upgrade the configured database to the latest revision
    python -m core.migrate --check    # exit 1 unless it is at the latest revision already

Several API replicas and workers may start at the same moment, so the upgrade runs under a
lock: on PostgreSQL a transaction-level advisory lock taken in the same transaction as the
upgrade (PostgreSQL's DDL is transactional: the others wait, then find nothing left to do); on
SQLite an exclusive lock on a file next to the database. A database made by the old
``create_all`` start-up (before migrations existed) is adopted: it holds exactly the baseline
revision's tables, so it is stamped with that revision and upgraded from there.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import logging
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, inspect, text
from sqlmodel.sql.sqltypes import AutoString, UTCDateTime

log = logging.getLogger("docchat.migrate")

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"
# The revision whose tables the pre-migration ``create_all`` made.
BASELINE = "0001"
# pg_advisory_xact_lock's key: any constant shared by every docchat process ("docchat").
LOCK_KEY = int.from_bytes(b"docchat", "big")


def alembic_config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("path_separator", "os")
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def head() -> str:
    revision = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if revision is None:
        raise RuntimeError(f"no migrations in {MIGRATIONS}")
    return revision


def current(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the database to ``revision``; safe to call from many processes at once."""
    with _migration_lock(engine) as connection:
        before = MigrationContext.configure(connection).get_current_revision()
        if before is None and inspect(connection).has_table("document"):
            log.info("adopting a database created before migrations: stamping %s", BASELINE)
            command.stamp(alembic_config(connection), BASELINE)
            before = BASELINE
        command.upgrade(alembic_config(connection), revision)
        after = MigrationContext.configure(connection).get_current_revision()
        connection.commit()
    if before != after:
        log.info("database migrated from %s to %s", before or "empty", after)


@contextlib.contextmanager
def _migration_lock(engine: Engine) -> Iterator[Connection]:
    """A connection in a transaction that no other docchat process is migrating through."""
    if engine.dialect.name == "postgresql":
        with engine.connect() as connection:
            # Released by the commit (or rollback) that ends the upgrade's transaction.
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": LOCK_KEY})
            yield connection
        return
    database = engine.url.database
    if engine.dialect.name != "sqlite" or not database or database == ":memory:":
        with engine.connect() as connection:
            yield connection
        return
    lock_path = Path(database).with_name(Path(database).name + ".migrate-lock")
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with lock_path.open("a") as lock_file:
        fcntl.flock(lock_file, fcntl.LOCK_EX)
        try:
            with engine.connect() as connection:
                yield connection
        finally:
            fcntl.flock(lock_file, fcntl.LOCK_UN)


def render_item(type_: str, obj: Any, autogen_context: Any) -> str | Literal[False]:
    """Autogenerate writes SQLModel's own column types as the plain SQLAlchemy types they
    store, so a migration never depends on SQLModel's internals."""
    if type_ == "type" and isinstance(obj, AutoString):
        return f"sa.String(length={obj.length})" if obj.length else "sa.String()"
    if type_ == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    return False


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m core.migrate", description=__doc__)
    parser.add_argument(
        "--check", action="store_true", help="only report; exit 1 if an upgrade is pending"
    )
    parser.add_argument("--revision", default="head", help="target revision (default: head)")
    args = parser.parse_args(argv)

    # Imported here: settings are read (and checked) only when run as a command.
    from core.db import make_engine
    from core.settings import ConfigurationError, load_settings

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    try:
        settings = load_settings()
    except ConfigurationError as exc:
        print(f"docchat: {exc}", file=sys.stderr)
        return 2
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = make_engine(settings.sql_url)
    try:
        if args.check:
            at, latest = current(engine), head()
            print(f"database at {at or 'empty'}, latest {latest}")
            return 0 if at == latest else 1
        upgrade(engine, args.revision)
        print(f"database at {current(engine)}")
    finally:
        engine.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
