"""Survey comments: free text a caller wrote, readable only by an evaluation lead, and
each reading audited. Shown without the caller's name, number or the handler's name:
the incident's category and cohort are enough to learn from."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session, col, select

from appliance.models import Incident, SurveyResponse
from appliance.services import audit
from appliance.services.audit import Actor


@dataclass(frozen=True)
class Comment:
    answered_at: datetime
    category: str
    cohort: str
    handling: int
    outcome: int
    text: str


def comments(session: Session, actor: Actor, limit: int = 500) -> list[Comment]:
    rows = session.exec(
        select(SurveyResponse, Incident)
        .join(Incident, col(Incident.id) == col(SurveyResponse.incident_id))
        .where(SurveyResponse.comment != "")
        .order_by(col(SurveyResponse.answered_at).desc())
        .limit(limit)
    ).all()
    found = [
        Comment(r.answered_at, i.category, r.cohort, r.handling, r.outcome, r.comment)
        for r, i in rows
    ]
    audit.record(
        session,
        actor,
        "survey.comments_read",
        object_type="survey",
        detail={"comments": len(found)},
    )
    return found
