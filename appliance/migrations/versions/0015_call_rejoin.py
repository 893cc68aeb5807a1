"""call rejoin: a caller who ended the call by mistake comes back on the same link

Several calls may now share an invite (a rejoin is a new call on the same invite and
incident, ``rejoin_of_id``); ``rejoin_until`` holds the window and the call's held end.

Revision ID: 0015_call_rejoin
Revises: 0014_role_grants
Create Date: 2026-12-03 03:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015_call_rejoin"
down_revision: str | None = "0014_role_grants"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# SQLite's reflected unique constraint has no name: the convention gives it one to drop.
NAMES = {
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
}


def _unique_invite_name() -> str:
    return (
        "calls_invite_id_key"
        if op.get_bind().dialect.name == "postgresql"
        else "uq_calls_invite_id"
    )


def upgrade() -> None:
    with op.batch_alter_table("calls", naming_convention=NAMES) as batch_op:
        batch_op.drop_constraint(_unique_invite_name(), type_="unique")
        batch_op.add_column(sa.Column("rejoin_of_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("rejoin_until", sa.DateTime(timezone=True), nullable=True))
        batch_op.create_foreign_key(
            "fk_calls_rejoin_of_id_calls", "calls", ["rejoin_of_id"], ["id"]
        )
        batch_op.create_index("ix_calls_invite_id", ["invite_id"], unique=False)
        batch_op.create_index("ix_calls_rejoin_of_id", ["rejoin_of_id"], unique=True)


def downgrade() -> None:
    # Refused by the database (the unique constraint) while any rejoin is kept: a rejoin
    # is evidence (its recording, its audit) and is not deleted to go back a version.
    with op.batch_alter_table("calls", naming_convention=NAMES) as batch_op:
        batch_op.drop_index("ix_calls_rejoin_of_id")
        batch_op.drop_index("ix_calls_invite_id")
        batch_op.drop_constraint("fk_calls_rejoin_of_id_calls", type_="foreignkey")
        batch_op.drop_column("rejoin_until")
        batch_op.drop_column("rejoin_of_id")
        batch_op.create_unique_constraint(_unique_invite_name(), ["invite_id"])
