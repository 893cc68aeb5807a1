"""message purpose: only invites count as invites

Revision ID: 0009_message_purpose
Revises: 0008_statement_cad_guests
Create Date: 2026-11-26 01:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009_message_purpose"
down_revision: str | None = "0008_statement_cad_guests"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("outbound_messages", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("purpose", sa.String(length=16), server_default="invite", nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table("outbound_messages", schema=None) as batch_op:
        batch_op.drop_column("purpose")
