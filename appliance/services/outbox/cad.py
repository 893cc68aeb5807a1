"""Events for the force's CAD, queued in the same transaction as what they report.

An event is written to ``cad_deliveries`` with the exact JSON body that will be signed
and sent, so an outcome can never be saved without its event (or the other way round),
and a process killed before sending sends after the next start. The sender
(appliance/notify/cad.py) posts due events and records each answer here.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlmodel import Session, col, func, select

from appliance.config import Settings
from appliance.db import wake_after_commit
from appliance.models import CadDelivery, DeliveryState, Incident, utcnow
from appliance.services import audit
from appliance.services.audit import Actor

BACKOFF_MAX_S = 3600.0
# The outbox whose sender wakes after a commit that queued an event (db.wake_after_commit).
OUTBOX = "cad"
SCHEMA_VERSION = 1


@dataclass(frozen=True)
class Answer:
    """What one attempt came to: delivered, worth another try, or refused for good."""

    delivered: bool
    retry: bool
    status: int | None = None
    error: str = ""
    retry_after_s: float | None = None


def backoff_s(attempts: int, base_s: float) -> float:
    """base, 2×base, 4×base … after each failed attempt, capped at an hour."""
    return min(base_s * 2.0 ** max(attempts - 1, 0), BACKOFF_MAX_S)


def queue_event(
    session: Session,
    settings: Settings,
    event: str,
    incident_id: int | None,
    data: dict[str, Any],
) -> CadDelivery | None:
    """Queue one event if a CAD is configured and wants it; the body is fixed here."""
    if settings.cad_webhook_url is None or event not in settings.cad_webhook_events:
        return None
    incident = session.get(Incident, incident_id) if incident_id is not None else None
    event_id = str(uuid.uuid4())
    now = utcnow()
    body = {
        "id": event_id,
        "event": event,
        "occurredAt": now.isoformat().replace("+00:00", "Z"),
        "schemaVersion": SCHEMA_VERSION,
        "incident": (
            {
                "cadReference": incident.cad_reference,
                "status": incident.status,
                "grade": incident.grade,
                "category": incident.category,
            }
            if incident is not None
            else None
        ),
        "data": data,
    }
    delivery = CadDelivery(
        event_id=event_id,
        event=event,
        incident_id=incident_id,
        body=json.dumps(body, separators=(",", ":"), sort_keys=True),
        next_attempt_at=now,
    )
    session.add(delivery)
    session.flush()
    wake_after_commit(session, OUTBOX)
    return delivery


def due(session: Session, now: datetime, limit: int) -> list[CadDelivery]:
    return list(
        session.exec(
            select(CadDelivery)
            .where(CadDelivery.state == DeliveryState.PENDING)
            .where(col(CadDelivery.next_attempt_at) <= now)
            .order_by(col(CadDelivery.id))
            .limit(limit)
        ).all()
    )


def record_answer(
    session: Session,
    delivery: CadDelivery,
    answer: Answer,
    now: datetime,
    max_attempts: int,
    backoff_base_s: float,
) -> None:
    delivery.attempts += 1
    delivery.last_attempt_at = now
    delivery.last_status = answer.status
    delivery.last_error = answer.error[:500]
    if answer.delivered:
        delivery.state = DeliveryState.DELIVERED.value
        delivery.delivered_at = now
        delivery.next_attempt_at = None
    elif answer.retry and delivery.attempts < max_attempts:
        wait = max(answer.retry_after_s or 0.0, backoff_s(delivery.attempts, backoff_base_s))
        delivery.next_attempt_at = now + timedelta(seconds=min(wait, BACKOFF_MAX_S))
    else:
        delivery.state = DeliveryState.FAILED.value
        delivery.next_attempt_at = None
        audit.record(
            session,
            Actor(audit.SYSTEM),
            "cad.delivery_failed",
            object_type="cad_delivery",
            object_id=delivery.event_id,
            detail={"event": delivery.event, "attempts": delivery.attempts, "error": answer.error},
        )
    session.add(delivery)


def send_again(session: Session, actor: Actor, delivery_id: int) -> CadDelivery | None:
    """An admin sends a failed event again (same id and body: the CAD can de-duplicate)."""
    delivery = session.get(CadDelivery, delivery_id)
    if delivery is None or delivery.state != DeliveryState.FAILED:
        return None
    delivery.state = DeliveryState.PENDING.value
    delivery.next_attempt_at = utcnow()
    delivery.attempts = 0
    session.add(delivery)
    wake_after_commit(session, OUTBOX)
    audit.record(
        session,
        actor,
        "cad.delivery_retried",
        object_type="cad_delivery",
        object_id=delivery.event_id,
        detail={"event": delivery.event},
    )
    return delivery


def recent(session: Session, limit: int = 200, state: str | None = None) -> list[CadDelivery]:
    query = select(CadDelivery).order_by(col(CadDelivery.id).desc()).limit(limit)
    if state:
        query = query.where(CadDelivery.state == state)
    return list(session.exec(query).all())


def for_incident(session: Session, incident_id: int) -> list[CadDelivery]:
    return list(
        session.exec(
            select(CadDelivery)
            .where(CadDelivery.incident_id == incident_id)
            .order_by(col(CadDelivery.id))
        ).all()
    )


def counts(session: Session) -> dict[str, int]:
    result = dict.fromkeys((s.value for s in DeliveryState), 0)
    query = select(CadDelivery.state, func.count()).group_by(col(CadDelivery.state))
    for delivery_state, count in session.exec(query).all():
        result[delivery_state] = count
    return result
