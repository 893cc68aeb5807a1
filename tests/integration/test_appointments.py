"""Booked video appointments: the service on both databases, across the clock changes.

The "now" the service and the dispatcher see is passed in (the dispatcher's own
``clock``), so a booking in March or October 2027 is tested as if made the week before.
"""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlmodel import Session, func, select

from appliance.config import Settings
from appliance.db import Database
from appliance.models import (
    Appointment,
    AuditEvent,
    Call,
    Incident,
    Invite,
    MessageStatus,
    OutboundMessage,
    Role,
    User,
)
from appliance.notify import OutboxNotifier
from appliance.notify.base import DeliveryResult
from appliance.notify.dispatcher import Dispatcher
from appliance.services.audit import Actor
from appliance.services.calls import invites, life, states
from appliance.services.calls.invites import LinkProblem
from appliance.services.identity import accounts
from appliance.services.intake import appointments, incidents
from appliance.services.intake.appointments import AppointmentError
from appliance.services.outbox import messages
from appliance.services.outbox.messages import RetryPolicy
from tests.support.sms_gateways import sms_counts

ACTOR = Actor("pc1")
PHONE = "+447700900123"
SPRING = date(2027, 3, 28)  # last Sunday of March: 01:00 GMT becomes 02:00 BST
AUTUMN = date(2027, 10, 31)  # last Sunday of October: 02:00 BST becomes 01:00 GMT
BEFORE = datetime(2027, 3, 20, 12, 0, tzinfo=UTC)  # "now" for the spring bookings
BEFORE_AUTUMN = datetime(2027, 10, 24, 12, 0, tzinfo=UTC)


# Default settings for messages queued outside an app (the RVR gate reads its lists).
SMS_SETTINGS = Settings()


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


@pytest.fixture
def user(db: Database) -> User:
    with db.session() as session:
        user, _ = accounts.create_user(
            session, Actor("t"), "pc1", "Pat", {Role.HANDLER}, password="a long enough phrase"
        )
        return user


def _incident(db: Database, user: User, n: int = 1, eligible: bool = True) -> Incident:
    with db.session() as session:
        incident = incidents.create(
            session,
            ACTOR,
            user,
            cad_reference=f"CAD/AP/{n}",
            grade=3,
            category="Theft",
            caller_name="Jane Marple",
            caller_phone="07700 900123",
        )
        questions = ["ok?"]
        incidents.set_eligibility(session, ACTOR, user, incident, questions, [eligible])
        return incident


def _book(
    db: Database,
    settings: Settings,
    incident: Incident,
    user: User,
    starts_at: datetime,
    now: datetime = BEFORE,
    safe: bool = True,
) -> Appointment:
    with db.session() as session:
        return appointments.book(session, ACTOR, settings, incident, user, starts_at, safe, now=now)


def _counts(session: Session) -> dict[str, int]:
    return {
        model.__name__: session.exec(select(func.count()).select_from(model)).one()
        for model in (Appointment, Invite, Call, OutboundMessage)
    }


def _messages(db: Database) -> list[OutboundMessage]:
    with db.session() as session:
        return list(session.exec(select(OutboundMessage).order_by(OutboundMessage.id)).all())


# --- slots across the clock changes ---------------------------------------------


def test_free_slots_keep_london_wall_clock_across_both_changes(
    db: Database, settings: Settings
) -> None:
    with db.session() as session:
        saturday = appointments.free_slots(session, settings, SPRING - timedelta(1), BEFORE)
        spring = appointments.free_slots(session, settings, SPRING, BEFORE)
        autumn = appointments.free_slots(session, settings, AUTUMN, BEFORE_AUTUMN)
        monday = appointments.free_slots(session, settings, AUTUMN + timedelta(1), BEFORE_AUTUMN)
    # 08:30-21:30, 30 minutes: 26 slots every day, starting 08:30 London.
    for day in (saturday, spring, autumn, monday):
        assert len(day) == 26
        assert day[0].label.endswith("at 08:30") and day[-1].label.endswith("at 21:00")
        assert all(s.free == 2 for s in day)
    assert saturday[0].starts_at == utc(2027, 3, 27, 8, 30)  # GMT
    assert spring[0].starts_at == utc(2027, 3, 28, 7, 30)  # BST
    assert autumn[0].starts_at == utc(2027, 10, 31, 8, 30)  # GMT again
    assert monday[0].starts_at == utc(2027, 11, 1, 8, 30)
    assert spring[0].label == "Sunday 28 March 2027 at 08:30"


