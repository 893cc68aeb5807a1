"""A call passed from one officer to another (or back to the queue), with a note.

Offered by the officer holding the call, accepted by the colleague it names (or by
anyone who takes it from the queue); until then the officer who offered keeps the call.
"""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Field, SQLModel

from appliance.models.base import now_field, time_field


class CallHandover(SQLModel, table=True):
    __tablename__ = "call_handovers"

    id: int | None = Field(default=None, primary_key=True)
    call_id: int = Field(foreign_key="calls.id", index=True)
    from_user_id: int = Field(foreign_key="users.id")
    to_user_id: int | None = Field(default=None, foreign_key="users.id")  # None: the queue
    note: str = Field(max_length=500)
    offered_at: datetime = now_field()
    accepted_at: datetime | None = time_field()
    accepted_by_id: int | None = Field(default=None, foreign_key="users.id")
    # Withdrawn by a newer offer, a take over, or the call's end.
    closed_at: datetime | None = time_field()
