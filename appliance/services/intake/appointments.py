"""Booked video appointments: free slots, book, move, cancel.

Opening hours are Europe/London wall-clock times (``appointment_hours``); slots are
``appointment_slot_minutes`` long, counted in real minutes from the day's opening
instant to its closing instant, so a day when the clocks change has an hour fewer or
more of slots and never a slot that does not exist. Everything stored is UTC.

Booking makes the slot's video invite (its link works from
``appointment_link_opens_minutes`` before the slot until it ends), queues an SMS that
says when in London time, and a reminder ``appointment_reminder_minutes`` before. Every
check runs before anything is written: a refusal leaves no row behind.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from babel.dates import format_datetime
from sqlalchemy import func, text
from sqlmodel import Session, col, select

from appliance import i18n
from appliance.config import Settings
from appliance.config.defaults import WEEKDAYS
from appliance.i18n import N_
from appliance.models import (
    ACTIVE_APPOINTMENT_STATES,
    Appointment,
    AppointmentState,
    Call,
    Incident,
    OutboundMessage,
    User,
    utcnow,
)
from appliance.services import audit
from appliance.services.audit import Actor
from appliance.services.calls import invites, life, states
from appliance.services.outbox import messages

LONDON = ZoneInfo("Europe/London")
# Names the advisory lock that queues bookings on PostgreSQL, so two handlers cannot
# both take the last place in a slot. SQLite's BEGIN IMMEDIATE already does that.
_PG_BOOKING_LOCK = 0x45565250  # "EVRP"
LOOKAHEAD_DAYS = 14


class AppointmentError(ValueError):
    """A booking refused; the message is for the handler."""


@dataclass(frozen=True)
class Slot:
    starts_at: datetime  # UTC
    ends_at: datetime  # UTC
    booked: int
    capacity: int

    @property
    def free(self) -> int:
        return max(self.capacity - self.booked, 0)

    @property
    def label(self) -> str:
        return london_label(self.starts_at)


def london_label(at: datetime, language: str = i18n.SOURCE) -> str:
    """e.g. ``Sunday 28 March 2027 at 10:00``; ``01:30 BST`` when that hour comes twice;
    in the caller's language (``dydd Sul 28 Mawrth 2027 am 10:00``) for their SMS and pages."""
    local = at.astimezone(LONDON)
    label = f"{local:%A} {local.day} {local:%B %Y} at {local:%H:%M}"
    if i18n.language(language).code not in (i18n.SOURCE, i18n.PSEUDO):
        day = format_datetime(local, "EEEE d MMMM y", locale=language)
        label = i18n.gettext(language, N_("%(date)s at %(time)s")) % {
            "date": day,
            "time": f"{local:%H:%M}",
        }
    naive = local.replace(tzinfo=None)
    twice = (
        naive.replace(tzinfo=LONDON, fold=0).utcoffset()
        != naive.replace(tzinfo=LONDON, fold=1).utcoffset()
    )
    return f"{label} {local:%Z}" if twice else label


def opening(settings: Settings, day: date) -> tuple[datetime, datetime] | None:
    """The day's opening and closing instants (UTC), or None when closed."""
    span = settings.appointment_hours.get(WEEKDAYS[day.weekday()])
    if not span:
        return None
    start, end = span.split("-")
    opens = _instant(day, start)
    closes = _instant(day + timedelta(days=1), "00:00") if end == "24:00" else _instant(day, end)
    return opens, closes


def _instant(day: date, hhmm: str) -> datetime:
    # A repeated autumn wall-clock time means its first occurrence (fold=0); one in
    # the spring gap is read with the offset before it (01:30 is 02:30 BST).
    hour, minute = (int(part) for part in hhmm.split(":"))
    return datetime.combine(day, time(hour, minute), tzinfo=LONDON).astimezone(UTC)