def test_a_night_across_the_change_has_an_hour_fewer_or_more_of_slots(
    db: Database, settings: Settings
) -> None:
    night = settings.model_copy(update={"appointment_hours": {"sun": "00:00-04:00"}})
    with db.session() as session:
        spring = appointments.free_slots(session, night, SPRING, BEFORE)
        autumn = appointments.free_slots(session, night, AUTUMN, BEFORE_AUTUMN)
        closed = appointments.free_slots(session, night, SPRING + timedelta(1), BEFORE)
    assert closed == []
    # 00:00 GMT to 04:00 BST is three real hours; 00:00 BST to 04:00 GMT is five.
    assert [s.label[-5:] for s in spring] == [
        "00:00",
        "00:30",
        "02:00",
        "02:30",
        "03:00",
        "03:30",
    ]
    assert spring[2].starts_at == utc(2027, 3, 28, 1, 0)
    assert len(autumn) == 10
    assert autumn[2].label.endswith("01:00 BST") and autumn[2].starts_at == utc(2027, 10, 31, 0)
    assert autumn[4].label.endswith("01:00 GMT") and autumn[4].starts_at == utc(2027, 10, 31, 1)
    assert all(
        b.starts_at - a.starts_at == timedelta(minutes=30) for a, b in itertools.pairwise(autumn)
    )


# --- booking --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("day", "now", "wall", "instant"),
    [
        (SPRING, BEFORE, "Sunday 28 March 2027 at 10:00", utc(2027, 3, 28, 9, 0)),
        (AUTUMN, BEFORE_AUTUMN, "Sunday 31 October 2027 at 10:00", utc(2027, 10, 31, 10, 0)),
    ],
    ids=["spring-forward", "fall-back"],
)
def test_a_booking_on_a_change_day_lands_at_the_right_instant_and_says_so(
    db: Database,
    settings: Settings,
    user: User,
    day: date,
    now: datetime,
    wall: str,
    instant: datetime,
) -> None:
    incident = _incident(db, user)
    with db.session() as session:
        free = appointments.free_slots(session, settings, day, now)
    slot = next(s for s in free if s.label.endswith("10:00"))
    assert slot.starts_at == instant
    appointment = _book(db, settings, incident, user, slot.starts_at, now)
    assert appointment.starts_at == instant
    assert appointment.ends_at == instant + timedelta(minutes=30)
    assert appointment.state == "booked"

    booking, reminder = _messages(db)
    assert booking.to_phone == PHONE and booking.status == "pending"
    assert f"your video call is booked for {wall}." in booking.body
    assert "/v/" in booking.body
    assert booking.next_attempt_at is not None and booking.next_attempt_at <= datetime.now(UTC)
    assert reminder.body.startswith(
        f"{settings.force_name}: reminder, your video call is at {wall}"
    )
    assert reminder.next_attempt_at == instant - timedelta(minutes=60)
    with db.session() as session:
        invite = session.get(Invite, appointment.invite_id)
        assert invite is not None
        assert invite.opens_at == instant - timedelta(minutes=15)
        assert invite.expires_at == appointment.ends_at or abs(
            invite.expires_at - appointment.ends_at
        ) < timedelta(seconds=5)
        actions = [e.action for e in session.exec(select(AuditEvent)).all()]
    assert "appointment.booked" in actions and "invite.created" in actions
    # Neutral wording: it may be read by someone other than the caller.
    for text in (booking.body, reminder.body):
        assert not any(w in text.lower() for w in ("police", "crime", "victim", "incident"))


