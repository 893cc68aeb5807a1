"""A caller's position: shared once through a location link, or sent during a video
call (once, or kept up to date if the caller agreed: the incident's track)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlmodel import Session, col, select

from appliance import grid
from appliance.i18n import N_
from appliance.models import Call, Invite, LocationFix, SharedLocation, utcnow
from appliance.services import audit
from appliance.services.audit import Actor
from appliance.services.calls import invites, states

MAX_ACCURACY_M = 10_000.0


class LocationRefused(ValueError):
    """A position not kept; the message is for the caller."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


def check(latitude: float, longitude: float, accuracy_m: float, bounds: list[float]) -> None:
    """Refuse what no phone on Earth (or, with ``bounds``, in the force's area) reports."""
    if not all(math.isfinite(v) for v in (latitude, longitude, accuracy_m)):
        raise LocationRefused(N_("The position your phone sent was not a number."), "not_a_number")
    if not (-90 <= latitude <= 90 and -180 <= longitude <= 180):
        raise LocationRefused(
            N_(
                "The position your phone sent is not on Earth (latitude −90 to 90, "
                "longitude −180 to 180)."
            ),
            "out_of_range",
        )
    if not (0 <= accuracy_m <= MAX_ACCURACY_M):
        raise LocationRefused(
            N_(
                "Your phone could not tell where you are closely enough (within 10 km). "
                "Try again outdoors or with location services on."
            ),
            "inaccurate",
        )
    if bounds:
        south, west, north, east = bounds
        if not (south <= latitude <= north and west <= longitude <= east):
            raise LocationRefused(
                N_(
                    "The position your phone sent is outside the area we cover, so it was "
                    "not kept. Tell the officer where you are instead."
                ),
                "outside_bounds",
            )


def share(
    session: Session,
    call: Call,
    invite: Invite,
    latitude: float,
    longitude: float,
    accuracy_m: float,
    bounds: list[float],
    source: str,
) -> SharedLocation:
    """Keep the caller's position (once) and spend the link. The grid reference is
    computed here (a caller on the event loop runs ``grid.warm`` in a thread first)."""
    check(latitude, longitude, accuracy_m, bounds)
    if session.exec(select(SharedLocation).where(SharedLocation.invite_id == invite.id)).first():
        raise LocationRefused(N_("Your location has already been shared."), "already_shared")
    place = grid.reference(latitude, longitude)
    location = SharedLocation(
        incident_id=invite.incident_id,
        invite_id=invite.id or 0,
        latitude=latitude,
        longitude=longitude,
        accuracy_m=accuracy_m,
        easting=place.easting if place else None,
        northing=place.northing if place else None,
    )
    session.add(location)
    session.flush()
    audit.record(
        session,
        Actor("caller", source),
        "location.shared",
        object_type="call",
        object_id=call.public_id,
        detail={"location": location.id, "accuracy_m": round(accuracy_m, 1)},
    )
    invites.finish_collection(session, call, source, "location_shared")
    return location


def record_refusal(session: Session, call: Call, refusal: LocationRefused, source: str) -> None:
    audit.record(
        session,
        Actor("caller", source),
        "location.refused",
        object_type="call",
        object_id=call.public_id,
        detail={"reason": refusal.reason},
    )


def for_incident(session: Session, incident_id: int) -> list[SharedLocation]:
    return list(
        session.exec(
            select(SharedLocation)
            .where(SharedLocation.incident_id == incident_id)
            .order_by(col(SharedLocation.id))
        ).all()
    )


def record_fix(
    session: Session,
    call: Call,
    latitude: float,
    longitude: float,
    accuracy_m: float,
    bounds: list[float],
    every: timedelta,
) -> LocationFix | None:
    """Keep a position the caller's phone sent during the call, as a fix of the track.

    Only with the caller's consent to share it (``CallError`` otherwise). A caller who
    agreed to share it once has their first fix kept and later ones dropped; one who
    agreed to it being kept up to date has one fix kept per ``every`` (the page sends no
    faster, so a faster one is a page not ours, or a replay, and is dropped). A dropped
    fix returns ``None``. The grid reference is computed here, from OSTN15 (``grid``);
    a caller on the event loop runs ``grid.warm`` in a thread first.
    """
    if not call.consent_location:
        raise states.CallError("the caller did not agree to share their location")
    check(latitude, longitude, accuracy_m, bounds)
    last = session.exec(
        select(LocationFix)
        .where(LocationFix.call_id == call.id)
        .order_by(col(LocationFix.id).desc())
    ).first()
    now = utcnow()
    if last is not None and (not call.consent_location_updates or now - last.fixed_at < every):
        return None
    states.record_location(session, call, latitude, longitude, accuracy_m)
    place = grid.reference(latitude, longitude)
    fix = LocationFix(
        incident_id=call.incident_id,
        call_id=call.id or 0,
        latitude=latitude,
        longitude=longitude,
        accuracy_m=accuracy_m,
        easting=place.easting if place else None,
        northing=place.northing if place else None,
        fixed_at=now,
    )
    session.add(fix)
    session.flush()
    return fix


@dataclass(frozen=True)
class Position:
    """One point of an incident's track, whichever way it came."""

    at: datetime
    source: str  # "call" (during a video call) or "link" (a location link)
    latitude: float
    longitude: float
    accuracy_m: float
    grid: grid.GridReference | None


def fixes_for(session: Session, incident_id: int) -> list[LocationFix]:
    return list(
        session.exec(
            select(LocationFix)
            .where(LocationFix.incident_id == incident_id)
            .order_by(col(LocationFix.id))
        ).all()
    )


def _grid(easting: float | None, northing: float | None) -> grid.GridReference | None:
    return None if easting is None or northing is None else grid.GridReference(easting, northing)


def positions(fixes: list[LocationFix], shared: list[SharedLocation]) -> list[Position]:
    """The track, oldest first, from a call's fixes and the locations shared through
    links (each with the grid reference kept when it arrived: nothing converts here)."""
    points = [
        Position(
            f.fixed_at, "call", f.latitude, f.longitude, f.accuracy_m, _grid(f.easting, f.northing)
        )
        for f in fixes
    ]
    points += [
        Position(
            s.shared_at, "link", s.latitude, s.longitude, s.accuracy_m, _grid(s.easting, s.northing)
        )
        for s in shared
    ]
    return sorted(points, key=lambda p: p.at)


def track(session: Session, incident_id: int) -> list[Position]:
    """Every position the caller gave for the incident, oldest first."""
    return positions(fixes_for(session, incident_id), for_incident(session, incident_id))
