"""notice texts: what each consent's notice version said (template, partial, settings)

Revision ID: 0013_notice_texts
Revises: 0012_evidence
Create Date: 2026-12-02 22:58:10.944959
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013_notice_texts"
down_revision: str | None = "0012_evidence"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "notice_texts",
        sa.Column("version", sa.String(length=32), nullable=False),
        sa.Column("page", sa.String(length=64), nullable=False),
        sa.Column("template", sa.Text(), nullable=False),
        sa.Column("partial", sa.Text(), nullable=False),
        sa.Column("facts", sa.JSON(), nullable=False),
        sa.Column("first_shown_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("version"),
    )


def downgrade() -> None:
    op.drop_table("notice_texts")