def test_a_full_slot_takes_no_more_and_frees_a_place_on_cancel(
    db: Database, settings: Settings, user: User
) -> None:
    at = utc(2027, 3, 28, 9, 0)
    first, second, third = (_incident(db, user, n) for n in (1, 2, 3))
    _book(db, settings, first, user, at)
    _book(db, settings, second, user, at)
    with db.session() as session:
        before = _counts(session)
        slot = next(s for s in appointments.slots(session, settings, SPRING) if s.starts_at == at)
        assert slot.booked == 2 and slot.free == 0
        assert at not in [
            s.starts_at for s in appointments.free_slots(session, settings, SPRING, BEFORE)
        ]
    full = r"is full \(2 of 2 booked\)"
    with db.session() as session, pytest.raises(AppointmentError, match=full):
        appointments.book(session, ACTOR, settings, third, user, at, True, now=BEFORE)
    with db.session() as session:
        assert _counts(session) == before
        first_appointment = appointments.active_for(session, first.id or 0)
        assert first_appointment is not None
        appointments.cancel(session, ACTOR, settings, first_appointment, True)
    _book(db, settings, third, user, at)


@pytest.mark.parametrize(
    ("starts_at", "complaint"),
    [
        (
            utc(2027, 3, 28, 6, 30),
            r"Sunday 28 March 2027 at 07:30 is outside opening hours \(Sunday: 08:30-21:30\)",
        ),
        (utc(2027, 3, 28, 20, 30), "at 21:30 is outside opening hours"),
        (
            utc(2027, 3, 28, 9, 10),
            "at 10:10 is not the start of a slot: slots are 30 minutes from 08:30",
        ),
        (utc(2027, 3, 19, 9, 0), "has passed"),
    ],
    ids=["before-opening", "at-closing", "off-boundary", "past"],
)
def test_a_bad_time_is_refused_and_nothing_is_written(
    db: Database, settings: Settings, user: User, starts_at: datetime, complaint: str
) -> None:
    incident = _incident(db, user)
    with db.session() as session:
        before = _counts(session)
    with db.session() as session, pytest.raises(AppointmentError, match=complaint):
        appointments.book(session, ACTOR, settings, incident, user, starts_at, True, now=BEFORE)
    with db.session() as session:
        assert (
            _counts(session)
            == before
            == {
                "Appointment": 0,
                "Invite": 0,
                "Call": 0,
                "OutboundMessage": 0,
            }
        )


def test_other_refusals_write_nothing(db: Database, settings: Settings, user: User) -> None:
    at = utc(2027, 3, 28, 9, 0)
    closed = settings.model_copy(update={"appointment_hours": {"mon": "09:00-17:00"}})
    cases = [
        (_incident(db, user, 1), settings, False, "safe to contact"),
        (_incident(db, user, 2, eligible=False), settings, True, "eligibility checklist"),
        (_incident(db, user, 3), closed, True, r"outside opening hours \(Sunday: closed\)"),
    ]
    for incident, these, safe, complaint in cases:
        with db.session() as session, pytest.raises(AppointmentError, match=complaint):
            appointments.book(session, ACTOR, these, incident, user, at, safe, now=BEFORE)
    with db.session() as session:
        assert set(_counts(session).values()) == {0}
    incident = _incident(db, user, 4)
    _book(db, settings, incident, user, at)
    with db.session() as session, pytest.raises(AppointmentError, match="already has"):
        appointments.book(
            session, ACTOR, settings, incident, user, at + timedelta(hours=1), True, now=BEFORE
        )


# --- move and cancel ------------------------------------------------------------


def test_move_withdraws_the_old_link_and_reminder_and_sends_the_new_time(
    db: Database, settings: Settings, user: User
) -> None:
    incident = _incident(db, user)
    first = _book(db, settings, incident, user, utc(2027, 3, 27, 15, 0))  # Sat 15:00 GMT
    old_call = first.call_public_id
    with db.session() as session:
        appointment = session.get(Appointment, first.id)
        assert appointment is not None
        appointments.move(
            session, ACTOR, settings, appointment, user, utc(2027, 3, 28, 15, 0), True, now=BEFORE
        )
    with db.session() as session:
        moved = session.get(Appointment, first.id)
        assert moved is not None and moved.state == "moved"
        assert moved.starts_at == utc(2027, 3, 28, 15, 0) and moved.call_public_id != old_call
        old = states.by_public_id(session, old_call)
        assert old is not None and old.state == "cancelled"
        assert session.exec(select(func.count()).select_from(Appointment)).one() == 1
        # The old slot has its place back, the new one has one taken.
        by_start = {
            s.starts_at: s.booked
            for day in (SPRING - timedelta(1), SPRING)
            for s in appointments.slots(session, settings, day)
        }
    assert by_start[utc(2027, 3, 27, 15, 0)] == 0 and by_start[utc(2027, 3, 28, 15, 0)] == 1
    booked, old_reminder, new_booking, new_reminder = _messages(db)
    assert old_reminder.status == MessageStatus.CANCELLED.value
    assert old_reminder.next_attempt_at is None
    assert "Saturday 27 March 2027 at 15:00" in booked.body
    assert "booked for Sunday 28 March 2027 at 16:00." in new_booking.body  # 15:00Z is BST
    assert new_reminder.next_attempt_at == utc(2027, 3, 28, 14, 0)
    assert new_booking.call_public_id == new_reminder.call_public_id == moved.call_public_id


