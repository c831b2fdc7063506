"""Task ``status`` takes the seed's values, the lifecycle moves to ``state``; answer fallbacks.

``status`` held the lifecycle (``QUEUED``, ``RUNNING``, ``RETRYING``, ...) with the stage in
``current_step``. From here ``status`` is the seed's ``ProcessingStatus`` (``PENDING``,
``UPLOADING``, ``EXTRACTING``, ``CHUNKING``, ``VECTORIZING``, ``COMPLETED``, ``FAILED``, plus
``CANCELLED``) and ``state`` keeps the lifecycle, with ``WAITING_FOR_RETRY`` for a failure
whose workflow waits for a retry. Enum columns store member *names*, as in 0001.

Existing rows: ``state`` is the old ``status``; the new ``status`` follows from it and the
step by ``workflows.contracts.public_status``, the mapping every writer uses. An old row does
not say whether its failure was retryable, so it becomes ``FAILED``: a running workflow's own
word (read by every status request) still tells the waiting ones apart.

Chat answers get ``model_fallback`` (JSON): the model asked for, the one that answered, why.

PostgreSQL cannot use enum labels added in the same transaction, so ``processingstatus`` is
replaced by a new type instead of extended; on SQLite the table is rebuilt (batch mode) to
make ``state`` NOT NULL.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from workflows.contracts import public_status

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLE = "fileprocessingtask"
STEPS = ("UPLOAD", "EXTRACT", "CHUNK", "VECTORIZE", "DONE")
OLD_STATUSES = ("QUEUED", "RUNNING", "RETRYING", "COMPLETED", "FAILED", "CANCELLED")
NEW_STATUSES = (
    "PENDING",
    "UPLOADING",
    "EXTRACTING",
    "CHUNKING",
    "VECTORIZING",
    "COMPLETED",
    "FAILED",
    "CANCELLED",
)
STATES = (
    "QUEUED",
    "RUNNING",
    "RETRYING",
    "WAITING_FOR_RETRY",
    "FAILED",
    "COMPLETED",
    "CANCELLED",
)


def _status_case(state_column: str, cast: str) -> str:
    """SQL for the seed's status name of every (lifecycle name, step name) pair."""
    whens = [
        f"WHEN {state_column}{cast} = '{state}' AND current_step{cast} = '{step}' "
        f"THEN '{public_status(state.lower(), step.lower()).upper()}'"
        for state in STATES
        for step in STEPS
    ]
    return "CASE " + " ".join(whens) + " ELSE 'PENDING' END"


def _old_status_case(cast: str) -> str:
    """SQL for the old lifecycle ``status`` name of a row's ``state`` (for the downgrade)."""
    return f"CASE WHEN state{cast} = 'WAITING_FOR_RETRY' THEN 'FAILED' ELSE state{cast} END"


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        _upgrade_postgresql()
    else:
        _upgrade_sqlite()
    op.create_index(op.f("ix_fileprocessingtask_state"), TABLE, ["state"])
    op.add_column("chatmessage", sa.Column("model_fallback", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("chatmessage") as batch:
        batch.drop_column("model_fallback")
    op.drop_index(op.f("ix_fileprocessingtask_state"), table_name=TABLE)
    if op.get_bind().dialect.name == "postgresql":
        _downgrade_postgresql()
    else:
        _downgrade_sqlite()


def _upgrade_postgresql() -> None:
    labels = ", ".join(f"'{name}'" for name in NEW_STATUSES)
    states = ", ".join(f"'{name}'" for name in STATES)
    op.execute("ALTER TYPE processingstatus RENAME TO processingstatus_0001")
    op.execute(f"CREATE TYPE processingstatus AS ENUM ({labels})")
    op.execute(f"CREATE TYPE processingstate AS ENUM ({states})")
    op.execute(f"ALTER TABLE {TABLE} ADD COLUMN state processingstate")
    op.execute(f"UPDATE {TABLE} SET state = status::text::processingstate")
    op.execute(f"ALTER TABLE {TABLE} ALTER COLUMN state SET NOT NULL")
    op.execute(
        f"ALTER TABLE {TABLE} ALTER COLUMN status TYPE processingstatus "
        f"USING ({_status_case('state', '::text')})::processingstatus"
    )
    op.execute("DROP TYPE processingstatus_0001")


def _downgrade_postgresql() -> None:
    labels = ", ".join(f"'{name}'" for name in OLD_STATUSES)
    op.execute("ALTER TYPE processingstatus RENAME TO processingstatus_0002")
    op.execute(f"CREATE TYPE processingstatus AS ENUM ({labels})")
    op.execute(
        f"ALTER TABLE {TABLE} ALTER COLUMN status TYPE processingstatus "
        f"USING ({_old_status_case('::text')})::processingstatus"
    )
    op.execute(f"ALTER TABLE {TABLE} DROP COLUMN state")
    op.execute("DROP TYPE processingstatus_0002")
    op.execute("DROP TYPE processingstate")


def _upgrade_sqlite() -> None:
    # SQLite keeps enums as plain strings: convert the values, then rebuild for the new types.
    op.add_column(TABLE, sa.Column("state", sa.String(length=17), nullable=True))
    op.execute(f"UPDATE {TABLE} SET state = status")
    op.execute(f"UPDATE {TABLE} SET status = {_status_case('state', '')}")
    with op.batch_alter_table(TABLE) as batch:
        batch.alter_column(
            "status",
            existing_type=sa.Enum(*OLD_STATUSES, name="processingstatus"),
            type_=sa.Enum(*NEW_STATUSES, name="processingstatus"),
            existing_nullable=False,
        )
        batch.alter_column(
            "state",
            existing_type=sa.String(length=17),
            type_=sa.Enum(*STATES, name="processingstate"),
            nullable=False,
        )


def _downgrade_sqlite() -> None:
    op.execute(f"UPDATE {TABLE} SET status = {_old_status_case('')}")
    with op.batch_alter_table(TABLE) as batch:
        batch.drop_column("state")
        batch.alter_column(
            "status",
            existing_type=sa.Enum(*NEW_STATUSES, name="processingstatus"),
            type_=sa.Enum(*OLD_STATUSES, name="processingstatus"),
            existing_nullable=False,
        )
