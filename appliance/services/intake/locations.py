"""A caller's position, shared once through a location link."""

from __future__ import annotations

import math

from sqlmodel import Session, col, select

from appliance.i18n import N_
from appliance.models import Call, Invite, SharedLocation
from appliance.services import audit
from appliance.services.audit import Actor
from appliance.services.calls import invites

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
    """Keep the caller's position (once) and spend the link."""
    check(latitude, longitude, accuracy_m, bounds)
    if session.exec(select(SharedLocation).where(SharedLocation.invite_id == invite.id)).first():
        raise LocationRefused(N_("Your location has already been shared."), "already_shared")
    location = SharedLocation(
        incident_id=invite.incident_id,
        invite_id=invite.id or 0,
        latitude=latitude,
        longitude=longitude,
        accuracy_m=accuracy_m,
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
