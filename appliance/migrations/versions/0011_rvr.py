"""rvr: the Rapid Video Response record, DASH checklists, disclosures, time to first screen

Revision ID: 0011_rvr
Revises: 0010_evaluation
Create Date: 2026-11-26 00:39:57.431047
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011_rvr"
down_revision: str | None = "0010_evaluation"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "dash_assessments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("incident_id", sa.Integer(), nullable=False),
        sa.Column("questions_version", sa.String(length=64), nullable=False),
        sa.Column("answers", sa.JSON(), nullable=False),
        sa.Column("notes", sa.JSON(), nullable=False),
        sa.Column("yes_count", sa.Integer(), nullable=False),
        sa.Column("not_known_count", sa.Integer(), nullable=False),
        sa.Column("risk_level", sa.String(length=16), nullable=False),
        sa.Column("marac_referral", sa.Boolean(), nullable=False),
        sa.Column("by_id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["by_id"], ["users.id"], name="fk_dash_assessments_by_id"),
        sa.ForeignKeyConstraint(
            ["incident_id"], ["incidents.id"], name="fk_dash_assessments_incident_id"
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("dash_assessments", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_dash_assessments_incident_id"), ["incident_id"], unique=False
        )

    op.create_table(
        "dvds_disclosures",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("incident_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("subject", sa.String(length=200), nullable=False),
        sa.Column("notes", sa.String(length=4000), nullable=False),
        sa.Column("by_id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["by_id"], ["users.id"], name="fk_dvds_disclosures_by_id"),
        sa.ForeignKeyConstraint(
            ["incident_id"], ["incidents.id"], name="fk_dvds_disclosures_incident_id"
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("dvds_disclosures", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_dvds_disclosures_incident_id"), ["incident_id"], unique=False
        )

    op.create_table(
        "rvr_cases",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("incident_id", sa.Integer(), nullable=False),
        sa.Column("safety_answers", sa.JSON(), nullable=False),
        sa.Column("safety_passed", sa.Boolean(), nullable=True),
        sa.Column("safety_by_id", sa.Integer(), nullable=True),
        sa.Column("safety_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("transferred_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("transfer_call_id", sa.Integer(), nullable=True),
        sa.Column("caller_safe_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("caller_safe_by_id", sa.Integer(), nullable=True),
        sa.Column("code_word", sa.String(length=64), nullable=False),
        sa.Column("not_safe_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("not_safe_by_id", sa.Integer(), nullable=True),
        sa.Column("callback_needed", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["caller_safe_by_id"], ["users.id"], name="fk_rvr_cases_caller_safe_by_id"
        ),
        sa.ForeignKeyConstraint(["incident_id"], ["incidents.id"], name="fk_rvr_cases_incident_id"),
        sa.ForeignKeyConstraint(
            ["not_safe_by_id"], ["users.id"], name="fk_rvr_cases_not_safe_by_id"
        ),
        sa.ForeignKeyConstraint(["safety_by_id"], ["users.id"], name="fk_rvr_cases_safety_by_id"),
        sa.ForeignKeyConstraint(
            ["transfer_call_id"], ["calls.id"], name="fk_rvr_cases_transfer_call_id"
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("incident_id"),
    )
    with op.batch_alter_table("incidents", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("caller_first_screen_at", sa.DateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(sa.Column("caller_first_screen_seconds", sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("incidents", schema=None) as batch_op:
        batch_op.drop_column("caller_first_screen_seconds")
        batch_op.drop_column("caller_first_screen_at")

    op.drop_table("rvr_cases")
    with op.batch_alter_table("dvds_disclosures", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_dvds_disclosures_incident_id"))

    op.drop_table("dvds_disclosures")
    with op.batch_alter_table("dash_assessments", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_dash_assessments_incident_id"))

    op.drop_table("dash_assessments")
