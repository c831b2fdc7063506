"""Documents get versions: ``generation`` (the one search shows), ``replacing`` (a new
version is being made, or the old one's vectors are not yet removed) and
``pending_stored_name`` (the new version's upload until it is committed). Tasks count the
chunks whose vectors came from the embedding cache (``chunks_reused``).

Existing documents are generation 0, not being replaced; their vectors carry no generation,
which reads as 0.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "document", sa.Column("generation", sa.Integer(), nullable=False, server_default="0")
    )
    op.add_column(
        "document",
        sa.Column("replacing", sa.Boolean(), nullable=False, server_default=sa.false()),
    )
    op.add_column("document", sa.Column("pending_stored_name", sa.String(length=64), nullable=True))
    op.add_column(
        "fileprocessingtask",
        sa.Column("chunks_reused", sa.Integer(), nullable=False, server_default="0"),
    )


def downgrade() -> None:
    # Plain DROP COLUMN (SQLite 3.35+): a batch rebuild of ``document`` would drop the table
    # the tasks' foreign key points at.
    op.drop_column("fileprocessingtask", "chunks_reused")
    for column in ("pending_stored_name", "replacing", "generation"):
        op.drop_column("document", column)
