"""caller language: the language of an invite's pages, SMS and statement

Revision ID: 0021_caller_language
Revises: 0020_location_track
Create Date: 2026-12-03 07:20:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0021_caller_language"
down_revision: str | None = "0020_location_track"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Links and statements made before this read English, the only language there was.
    for table in ("invites", "statements"):
        with op.batch_alter_table(table) as batch_op:
            batch_op.add_column(
                sa.Column("language", sa.String(length=16), nullable=False, server_default="en")
            )


def downgrade() -> None:
    for table in ("invites", "statements"):
        with op.batch_alter_table(table) as batch_op:
            batch_op.drop_column("language")
