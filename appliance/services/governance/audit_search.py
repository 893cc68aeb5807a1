"""The audit trail as an auditor reads it: searched by actor, object, action and time,
and exported as CSV. Reading the trail is itself audited (``audit.searched``,
``audit.exported``), so who looked at what stays on the record."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session, col, select

from appliance.models import AuditEvent
from appliance.services import audit
from appliance.services.audit import Actor

COLUMNS = ("seq", "at", "actor", "action", "object_type", "object_id", "source", "detail", "hash")
PAGE = 200


@dataclass(frozen=True)
class Query:
    actor: str = ""
    action: str = ""
    object_type: str = ""
    object_id: str = ""
    since: datetime | None = None
    until: datetime | None = None

    def described(self) -> dict[str, str]:
        return {k: str(v) for k, v in self.__dict__.items() if v not in ("", None)}


def events(session: Session, query: Query, limit: int | None = PAGE) -> list[AuditEvent]:
    """Matching events, newest first (``limit`` None: all, oldest first, for export)."""
    wanted = select(AuditEvent)
    if query.actor:
        wanted = wanted.where(col(AuditEvent.actor).icontains(query.actor))
    if query.action:
        wanted = wanted.where(col(AuditEvent.action).startswith(query.action))
    if query.object_type:
        wanted = wanted.where(AuditEvent.object_type == query.object_type)
    if query.object_id:
        wanted = wanted.where(AuditEvent.object_id == query.object_id)
    if query.since is not None:
        wanted = wanted.where(col(AuditEvent.at) >= query.since)
    if query.until is not None:
        wanted = wanted.where(col(AuditEvent.at) < query.until)
    if limit is None:
        return list(session.exec(wanted.order_by(col(AuditEvent.seq))).all())
    return list(session.exec(wanted.order_by(col(AuditEvent.seq).desc()).limit(limit)).all())


def search(session: Session, actor: Actor, query: Query) -> list[AuditEvent]:
    found = events(session, query)
    audit.record(session, actor, "audit.searched", object_type="audit", detail=query.described())
    return found


def export_csv(session: Session, actor: Actor, query: Query) -> str:
    """Every matching event as CSV, oldest first; the export is audited."""
    found = events(session, query, limit=None)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(COLUMNS)
    for event in found:
        writer.writerow(
            [
                event.seq,
                event.at.isoformat(),
                event.actor,
                event.action,
                event.object_type,
                event.object_id,
                event.source,
                json.dumps(event.detail, sort_keys=True),
                event.hash,
            ]
        )
    audit.record(
        session,
        actor,
        "audit.exported",
        object_type="audit",
        detail=query.described() | {"events": str(len(found))},
    )
    return out.getvalue()


def viewed(session: Session, actor: Actor, object_type: str, object_id: str | int) -> None:
    """Someone looked at a record (an incident page, a person's record)."""
    audit.record(
        session, actor, f"{object_type}.viewed", object_type=object_type, object_id=object_id
    )