def slots(session: Session, settings: Settings, day: date) -> list[Slot]:
    """Every slot of a London day, with how many are booked."""
    hours = opening(settings, day)
    if hours is None:
        return []
    opens, closes = hours
    length = timedelta(minutes=settings.appointment_slot_minutes)
    booked = _booked_between(session, opens, closes)
    result = []
    start = opens
    while start + length <= closes:
        result.append(
            Slot(start, start + length, booked.get(start, 0), settings.appointment_officers)
        )
        start += length
    return result


def free_slots(
    session: Session, settings: Settings, day: date, now: datetime | None = None
) -> list[Slot]:
    """The slots of a London day that have a place left and have not started."""
    now = now or utcnow()
    return [s for s in slots(session, settings, day) if s.free and s.starts_at > now]


def next_free_slots(
    session: Session, settings: Settings, limit: int = 12, now: datetime | None = None
) -> list[Slot]:
    """The next free slots from now, over the coming fortnight at most."""
    now = now or utcnow()
    today = now.astimezone(LONDON).date()
    found: list[Slot] = []
    for offset in range(LOOKAHEAD_DAYS):
        found += free_slots(session, settings, today + timedelta(days=offset), now)
        if len(found) >= limit:
            break
    return found[:limit]


def _booked_between(session: Session, start: datetime, end: datetime) -> dict[datetime, int]:
    rows = session.exec(
        select(Appointment.starts_at, func.count())
        .where(
            col(Appointment.state).in_([s.value for s in ACTIVE_APPOINTMENT_STATES]),
            col(Appointment.starts_at) >= start,
            col(Appointment.starts_at) < end,
        )
        .group_by(col(Appointment.starts_at))
    ).all()
    return {at.astimezone(UTC): n for at, n in rows}


def _check_slot(
    session: Session,
    settings: Settings,
    starts_at: datetime,
    now: datetime,
) -> Slot:
    if starts_at.tzinfo is None:
        raise AppointmentError("the time must say its zone")
    starts_at = starts_at.astimezone(UTC)
    if starts_at <= now:
        raise AppointmentError(f"{london_label(starts_at)} has passed: choose a later slot")
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_BOOKING_LOCK})
    day = starts_at.astimezone(LONDON).date()
    for slot in slots(session, settings, day):
        if slot.starts_at == starts_at:
            if slot.booked >= slot.capacity:
                raise AppointmentError(
                    f"{slot.label} is full ({slot.capacity} of {slot.capacity} booked): "
                    "choose another slot"
                )
            return slot
    hours = opening(settings, day)
    if hours is None or not hours[0] <= starts_at < hours[1]:
        span = settings.appointment_hours.get(WEEKDAYS[day.weekday()], "closed")
        raise AppointmentError(
            f"{london_label(starts_at)} is outside opening hours ({day:%A}: {span})"
        )
    raise AppointmentError(
        f"{london_label(starts_at)} is not the start of a slot: slots are "
        f"{settings.appointment_slot_minutes} minutes from {london_label(hours[0])[-5:]}"
    )


def active_for(session: Session, incident_id: int) -> Appointment | None:
    return session.exec(
        select(Appointment)
        .where(
            Appointment.incident_id == incident_id,
            col(Appointment.state).in_([s.value for s in ACTIVE_APPOINTMENT_STATES]),
        )
        .order_by(col(Appointment.id).desc())
    ).first()


def for_incident(session: Session, incident_id: int) -> list[Appointment]:
    return list(
        session.exec(
            select(Appointment)
            .where(Appointment.incident_id == incident_id)
            .order_by(col(Appointment.id).desc())
        ).all()
    )


# An appointment's SMS go in the box's default caller language (docs/languages.md).


def booking_text(settings: Settings, starts_at: datetime, link: str) -> str:
    language = settings.caller_language_default
    return i18n.gettext(
        language,
        N_(
            "%(force_name)s: your video call is booked for %(when)s. "
            "The link works from %(minutes)s minutes before: %(link)s"
        ),
    ) % {
        "force_name": settings.force_name,
        "when": london_label(starts_at, language),
        "minutes": settings.appointment_link_opens_minutes,
        "link": link,
    }


