"""The box measuring itself: the randomised trial, its blocks and allocations, and the
caller survey (its one-use links and the answers).

An allocation's arm, once revealed, never changes: the ORM refuses the update
(``_arm_is_fixed``) as well as the service, so a slip in code cannot re-randomise.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, CheckConstraint, Column, UniqueConstraint, event, inspect
from sqlmodel import Field, SQLModel

from appliance.models.base import UTCDateTime, now_field, time_field

VIDEO_ARM = "video"
USUAL_ARM = "usual"
ARMS = (VIDEO_ARM, USUAL_ARM)


class Trial(SQLModel, table=True):
    """A randomised trial a supervisor switched on (and later off). One runs at a time."""

    __tablename__ = "trials"

    id: int | None = Field(default=None, primary_key=True)
    seed: int = Field(sa_column=Column(BigInteger(), nullable=False))
    block_sizes: list[int] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    stratify_by: str = Field(default="category", max_length=32)
    started_at: datetime = now_field()
    started_by_id: int = Field(foreign_key="users.id")
    stopped_at: datetime | None = time_field()
    stopped_by_id: int | None = Field(default=None, foreign_key="users.id")


class TrialBlock(SQLModel, table=True):
    """One block of a stratum's sequence, as drawn from the seed: kept so it can be audited."""

    __tablename__ = "trial_blocks"
    __table_args__ = (UniqueConstraint("trial_id", "stratum", "number"),)

    id: int | None = Field(default=None, primary_key=True)
    trial_id: int = Field(foreign_key="trials.id", index=True)
    stratum: str = Field(max_length=64)
    number: int
    arms: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    created_at: datetime = now_field()


class TrialAllocation(SQLModel, table=True):
    """An incident in the trial: the caller's consent, then (revealed once) its arm.

    A usual-response incident also records when the in-person response happened and
    its outcome, so both arms have a time to response.
    """

    __tablename__ = "trial_allocations"
    __table_args__ = (
        UniqueConstraint("block_id", "position"),
        CheckConstraint("arm IS NULL OR arm IN ('video', 'usual')", name="ck_trial_arm"),
    )

    id: int | None = Field(default=None, primary_key=True)
    trial_id: int = Field(foreign_key="trials.id", index=True)
    incident_id: int = Field(foreign_key="incidents.id", unique=True)
    stratum: str = Field(max_length=64)
    consented: bool
    consent_at: datetime = now_field()
    consent_by_id: int = Field(foreign_key="users.id")
    block_id: int | None = Field(default=None, foreign_key="trial_blocks.id")
    position: int | None = None
    arm: str | None = Field(default=None, max_length=16)
    revealed_at: datetime | None = time_field()
    revealed_by_id: int | None = Field(default=None, foreign_key="users.id")
    in_person_at: datetime | None = time_field()
    in_person_outcome: str | None = Field(default=None, max_length=32)
    in_person_by_id: int | None = Field(default=None, foreign_key="users.id")


class ArmAlreadyRevealed(RuntimeError):
    """Something tried to change a revealed allocation."""


@event.listens_for(TrialAllocation, "before_update")
def _arm_is_fixed(_mapper: Any, _connection: Any, target: TrialAllocation) -> None:
    state = inspect(target)
    for name in ("arm", "block_id", "position", "revealed_at"):
        history = state.attrs[name].history
        if history.deleted and history.deleted[0] is not None:
            raise ArmAlreadyRevealed(f"a revealed allocation's {name} cannot change")


class SurveyLink(SQLModel, table=True):
    """A one-use link to the survey, sent by SMS. Only the SHA-256 of its token is kept."""

    __tablename__ = "survey_links"

    id: int | None = Field(default=None, primary_key=True)
    incident_id: int = Field(foreign_key="incidents.id", index=True)
    call_id: int | None = Field(default=None, foreign_key="calls.id")
    token_hash: str = Field(max_length=64, unique=True, index=True)
    message_id: int | None = Field(default=None, foreign_key="outbound_messages.id")
    created_at: datetime = now_field()
    expires_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    used_at: datetime | None = time_field()


class SurveyResponse(SQLModel, table=True):
    """One caller's answers for one incident. Never linked to the handler's view by name."""

    __tablename__ = "survey_responses"
    __table_args__ = (
        CheckConstraint("handling BETWEEN 1 AND 5", name="ck_survey_handling"),
        CheckConstraint("outcome BETWEEN 1 AND 5", name="ck_survey_outcome"),
    )

    id: int | None = Field(default=None, primary_key=True)
    incident_id: int = Field(foreign_key="incidents.id", unique=True)
    call_id: int | None = Field(default=None, foreign_key="calls.id")
    cohort: str = Field(max_length=16)
    channel: str = Field(max_length=16)
    handling: int
    outcome: int
    use_again: bool | None = None
    comment: str = Field(default="", max_length=1000)
    answered_at: datetime = now_field()