def test_a_move_over_capacity_changes_nothing(db: Database, settings: Settings, user: User) -> None:
    full = utc(2027, 3, 28, 9, 0)
    for n in (1, 2):
        _book(db, settings, _incident(db, user, n), user, full)
    mine = _book(db, settings, _incident(db, user, 3), user, utc(2027, 3, 28, 10, 0))
    with db.session() as session:
        before = _counts(session)
        appointment = session.get(Appointment, mine.id)
        assert appointment is not None
    with db.session() as session, pytest.raises(AppointmentError, match="is full"):
        appointment = session.get(Appointment, mine.id)
        appointments.move(session, ACTOR, settings, appointment, user, full, True, now=BEFORE)
    with db.session() as session:
        assert _counts(session) == before
        again = session.get(Appointment, mine.id)
        assert again is not None and again.state == "booked" and again.starts_at == mine.starts_at
        reminder = session.get(OutboundMessage, again.reminder_message_id)
        assert reminder is not None and reminder.status == "pending"


def test_cancel_revokes_the_link_withdraws_the_reminder_and_tells_the_caller(
    db: Database, settings: Settings, user: User
) -> None:
    incident = _incident(db, user)
    booked = _book(db, settings, incident, user, utc(2027, 10, 31, 9, 0), BEFORE_AUTUMN)
    with db.session() as session:
        appointment = session.get(Appointment, booked.id)
        assert appointment is not None
        appointments.cancel(session, ACTOR, settings, appointment, True)
        invite = session.get(Invite, booked.invite_id)
        assert invite is not None and invite.revoked_at is not None
    with db.session() as session, pytest.raises(AppointmentError, match="is cancelled"):
        appointment = session.get(Appointment, booked.id)
        appointments.cancel(session, ACTOR, settings, appointment, True)
    booking, reminder, cancellation = _messages(db)
    assert "Sunday 31 October 2027 at 09:00" in booking.body  # GMT again: 09:00Z
    assert reminder.status == "cancelled"
    assert cancellation.status == "pending"
    assert "on Sunday 31 October 2027 at 09:00 is cancelled" in cancellation.body


# --- the reminder goes when due, and the link opens when due ---------------------


async def test_the_reminder_goes_through_the_dispatcher_only_when_due(
    db: Database, settings: Settings, user: User
) -> None:
    at = utc(2027, 10, 31, 10, 0)  # Sunday 10:00 GMT, the day the clocks went back
    _book(db, settings, _incident(db, user), user, at, BEFORE_AUTUMN)
    clock = [BEFORE_AUTUMN]
    dispatcher = Dispatcher(
        db, OutboxNotifier(), RetryPolicy(), timeout_s=5, clock=lambda: clock[0]
    )
    assert await dispatcher.run_once() == 1  # the booking SMS only
    booking, reminder = _messages(db)
    assert booking.status == "stored" and reminder.status == "pending"
    clock[0] = at - timedelta(minutes=61)
    assert await dispatcher.run_once() == 0
    clock[0] = at - timedelta(minutes=60)
    assert await dispatcher.run_once() == 1
    _, reminder = _messages(db)
    assert reminder.status == "stored"
    assert "reminder, your video call is at Sunday 31 October 2027 at 10:00" in reminder.body
    await dispatcher.stop()