def reminder_text(settings: Settings, starts_at: datetime, link: str) -> str:
    language = settings.caller_language_default
    return i18n.gettext(
        language, N_("%(force_name)s: reminder, your video call is at %(when)s: %(link)s")
    ) % {"force_name": settings.force_name, "when": london_label(starts_at, language), "link": link}


def cancellation_text(settings: Settings, starts_at: datetime) -> str:
    language = settings.caller_language_default
    return i18n.gettext(
        language,
        N_("%(force_name)s: your video call on %(when)s is cancelled. The link will not work."),
    ) % {"force_name": settings.force_name, "when": london_label(starts_at, language)}


def book(
    session: Session,
    actor: Actor,
    settings: Settings,
    incident: Incident,
    booked_by: User,
    starts_at: datetime,
    safe_to_contact: bool,
    now: datetime | None = None,
) -> Appointment:
    """Book a slot: the invite, the booking SMS and the reminder. Refuses before writing."""
    now = now or utcnow()
    _refuse_rvr(settings, incident)
    if incident.eligibility != "eligible":
        raise AppointmentError(
            "complete the eligibility checklist first: a video call needs every answer yes"
        )
    if active_for(session, incident.id or 0) is not None:
        raise AppointmentError("this incident already has an appointment: move or cancel it")
    if not safe_to_contact:
        raise AppointmentError("confirm that it is safe to contact the caller on this number now")
    slot = _check_slot(session, settings, starts_at, now)
    call, reminder = _invite_and_sms(session, actor, settings, incident, booked_by, slot, now)
    appointment = Appointment(
        incident_id=incident.id or 0,
        call_public_id=call.public_id,
        invite_id=call.invite_id,
        starts_at=slot.starts_at,
        ends_at=slot.ends_at,
        booked_by_id=booked_by.id or 0,
        reminder_message_id=reminder.id if reminder else None,
    )
    session.add(appointment)
    session.flush()
    _audit(session, actor, "appointment.booked", appointment, incident)
    return appointment


def _refuse_rvr(settings: Settings, incident: Incident) -> None:
    """A booked time means a force-named SMS and a reminder to the phone, later, when
    nobody can ask whether it is safe: never on the Rapid Video Response track."""
    if incident.category in settings.rvr_categories:
        raise AppointmentError(
            "this is Rapid Video Response work: no appointment; agree a safe time by phone "
            "and transfer from its RVR page"
        )


def move(
    session: Session,
    actor: Actor,
    settings: Settings,
    appointment: Appointment,
    moved_by: User,
    starts_at: datetime,
    safe_to_contact: bool,
    now: datetime | None = None,
) -> Appointment:
    """Move to another slot: the old link stops, a new one goes with the new time."""
    now = now or utcnow()
    if AppointmentState(appointment.state) not in ACTIVE_APPOINTMENT_STATES:
        raise AppointmentError(f"this appointment is {appointment.state}")
    if not safe_to_contact:
        raise AppointmentError("confirm that it is safe to contact the caller on this number now")
    if starts_at.astimezone(UTC) == appointment.starts_at:
        raise AppointmentError("that is the slot it has already: choose another")
    slot = _check_slot(session, settings, starts_at, now)
    incident = session.get(Incident, appointment.incident_id)
    assert incident is not None
    _refuse_rvr(settings, incident)
    was = appointment.starts_at
    _withdraw(session, settings, actor, appointment)
    call, reminder = _invite_and_sms(session, actor, settings, incident, moved_by, slot, now)
    appointment.call_public_id = call.public_id
    appointment.invite_id = call.invite_id
    appointment.starts_at = slot.starts_at
    appointment.ends_at = slot.ends_at
    appointment.reminder_message_id = reminder.id if reminder else None
    appointment.state = AppointmentState.MOVED.value
    session.add(appointment)
    session.flush()
    _audit(session, actor, "appointment.moved", appointment, incident, was=was.isoformat())
    return appointment


