"""snapshot captions and marked-up copies; the officer's drafts

Revision ID: 0016_snapshot_markup_drafts
Revises: 0015_call_rejoin
Create Date: 2026-12-03 03:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016_snapshot_markup_drafts"
down_revision: str | None = "0015_call_rejoin"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("snapshots", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("caption", sa.String(length=200), nullable=False, server_default="")
        )
        batch_op.add_column(sa.Column("original_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("markup", sa.JSON(), nullable=True))
        batch_op.create_foreign_key("fk_snapshots_original", "snapshots", ["original_id"], ["id"])
        batch_op.create_index(batch_op.f("ix_snapshots_original_id"), ["original_id"], unique=False)
    op.create_table(
        "officer_drafts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("incident_id", sa.Integer(), nullable=False),
        sa.Column("form", sa.String(length=16), nullable=False),
        sa.Column("fields", sa.JSON(), nullable=False),
        sa.Column("saved_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["incident_id"], ["incidents.id"]),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("user_id", "incident_id", "form"),
    )
    op.create_index("ix_officer_drafts_user_id", "officer_drafts", ["user_id"])
    op.create_index("ix_officer_drafts_incident_id", "officer_drafts", ["incident_id"])


def downgrade() -> None:
    op.drop_index("ix_officer_drafts_incident_id", table_name="officer_drafts")
    op.drop_index("ix_officer_drafts_user_id", table_name="officer_drafts")
    op.drop_table("officer_drafts")
    with op.batch_alter_table("snapshots", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_snapshots_original_id"))
        batch_op.drop_constraint("fk_snapshots_original", type_="foreignkey")
        batch_op.drop_column("markup")
        batch_op.drop_column("original_id")
        batch_op.drop_column("caption")
