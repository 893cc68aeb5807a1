"""security keys: WebAuthn keys as a second factor for the box's own accounts

Revision ID: 0025_security_keys
Revises: 0024_break_glass
Create Date: 2026-12-03 10:33:20.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0025_security_keys"
down_revision: str | None = "0024_break_glass"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "security_keys",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("credential_id", sa.String(length=1400), nullable=False),
        sa.Column("public_key", sa.String(length=2048), nullable=False),
        sa.Column("sign_count", sa.Integer(), nullable=False),
        sa.Column("transports", sa.String(length=128), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("credential_id"),
        sa.UniqueConstraint("user_id", "name"),
    )
    op.create_index("ix_security_keys_user_id", "security_keys", ["user_id"])
    with op.batch_alter_table("web_sessions") as batch:
        batch.add_column(sa.Column("key_challenge", sa.String(length=128), nullable=True))
        batch.add_column(sa.Column("key_challenge_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("web_sessions") as batch:
        batch.drop_column("key_challenge_at")
        batch.drop_column("key_challenge")
    op.drop_index("ix_security_keys_user_id", table_name="security_keys")
    op.drop_table("security_keys")
