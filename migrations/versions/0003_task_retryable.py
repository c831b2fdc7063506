"""Task rows store whether a failed task waits for a retry.

So a view read from the row alone (the workflow service or its workers unreachable) does not
call a retryable failure permanent.

Rows written before this revision get ``false``: for them, a retry asks the workflow itself.

Revision ID: 0003
Revises: 0001
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("fileprocessingtask") as batch:
        batch.add_column(
            sa.Column("retryable", sa.Boolean(), server_default=sa.false(), nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table("fileprocessingtask") as batch:
        batch.drop_column("retryable")
