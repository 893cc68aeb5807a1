"""evidence: sealed files with wrapped data keys, hashes, marks and tombstones

Revision ID: 0012_evidence
Revises: 0011_rvr
Create Date: 2026-11-26 00:42:22.349099
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012_evidence"
down_revision: str | None = "0011_rvr"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "evidence_files",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("incident_id", sa.Integer(), nullable=False),
        sa.Column("path", sa.String(length=500), nullable=False),
        sa.Column("wrapped_key", sa.String(length=200), nullable=True),
        sa.Column("master_key_id", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("size_bytes", sa.BigInteger(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("evidential", sa.Boolean(), nullable=False),
        sa.Column("exhibit_ref", sa.String(length=40), nullable=False),
        sa.Column("review_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("legal_hold", sa.Boolean(), nullable=False),
        sa.Column("marked_by_id", sa.Integer(), nullable=True),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("deleted_reason", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["incident_id"], ["incidents.id"], name="fk_evidence_files_incident"
        ),
        sa.ForeignKeyConstraint(["marked_by_id"], ["users.id"], name="fk_evidence_files_marked_by"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("path"),
    )
    with op.batch_alter_table("evidence_files", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_evidence_files_incident_id"), ["incident_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_evidence_files_kind"), ["kind"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_evidence_files_master_key_id"), ["master_key_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_evidence_files_status"), ["status"], unique=False)
    with op.batch_alter_table("incidents", schema=None) as batch_op:
        batch_op.add_column(sa.Column("minimised_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("incidents", schema=None) as batch_op:
        batch_op.drop_column("minimised_at")
    with op.batch_alter_table("evidence_files", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_evidence_files_status"))
        batch_op.drop_index(batch_op.f("ix_evidence_files_master_key_id"))
        batch_op.drop_index(batch_op.f("ix_evidence_files_kind"))
        batch_op.drop_index(batch_op.f("ix_evidence_files_incident_id"))

    op.drop_table("evidence_files")