def test_the_link_refuses_before_it_opens(db: Database, settings: Settings, user: User) -> None:
    incident = _incident(db, user)
    now = datetime.now(UTC)
    with db.session() as session:
        upcoming = appointments.next_free_slots(session, settings, 40, now)
    slot = next(s for s in upcoming if s.starts_at - now > timedelta(minutes=20))
    booked = _book(db, settings, incident, user, slot.starts_at, now)
    token = _token(db, booked)
    with db.session() as session:
        assert invites.open_link(session, token, None, "test") is LinkProblem.TOO_EARLY
        assert invites.find_link(session, token).opens_at == slot.starts_at - timedelta(minutes=15)
        invite = session.get(Invite, booked.invite_id)
        assert invite is not None and invite.opened_at is None
        # Once it opens (moved here to now), the same link leads to the call.
        invite.opens_at = datetime.now(UTC) - timedelta(seconds=1)
        session.add(invite)
    with db.session() as session:
        call = invites.open_link(session, token, None, "test")
        assert not isinstance(call, LinkProblem) and call.public_id == booked.call_public_id


def _token(db: Database, appointment: Appointment) -> str:
    with db.session() as session:
        message = session.exec(
            select(OutboundMessage).where(
                OutboundMessage.call_public_id == appointment.call_public_id
            )
        ).first()
    assert message is not None
    return message.body.rsplit("/v/", 1)[1]


def test_queue_sms_not_before_is_honoured_by_due(db: Database) -> None:
    from appliance.services.outbox import messages

    later = utc(2030, 1, 1, 9, 0)
    with db.session() as session:
        message = messages.queue_sms(
            session,
            ACTOR,
            settings=SMS_SETTINGS,
            to_phone=PHONE,
            body="hello",
            reference="r-1",
            not_before=later,
        )
        assert message.next_attempt_at == later
        assert messages.due(session, later - timedelta(seconds=1)) == []
        assert [m.id for m in messages.due(session, later)] == [message.id]


def test_an_appointment_kept_is_done_and_can_no_longer_be_moved(
    db: Database, settings: Settings, user: User
) -> None:
    """The caller joins the booked call and the handler admits them: the booking is done."""
    incident = _incident(db, user)
    booked = _book(db, settings, incident, user, utc(2027, 3, 22, 10, 0))
    with db.session() as session:
        call = states.by_public_id(session, booked.call_public_id)
        handler = session.get(User, user.id)
        assert call is not None and handler is not None
        states.caller_waiting(session, call, "t")
        life.admit(session, settings, call, handler, "t")
    with db.session() as session:
        kept = session.get(Appointment, booked.id)
        assert kept is not None and kept.state == "done"
        assert appointments.active_for(session, incident.id or 0) is None
        assert (
            session.exec(select(AuditEvent).where(AuditEvent.action == "appointment.kept"))
            .one()
            .object_id
            == booked.call_public_id
        )
        reminder = session.get(OutboundMessage, kept.reminder_message_id)
        assert reminder is not None and reminder.status == "cancelled"
        with pytest.raises(AppointmentError, match="this appointment is done"):
            appointments.cancel(session, ACTOR, settings, kept, True)


def test_only_the_invite_counts_as_an_invite_sent_not_its_reminder_or_cancellation(
    db: Database, settings: Settings, user: User
) -> None:
    """evr_invites_sent_total feeds the SMS alert: reminders and cancellations stay out."""
    incident = _incident(db, user)
    booked = _book(db, settings, incident, user, utc(2027, 3, 22, 10, 0))
    with db.session() as session:
        appointments.cancel(
            session,
            ACTOR,
            settings,
            session.get(Appointment, booked.id),
            True,  # type: ignore[arg-type]
        )
    before = sms_counts()
    with db.session() as session:
        for message in session.exec(select(OutboundMessage)).all():
            if message.status == "pending":
                messages.record_result(
                    session, message, DeliveryResult.sent("id-1"), BEFORE, RetryPolicy(3)
                )
    purposes = sorted(m.purpose for m in _messages(db))
    assert purposes == ["cancellation", "invite", "reminder"]
    assert sms_counts() == (before[0] + 1, before[1])
