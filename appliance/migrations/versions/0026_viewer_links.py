"""viewer links: a responder's view-only link to one live call

Revision ID: 0026_viewer_links
Revises: 0025_security_keys
Create Date: 2026-12-03 10:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0026_viewer_links"
down_revision: str | None = "0025_security_keys"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "viewer_links",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("call_id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("created_by_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("device_hash", sa.String(length=64), nullable=True),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_by_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["call_id"], ["calls.id"]),
        sa.ForeignKeyConstraint(["created_by_id"], ["users.id"]),
        sa.ForeignKeyConstraint(["revoked_by_id"], ["users.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("viewer_links", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_viewer_links_call_id"), ["call_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_viewer_links_token_hash"), ["token_hash"], unique=True)


def downgrade() -> None:
    with op.batch_alter_table("viewer_links", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_viewer_links_token_hash"))
        batch_op.drop_index(batch_op.f("ix_viewer_links_call_id"))
    op.drop_table("viewer_links")
