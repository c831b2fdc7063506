"""Alembic environment: docchat's tables (``SQLModel.metadata``) and its configured database.

The database is, in order: a connection handed over by ``core.migrate`` (start-up, tests),
``alembic -x url=...``, or ``DOCCHAT_DATABASE_URL`` / the default SQLite file, read through the
same ``Settings`` as the service. Run from the repository root: ``alembic upgrade head``, or
``python -m core.migrate``, which also takes the migration lock (see ``core/migrate.py``).
"""

from __future__ import annotations

from logging.config import fileConfig

from alembic import context
from sqlalchemy import Connection, pool
from sqlmodel import SQLModel

# Importing the tables registers them on SQLModel.metadata, the schema autogenerate compares.
from core.chat import tables as chat_tables  # noqa: F401
from core.ingestion import tables as ingestion_tables  # noqa: F401
from core.migrate import render_item

config = context.config
target_metadata = SQLModel.metadata
if config.config_file_name is not None and "connection" not in config.attributes:
    # The alembic command line: its logging setup comes from alembic.ini.
    fileConfig(config.config_file_name, disable_existing_loggers=False)


def _url() -> str:
    url = context.get_x_argument(as_dictionary=True).get("url")
    if url:
        return url
    from core.settings import load_settings

    return load_settings().sql_url


def _configure(**options: object) -> None:
    context.configure(
        target_metadata=target_metadata,
        render_item=render_item,
        # SQLite cannot ALTER most things in place: later migrations rebuild its tables.
        render_as_batch=True,
        compare_type=True,
        **options,  # type: ignore[arg-type]
    )


def run_offline() -> None:
    _configure(url=_url(), literal_binds=True, dialect_opts={"paramstyle": "named"})
    with context.begin_transaction():
        context.run_migrations()


def run_online(connection: Connection) -> None:
    _configure(connection=connection)
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_offline()
elif (handed := config.attributes.get("connection")) is not None:
    run_online(handed)
else:
    from core.db import make_engine

    engine = make_engine(_url(), poolclass=pool.NullPool)
    with engine.connect() as connection:
        run_online(connection)
    engine.dispose()
