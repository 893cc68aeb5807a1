"""A supervisor on someone else's call: observe it, or take it over.

Opening a call another officer holds used to make the supervisor its handler and close
the handler's socket without a word: a silent takeover of a call with a possibly
vulnerable person on it. So the two are separate acts here:

- **Observe** (``seat`` says so when a supervisor opens a call someone else holds): a
  receive-only leg that sees and hears both sides. The handler is told who is watching,
  the caller too unless the force chose otherwise (``observers_shown_to_caller``).
  Observing moves nothing: not the call's state, not its handler, nobody's socket.
- **Take over**: an explicit act with a reason. The call becomes the supervisor's, the
  handler's console says who took it and why and goes read-only; the caller's leg is
  not touched.

Each is an audit event on the call (``call.observed``, ``call.observe_ended``,
``call.taken_over``); the hub only translates what these decide.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum

from sqlmodel import Session, col, select

from appliance.models import Call, CallHandover, CallState, Role, User, utcnow
from appliance.services import audit
from appliance.services.audit import Actor
from appliance.services.calls.states import CallError

# Who may watch a call they do not hold, and take it over.
SUPERVISING = frozenset({Role.SUPERVISOR, Role.ADMIN})
# The states in which there is a call to watch or take (a caller is on it, or waiting).
LIVE = frozenset({CallState.WAITING, CallState.CONNECTED})
MAX_REASON = 500


class Seat(StrEnum):
    HANDLE = "handle"  # this user's console handles the call (admits, talks, ends)
    OBSERVE = "observe"  # a supervisor's console watches a call someone else holds


class SupervisionError(CallError):
    """A refused observe or take over; the message is for the user. Nothing changed."""


def supervises(roles: Iterable[Role]) -> bool:
    return bool(SUPERVISING & set(roles))


def holder_of(call: Call, console_user_id: int | None) -> int | None:
    """Who holds the call: its handler once admitted (or taken over), else whoever has
    its console open now (``console_user_id``, the hub's word), else nobody."""
    return call.handler_id if call.handler_id is not None else console_user_id


def seat(call: Call, user: User, roles: Iterable[Role], console_user_id: int | None) -> Seat:
    """Whether this user's console on the call handles it or observes it. A supervisor
    on a call another officer holds observes; anyone else on it is refused, so a second
    officer's console never replaces the handler's."""
    holder = holder_of(call, console_user_id)
    if CallState(call.state) not in LIVE or holder is None or holder == user.id:
        return Seat.HANDLE
    if supervises(roles):
        return Seat.OBSERVE
    raise SupervisionError("another officer is handling this call")


def observe(session: Session, actor: Actor, user: User, roles: Iterable[Role], call: Call) -> None:
    """Record that a supervisor started watching the call (their socket is opening)."""
    if not supervises(roles):
        raise SupervisionError("only a supervisor may observe a call")
    if CallState(call.state) not in LIVE:
        raise SupervisionError(f"the call is {call.state}: there is nothing to observe")
    audit.record(
        session,
        actor,
        "call.observed",
        object_type="call",
        object_id=call.public_id,
        detail={"observer": user.username, "handler": _username(session, call.handler_id)},
    )


def stopped_observing(session: Session, actor: Actor, call: Call) -> None:
    audit.record(session, actor, "call.observe_ended", object_type="call", object_id=call.public_id)


def take_over(
    session: Session, actor: Actor, user: User, roles: Iterable[Role], call: Call, reason: str
) -> User | None:
    """Make the call this supervisor's, saying why; the officer who held it (if anyone
    did) is returned so the hub can tell their console."""
    reason = " ".join(reason.split())[:MAX_REASON]
    if not supervises(roles):
        raise SupervisionError("only a supervisor may take over a call")
    if not reason:
        raise SupervisionError("say why you are taking the call: the officer is shown it")
    if CallState(call.state) not in LIVE:
        raise SupervisionError(f"the call is {call.state}: there is nothing to take over")
    if call.handler_id == user.id:
        raise SupervisionError("this call is already yours")
    previous = session.get(User, call.handler_id) if call.handler_id is not None else None
    call.handler_id = user.id
    session.add(call)
    offered = session.exec(
        select(CallHandover)
        .where(CallHandover.call_id == call.id)
        .where(col(CallHandover.accepted_at).is_(None), col(CallHandover.closed_at).is_(None))
    ).all()
    for handover in offered:  # the officer's open hand over (calls.handover) is moot now
        handover.closed_at = utcnow()
        session.add(handover)
    audit.record(
        session,
        actor,
        "call.taken_over",
        object_type="call",
        object_id=call.public_id,
        detail={"from": previous.username if previous else None, "reason": reason},
    )
    return previous


def _username(session: Session, user_id: int | None) -> str | None:
    user = session.get(User, user_id) if user_id is not None else None
    return user.username if user else None
