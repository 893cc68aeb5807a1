"""The call state machine: invited → waiting → connected → ended, or expired, failed
or cancelled; every move goes through ``move`` and is one audit event. What a move
means beyond its state is decided in ``life``. Also the call's queries, who may join
its media when, its chat and the caller's location on it."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session, col, func, select

from appliance.models import (
    FINAL_STATES,
    Call,
    CallState,
    ChatMessage,
    Recording,
    Snapshot,
    User,
    utcnow,
)
from appliance.services import audit
from appliance.services.audit import Actor

TRANSITIONS: dict[CallState, frozenset[CallState]] = {
    CallState.INVITED: frozenset(
        {
            CallState.WAITING,
            CallState.ENDED,
            CallState.EXPIRED,
            CallState.CANCELLED,
            CallState.FAILED,
        }
    ),
    CallState.WAITING: frozenset(
        {
            CallState.CONNECTED,
            CallState.ENDED,
            CallState.EXPIRED,
            CallState.CANCELLED,
            CallState.FAILED,
        }
    ),
    CallState.CONNECTED: frozenset({CallState.ENDED, CallState.FAILED}),
}


# Who may join a call's media, in which states (the caller rejoins after a dropped page).
JOINS: dict[str, frozenset[CallState]] = {
    "caller": frozenset({CallState.INVITED, CallState.WAITING, CallState.CONNECTED}),
    "handler": frozenset({CallState.WAITING, CallState.CONNECTED}),
    "guest": frozenset({CallState.CONNECTED}),
    "observer": frozenset({CallState.WAITING, CallState.CONNECTED}),  # calls.supervision
    "viewer": frozenset({CallState.CONNECTED}),  # calls.viewers
}


class CallError(ValueError):
    """A move the state machine does not allow; the message is for the user."""


def check_join(role: str, call: Call) -> None:
    """Refuse a join the call's state does not allow, saying why."""
    if CallState(call.state) not in JOINS.get(role, frozenset()):
        why = {"handler": ": there is nobody to admit", "guest": ": a guest joins a connected call"}
        raise CallError(f"the call is {call.state}{why.get(role, '')}")


def move(session: Session, call: Call, to: CallState, actor: Actor, **detail: object) -> None:
    """The one way a call changes state: checked against ``TRANSITIONS``, audited."""
    current = CallState(call.state)
    if to not in TRANSITIONS.get(current, frozenset()):
        raise CallError(f"a {current.value} call cannot become {to.value}")
    call.state = to.value
    if current is CallState.INVITED:
        call.rejoin_until = None  # a rejoin's time to be joined ends as it moves on
    now = utcnow()
    if to is CallState.WAITING:
        call.waiting_at = now
    elif to is CallState.CONNECTED:
        call.connected_at = now
    elif to in FINAL_STATES:
        call.ended_at = now
        call.end_reason = str(detail.get("reason", ""))[:64]
    session.add(call)
    audit.record(
        session,
        actor,
        f"call.{to.value}",
        object_type="call",
        object_id=call.public_id,
        detail={"from": current.value, **detail},
    )


def caller_waiting(session: Session, call: Call, source: str) -> None:
    if CallState(call.state) is CallState.INVITED:
        move(session, call, CallState.WAITING, Actor("caller", source))


def record_location(
    session: Session, call: Call, latitude: float, longitude: float, accuracy_m: float
) -> None:
    if not call.consent_location:
        raise CallError("the caller did not agree to share their location")
    call.caller_latitude = latitude
    call.caller_longitude = longitude
    call.caller_location_accuracy_m = accuracy_m
    session.add(call)


def add_chat(
    session: Session, call: Call, sender: str, body: str, user: User | None = None
) -> ChatMessage:
    message = ChatMessage(
        call_id=call.id or 0,
        sender=sender,
        body=body[:2000],
        sender_user_id=user.id if user else None,
    )
    session.add(message)
    session.flush()
    return message


def by_public_id(session: Session, public_id: str) -> Call | None:
    return session.exec(select(Call).where(Call.public_id == public_id)).first()


def get(session: Session, public_id: str) -> Call:
    """The call, or ``CallError`` for one that does not exist."""
    call = by_public_id(session, public_id)
    if call is None:
        raise CallError("no such call")
    return call


def for_incident(session: Session, incident_id: int) -> list[Call]:
    return list(
        session.exec(
            select(Call)
            .where(Call.incident_id == incident_id)
            .order_by(col(Call.created_at).desc())
        ).all()
    )


def waiting_for(session: Session, incident_ids: list[int]) -> list[Call]:
    if not incident_ids:
        return []
    return list(
        session.exec(
            select(Call)
            .where(col(Call.incident_id).in_(incident_ids), Call.state == CallState.WAITING.value)
            .order_by(col(Call.waiting_at))
        ).all()
    )


def rejoins_lapsed(session: Session, now: datetime) -> bool:
    """Whether any caller's rejoin window has run out (``life.close_lapsed_rejoins``)."""
    query = select(Call.id).where(col(Call.rejoin_until).is_not(None))
    return session.exec(query.where(col(Call.rejoin_until) <= now).limit(1)).first() is not None


def all_waiting(session: Session) -> list[Call]:
    return list(session.exec(select(Call).where(Call.state == CallState.WAITING.value)).all())


def chat_of(
    session: Session, call: Call, limit: int | None = None, before: int | None = None
) -> list[ChatMessage]:
    """The call's chat in order; with ``limit``, only the latest that many (before the
    message ``before``, if given): a flooded chat never renders whole."""
    query = select(ChatMessage).where(ChatMessage.call_id == call.id)
    if before is not None:
        query = query.where(col(ChatMessage.id) < before)
    if limit is None:
        return list(session.exec(query.order_by(col(ChatMessage.id))).all())
    latest = session.exec(query.order_by(col(ChatMessage.id).desc()).limit(limit)).all()
    return list(reversed(latest))


def chat_count(session: Session, call: Call, before: int | None = None) -> int:
    query = select(func.count()).select_from(ChatMessage).where(ChatMessage.call_id == call.id)
    if before is not None:
        query = query.where(col(ChatMessage.id) < before)
    return int(session.exec(query).one())


def snapshots_of(session: Session, call: Call) -> list[Snapshot]:
    return list(
        session.exec(
            select(Snapshot).where(Snapshot.call_id == call.id).order_by(col(Snapshot.id))
        ).all()
    )


def recordings_of(session: Session, call: Call) -> list[Recording]:
    return list(
        session.exec(
            select(Recording).where(Recording.call_id == call.id).order_by(col(Recording.id))
        ).all()
    )
