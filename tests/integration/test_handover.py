"""The services behind observe, take over and hand over, on both databases: who may do
what, what each records, and what stays as it was (the sockets: test_supervision.py)."""

from __future__ import annotations

import pytest
from sqlmodel import select

from appliance.config import Settings
from appliance.db import Database
from appliance.models import AuditEvent, Call, CallHandover, Incident, Role
from appliance.services.audit import Actor
from appliance.services.calls import handover, supervision
from appliance.services.calls.supervision import Seat, SupervisionError
from appliance.services.identity import accounts
from tests.support.staff import add_user, connected_call

SUPERVISOR = {Role.SUPERVISOR}
HANDLER = {Role.HANDLER}


def _call(db: Database, public_id: str) -> tuple[Call, Incident]:
    with db.session() as session:
        call = session.exec(select(Call).where(Call.public_id == public_id)).one()
        incident = session.get(Incident, call.incident_id)
        assert incident is not None
        session.expunge_all()
        return call, incident


def _actions(db: Database, public_id: str) -> list[str]:
    with db.session() as session:
        query = select(AuditEvent.action).where(AuditEvent.object_id == public_id)
        return list(session.exec(query).all())


def test_a_supervisor_observes_a_held_call_and_nothing_moves(
    db: Database, settings: Settings
) -> None:
    """The seat: the holder handles, a supervisor observes, another handler is refused.
    Observing records one audit row and leaves the call's state and handler alone."""
    public_id = connected_call(db, settings, "pc1", "CAD/H/1")
    with db.session() as session:
        sergeant = add_user(session, "sgt1", Role.SUPERVISOR)
        other = add_user(session, "pc9", Role.HANDLER)
        call = session.exec(select(Call).where(Call.public_id == public_id)).one()
        holder = accounts.require(session, "pc1")
        assert supervision.seat(call, holder, HANDLER, None) is Seat.HANDLE
        assert supervision.seat(call, sergeant, SUPERVISOR, None) is Seat.OBSERVE
        with pytest.raises(SupervisionError, match="another officer"):
            supervision.seat(call, other, HANDLER, None)
        with pytest.raises(SupervisionError, match="only a supervisor"):
            supervision.observe(session, Actor("pc9"), other, HANDLER, call)
        supervision.observe(session, Actor("sgt1"), sergeant, SUPERVISOR, call)
        holder_id = holder.id
    call, _ = _call(db, public_id)
    assert call.state == "connected" and call.handler_id == holder_id
    assert _actions(db, public_id).count("call.observed") == 1


def test_a_take_over_makes_the_call_the_supervisors_and_closes_an_open_hand_over(
    db: Database, settings: Settings
) -> None:
    public_id = connected_call(db, settings, "pc1", "CAD/H/2")
    with db.session() as session:
        sergeant = add_user(session, "sgt1", Role.SUPERVISOR)
        add_user(session, "pc2", Role.HANDLER)
        holder = accounts.require(session, "pc1")
        call = session.exec(select(Call).where(Call.public_id == public_id)).one()
        offered = handover.offer(
            session, settings, Actor("pc1"), holder, HANDLER, call, "pc2", "shift ends"
        )
        with pytest.raises(SupervisionError, match="say why"):
            supervision.take_over(session, Actor("sgt1"), sergeant, SUPERVISOR, call, " ")
        with pytest.raises(SupervisionError, match="only a supervisor"):
            supervision.take_over(session, Actor("pc1"), holder, HANDLER, call, "mine")
        previous = supervision.take_over(
            session, Actor("sgt1"), sergeant, SUPERVISOR, call, "risk rising"
        )
        assert previous is not None and previous.username == "pc1"
        sergeant_id, offered_id = sergeant.id, offered.id
    call, _ = _call(db, public_id)
    assert call.handler_id == sergeant_id and call.state == "connected"
    with db.session() as session:
        closed = session.get(CallHandover, offered_id)
        assert closed is not None and closed.closed_at is not None
        event = session.exec(select(AuditEvent).where(AuditEvent.action == "call.taken_over")).one()
        assert event.detail == {"from": "pc1", "reason": "risk rising"}


def test_a_hand_over_to_the_queue_is_taken_by_the_first_colleague(
    db: Database, settings: Settings
) -> None:
    """Offered to the queue: every other handler sees it (not the officer who offered);
    the first to accept gets the call and its incident; a second accept is refused."""
    public_id = connected_call(db, settings, "pc1", "CAD/H/3")
    with db.session() as session:
        first = add_user(session, "pc2", Role.HANDLER)
        second = add_user(session, "pc3", Role.HANDLER)
        holder = accounts.require(session, "pc1")
        call = session.exec(select(Call).where(Call.public_id == public_id)).one()
        with pytest.raises(SupervisionError, match="only the officer holding"):
            handover.offer(session, settings, Actor("pc2"), first, HANDLER, call, "", "mine")
        with pytest.raises(SupervisionError, match="no colleague"):
            handover.offer(session, settings, Actor("pc1"), holder, HANDLER, call, "nobody", "x")
        offered = handover.offer(
            session, settings, Actor("pc1"), holder, HANDLER, call, "", "needs a Polish speaker"
        )
        assert [o.handover.id for o in handover.offered_to(session, settings, first, HANDLER)] == [
            offered.id
        ]
        assert handover.offered_to(session, settings, holder, HANDLER) == []
        handover.accept(session, settings, Actor("pc2"), first, HANDLER, offered.id or 0)
        with pytest.raises(SupervisionError, match="already taken"):
            handover.accept(session, settings, Actor("pc3"), second, HANDLER, offered.id or 0)
        first_id = first.id
    call, incident = _call(db, public_id)
    assert call.handler_id == first_id and incident.owner_id == first_id
    assert call.state == "connected"
    actions = _actions(db, public_id)
    assert actions.count("call.handover_offered") == 1 and actions.count("call.handed_over") == 1