def cancel(
    session: Session,
    actor: Actor,
    settings: Settings,
    appointment: Appointment,
    safe_to_contact: bool,
) -> Appointment:
    """Cancel: the link stops, a pending reminder is withdrawn, the caller is told."""
    if AppointmentState(appointment.state) not in ACTIVE_APPOINTMENT_STATES:
        raise AppointmentError(f"this appointment is {appointment.state}")
    if not safe_to_contact:
        raise AppointmentError("confirm that it is safe to contact the caller on this number now")
    incident = session.get(Incident, appointment.incident_id)
    assert incident is not None
    _withdraw(session, settings, actor, appointment)
    messages.queue_sms(
        session,
        actor,
        settings=settings,
        to_phone=incident.caller_phone,
        body=cancellation_text(settings, appointment.starts_at),
        reference=appointment.call_public_id,
        incident_id=incident.id,
        call_public_id=appointment.call_public_id,
        purpose="cancellation",
    )
    appointment.state = AppointmentState.CANCELLED.value
    session.add(appointment)
    session.flush()
    _audit(session, actor, "appointment.cancelled", appointment, incident)
    return appointment


def _invite_and_sms(
    session: Session,
    actor: Actor,
    settings: Settings,
    incident: Incident,
    user: User,
    slot: Slot,
    now: datetime,
) -> tuple[Call, OutboundMessage | None]:
    opens_at = slot.starts_at - timedelta(minutes=settings.appointment_link_opens_minutes)
    call, _, link = invites.create_sms_invite(
        session,
        actor,
        incident,
        user,
        settings,
        safe_to_contact=True,  # checked by the caller of this, before anything was written
        ttl=slot.ends_at - utcnow(),
        opens_at=opens_at,
        wording=lambda url: booking_text(settings, slot.starts_at, url),
        language=settings.caller_language_default,
    )
    remind_at = slot.starts_at - timedelta(minutes=settings.appointment_reminder_minutes)
    reminder = None
    if settings.appointment_reminder_minutes and remind_at > now:
        reminder = messages.queue_sms(
            session,
            actor,
            settings=settings,
            to_phone=incident.caller_phone,
            body=reminder_text(settings, slot.starts_at, link),
            reference=call.public_id,
            incident_id=incident.id,
            call_public_id=call.public_id,
            not_before=remind_at,
            purpose="reminder",
        )
    return call, reminder


def _withdraw(session: Session, settings: Settings, actor: Actor, appointment: Appointment) -> None:
    """Stop the current link and withdraw its reminder if it has not gone yet."""
    call = states.by_public_id(session, appointment.call_public_id)
    if call is not None:
        life.revoke(session, settings, actor, call)
    if appointment.reminder_message_id is not None:
        reminder = session.get(OutboundMessage, appointment.reminder_message_id)
        if reminder is not None:
            messages.cancel(session, actor, reminder)


def _audit(
    session: Session,
    actor: Actor,
    action: str,
    appointment: Appointment,
    incident: Incident,
    **extra: object,
) -> None:
    audit.record(
        session,
        actor,
        action,
        object_type="incident",
        object_id=incident.cad_reference,
        detail={
            "appointment": appointment.id,
            "call": appointment.call_public_id,
            "starts_at": appointment.starts_at.isoformat(),
            **extra,
        },
    )


@dataclass(frozen=True)
class Booking:
    """What the incident page shows: the appointment on, its history, slots to pick."""

    current: Appointment | None
    past: list[Appointment]
    slots: list[Slot]

    @staticmethod
    def label(at: datetime) -> str:
        return london_label(at)


def booking_for(session: Session, settings: Settings, incident_id: int) -> Booking:
    every = for_incident(session, incident_id)
    current = next(
        (a for a in every if AppointmentState(a.state) in ACTIVE_APPOINTMENT_STATES), None
    )
    past = [a for a in every if a is not current]
    return Booking(current, past, next_free_slots(session, settings))
