"""statement signed by: a drawn signature or a typed name the caller confirmed

Revision ID: 0023_statement_signed_by
Revises: 0022_upload_sessions
Create Date: 2026-12-03 07:20:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0023_statement_signed_by"
down_revision: str | None = "0022_upload_sessions"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("statements") as batch:
        batch.add_column(
            sa.Column("signed_by", sa.String(length=8), nullable=False, server_default="")
        )
    # Every statement signed before this was signed by drawing: there was no other way.
    op.execute("UPDATE statements SET signed_by = 'drawn' WHERE state = 'signed'")


def downgrade() -> None:
    with op.batch_alter_table("statements") as batch:
        batch.drop_column("signed_by")
