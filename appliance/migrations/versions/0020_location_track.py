"""location track: the caller's positions during a call, their consent to updates, and
the National Grid reference of each position

Revision ID: 0020_location_track
Revises: 0019_call_handover
Create Date: 2026-12-03 07:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0020_location_track"
down_revision: str | None = "0019_call_handover"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "location_fixes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("incident_id", sa.Integer(), nullable=False),
        sa.Column("call_id", sa.Integer(), nullable=False),
        sa.Column("latitude", sa.Float(), nullable=False),
        sa.Column("longitude", sa.Float(), nullable=False),
        sa.Column("accuracy_m", sa.Float(), nullable=False),
        sa.Column("easting", sa.Float(), nullable=True),
        sa.Column("northing", sa.Float(), nullable=True),
        sa.Column("fixed_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["call_id"], ["calls.id"]),
        sa.ForeignKeyConstraint(["incident_id"], ["incidents.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_location_fixes_call_id", "location_fixes", ["call_id"])
    op.create_index("ix_location_fixes_incident_id", "location_fixes", ["incident_id"])
    with op.batch_alter_table("shared_locations") as batch:
        batch.add_column(sa.Column("easting", sa.Float(), nullable=True))
        batch.add_column(sa.Column("northing", sa.Float(), nullable=True))
    with op.batch_alter_table("calls") as batch:
        batch.add_column(
            sa.Column(
                "consent_location_updates", sa.Boolean(), nullable=False, server_default=sa.false()
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("calls") as batch:
        batch.drop_column("consent_location_updates")
    with op.batch_alter_table("shared_locations") as batch:
        batch.drop_column("northing")
        batch.drop_column("easting")
    op.drop_index("ix_location_fixes_incident_id", table_name="location_fixes")
    op.drop_index("ix_location_fixes_call_id", table_name="location_fixes")
    op.drop_table("location_fixes")
