"""intake: API keys, incident source and eligibility

Existing incidents get server defaults: made in the UI, eligibility unknown.

Revision ID: 0003_intake
Revises: 0002
Create Date: 2026-11-25 23:06:34.894391
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003_intake"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "api_keys",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("prefix", sa.String(length=16), nullable=False),
        sa.Column("key_hash", sa.String(length=64), nullable=False),
        sa.Column("created_by", sa.String(length=128), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("key_hash"),
    )
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_api_keys_name"), ["name"], unique=True)
        batch_op.create_index(batch_op.f("ix_api_keys_prefix"), ["prefix"], unique=False)

    with op.batch_alter_table("incidents", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("source", sa.String(length=64), nullable=False, server_default="ui")
        )
        batch_op.add_column(
            sa.Column("eligibility", sa.String(length=16), nullable=False, server_default="unknown")
        )
        batch_op.add_column(
            sa.Column("eligibility_answers", sa.JSON(), nullable=False, server_default="{}")
        )
        batch_op.add_column(
            sa.Column(
                "eligibility_reason", sa.String(length=500), nullable=False, server_default=""
            )
        )
        batch_op.add_column(sa.Column("eligibility_by_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("eligibility_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.alter_column("created_by_id", existing_type=sa.Integer(), nullable=True)
        batch_op.create_foreign_key(
            "fk_incidents_eligibility_by_id_users", "users", ["eligibility_by_id"], ["id"]
        )


def downgrade() -> None:
    with op.batch_alter_table("incidents", schema=None) as batch_op:
        batch_op.alter_column("created_by_id", existing_type=sa.Integer(), nullable=False)
        batch_op.drop_constraint("fk_incidents_eligibility_by_id_users", type_="foreignkey")
        batch_op.drop_column("eligibility_at")
        batch_op.drop_column("eligibility_by_id")
        batch_op.drop_column("eligibility_reason")
        batch_op.drop_column("eligibility_answers")
        batch_op.drop_column("eligibility")
        batch_op.drop_column("source")

    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_api_keys_prefix"))
        batch_op.drop_index(batch_op.f("ix_api_keys_name"))

    op.drop_table("api_keys")
