"""statement, cad deliveries, guests

Revision ID: 0008_statement_cad_guests
Revises: 0007_officer
Create Date: 2026-11-26 00:38:50.936740
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008_statement_cad_guests"
down_revision: str | None = "0007_officer"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "cad_deliveries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.String(length=36), nullable=False),
        sa.Column("event", sa.String(length=48), nullable=False),
        sa.Column("incident_id", sa.Integer(), nullable=True),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_status", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.String(length=500), nullable=False),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["incident_id"],
            ["incidents.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("event_id"),
    )
    with op.batch_alter_table("cad_deliveries", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_cad_deliveries_event"), ["event"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_cad_deliveries_incident_id"), ["incident_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_cad_deliveries_state"), ["state"], unique=False)

    op.create_table(
        "guest_invites",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("call_id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("role", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("created_by_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("device_hash", sa.String(length=64), nullable=True),
        sa.Column("joined_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("removed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("removed_by_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["call_id"],
            ["calls.id"],
        ),
        sa.ForeignKeyConstraint(
            ["created_by_id"],
            ["users.id"],
        ),
        sa.ForeignKeyConstraint(
            ["removed_by_id"],
            ["users.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("guest_invites", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_guest_invites_call_id"), ["call_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_guest_invites_token_hash"), ["token_hash"], unique=True
        )

    op.create_table(
        "statements",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("incident_id", sa.Integer(), nullable=False),
        sa.Column("call_id", sa.Integer(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=24), nullable=False),
        sa.Column("witness_name", sa.String(length=120), nullable=False),
        sa.Column("witness_age", sa.String(length=32), nullable=False),
        sa.Column("witness_occupation", sa.String(length=120), nullable=False),
        sa.Column("account", sa.Text(), nullable=False),
        sa.Column("declaration", sa.Text(), nullable=False),
        sa.Column("officer_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("change_request", sa.String(length=2000), nullable=False),
        sa.Column("signed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("signed_name", sa.String(length=120), nullable=False),
        sa.Column("content_sha256", sa.String(length=64), nullable=False),
        sa.Column("signature_path", sa.String(length=512), nullable=False),
        sa.Column("pdf_path", sa.String(length=512), nullable=False),
        sa.Column("pdf_sha256", sa.String(length=64), nullable=False),
        sa.Column("pdf_size_bytes", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["call_id"],
            ["calls.id"],
        ),
        sa.ForeignKeyConstraint(
            ["incident_id"],
            ["incidents.id"],
        ),
        sa.ForeignKeyConstraint(
            ["officer_id"],
            ["users.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("incident_id", "version"),
    )
    with op.batch_alter_table("statements", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_statements_incident_id"), ["incident_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("statements", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_statements_incident_id"))

    op.drop_table("statements")
    with op.batch_alter_table("guest_invites", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_guest_invites_token_hash"))
        batch_op.drop_index(batch_op.f("ix_guest_invites_call_id"))

    op.drop_table("guest_invites")
    with op.batch_alter_table("cad_deliveries", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_cad_deliveries_state"))
        batch_op.drop_index(batch_op.f("ix_cad_deliveries_incident_id"))
        batch_op.drop_index(batch_op.f("ix_cad_deliveries_event"))

    op.drop_table("cad_deliveries")
