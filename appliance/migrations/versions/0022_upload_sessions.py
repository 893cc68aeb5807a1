"""upload sessions: a caller's file sent in chunks that resume after a dropped connection

Revision ID: 0022_upload_sessions
Revises: 0021_caller_language
Create Date: 2026-12-03 08:10:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0022_upload_sessions"
down_revision: str | None = "0021_caller_language"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "upload_sessions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("public_id", sa.String(length=32), nullable=False),
        sa.Column("incident_id", sa.Integer(), nullable=False),
        sa.Column("invite_id", sa.Integer(), nullable=False),
        sa.Column("device_hash", sa.String(length=64), nullable=False),
        sa.Column("original_name", sa.String(length=200), nullable=False),
        sa.Column("declared_type", sa.String(length=100), nullable=False),
        sa.Column("total_bytes", sa.BigInteger(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("confirmed_bytes", sa.BigInteger(), nullable=False),
        sa.Column("wrapped_key", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["incident_id"], ["incidents.id"]),
        sa.ForeignKeyConstraint(["invite_id"], ["invites.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("public_id"),
    )
    op.create_index("ix_upload_sessions_incident_id", "upload_sessions", ["incident_id"])
    op.create_index("ix_upload_sessions_invite_id", "upload_sessions", ["invite_id"])


def downgrade() -> None:
    op.drop_index("ix_upload_sessions_invite_id", table_name="upload_sessions")
    op.drop_index("ix_upload_sessions_incident_id", table_name="upload_sessions")
    op.drop_table("upload_sessions")
