"""Incidents, eligibility, the queue's targets, outcomes, appointments, locations."""

from __future__ import annotations

import string

from pydantic import BaseModel, Field, field_validator

from appliance.config.defaults import FULL_DAYS, HOURS_RE, UK_BOUNDS, WEEKDAYS


class IntakeSettings(BaseModel):
    invite_ttl_hours: int = Field(
        24, ge=1, le=24 * 14, description="A caller's link works for this long after it is made."
    )
    queue_target_seconds: int = Field(
        180,
        ge=10,
        le=86400,
        description="How long a caller who has joined should wait, at "
        "most, before a handler admits them; longer counts as a target breach.",
    )
    response_target_hours_by_grade: dict[str, float] = Field(
        {"1": 1.0, "2": 4.0, "3": 48.0, "4": 168.0},
        description="Hours from an incident's receipt to its video response, by grade "
        "(grade 3: 48 hours, Dorset's target). The queue orders by this and shows breaches.",
    )
    response_target_hours_by_category: dict[str, float] = Field(
        {},
        description="Targets that override the grade's for a category, e.g. "
        '{"Domestic abuse": 1}.',
    )
    incident_categories: list[str] = Field(
        [
            "Burglary",
            "Criminal damage",
            "Theft",
            "Vehicle crime",
            "Anti-social behaviour",
            "Fraud",
            "Harassment",
            "Domestic abuse",
            "Assault",
            "Other",
        ],
        min_length=1,
        description="Categories a handler picks from when creating an incident.",
    )
    eligibility_questions: list[str] = Field(
        [
            "The caller is 18 or over, or a parent or guardian is with them",
            "The caller has a smartphone with a camera, and 4G or Wi-Fi",
            "The offender is not present",
            "There is no immediate threat, risk or harm",
            "The caller agrees to a video call and knows an officer can still visit instead",
        ],
        min_length=1,
        description="The checklist a handler answers before a video invite (Dorset's rules by "
        "default). Every answer must be yes for the video path.",
    )
    outcome_codes: dict[str, str] = Field(
        {
            "advice_given": "Advice given",
            "crime_recorded": "Crime recorded",
            "resolved_on_call": "Resolved on the call",
            "referred": "Referred to a partner agency",
            "officer_to_attend": "Officer to attend",
            "no_further_action": "No further action",
        },
        min_length=1,
        description="Outcome codes (code: label) a handler chooses from; closing an "
        "incident needs one.",
    )
    outcome_codes_deploying: list[str] = Field(
        ["officer_to_attend"],
        description="Outcome codes that mean someone is sent: a deployment, never avoided.",
    )
    appointment_hours: dict[str, str] = Field(
        dict.fromkeys(WEEKDAYS, "08:30-21:30"),
        description="Opening hours for booked video appointments per weekday, Europe/London "
        'wall-clock time, e.g. {"mon": "08:30-21:30", "sun": "closed"}; a day left out is '
        "closed.",
    )
    appointment_slot_minutes: int = Field(
        30, ge=5, le=240, description="Length of one appointment slot."
    )
    appointment_officers: int = Field(
        2, ge=1, le=100, description="Video officers on duty: appointments bookable per slot."
    )
    appointment_reminder_minutes: int = Field(
        60, ge=0, le=7 * 24 * 60, description="The reminder SMS goes this long before the slot."
    )
    appointment_link_opens_minutes: int = Field(
        15, ge=0, le=24 * 60, description="An appointment's link works from this long before it."
    )

    location_update_seconds: int = Field(
        15,
        ge=5,
        le=600,
        description="A caller who lets their position be kept up to date during a call: "
        "their page sends a new fix at most this often, and the box keeps at most one "
        "fix per call in this many seconds (a faster one is dropped).",
    )
    location_bounds: list[float] = Field(
        UK_BOUNDS,
        description="A shared location outside this box [south, west, north, east] (degrees) "
        "is refused as implausible; [] accepts anywhere on Earth.",
    )

    force_map_url: str = Field(
        "",
        max_length=500,
        description="A link to the force's own map at a caller's shared location: an "
        "https:// URL template with {lat} and {lon} (decimal degrees, WGS84), opened in a "
        "new tab from the call console; empty shows no link.",
    )

    @field_validator("force_map_url")
    @classmethod
    def _force_map_url(cls, value: str) -> str:
        value = value.strip()
        if not value:
            return value
        if not value.startswith(("https://", "http://")) or any(c.isspace() for c in value):
            raise ValueError("must be an https:// (or http://) URL with no spaces")
        try:
            fields = {name for _, name, _, _ in string.Formatter().parse(value) if name is not None}
        except ValueError as exc:
            raise ValueError(f"is not a URL template with {{lat}} and {{lon}} ({exc})") from exc
        if fields != {"lat", "lon"}:
            extra = ", ".join(sorted(fields - {"lat", "lon"}))
            raise ValueError(
                "must hold {lat} and {lon}, and no other {…} field"
                + (f" (found {extra})" if extra else "")
            )
        try:
            value.format(lat=0.0, lon=0.0)
        except (ValueError, IndexError, KeyError) as exc:
            raise ValueError(f"is not a URL template with {{lat}} and {{lon}} ({exc})") from exc
        return value

    @field_validator("location_bounds")
    @classmethod
    def _bounds(cls, value: list[float]) -> list[float]:
        if not value:
            return value
        if len(value) != 4:
            raise ValueError("must be [south, west, north, east] or []")
        south, west, north, east = value
        if not (-90 <= south < north <= 90 and -180 <= west < east <= 180):
            raise ValueError("must be [south, west, north, east] with south < north, west < east")
        return value

    @field_validator("appointment_hours")
    @classmethod
    def _appointment_hours(cls, value: dict[str, str]) -> dict[str, str]:
        hours: dict[str, str] = {}
        for day, span in value.items():
            key = day.strip().lower()[:3]
            if key not in WEEKDAYS or day.strip().lower() not in (key, FULL_DAYS[key]):
                raise ValueError(f"{day!r} is not a weekday (mon, tue, ... sun)")
            span = span.strip().lower()
            if span in ("", "closed"):
                continue
            match = HOURS_RE.fullmatch(span)
            if not match or (match[3] == "24" and match[4] != "00"):
                raise ValueError(f"{day}: {span!r} is not HH:MM-HH:MM (or closed)")
            if (match[1], match[2]) >= (match[3], match[4]):
                raise ValueError(f"{day}: {span!r} closes before it opens")
            hours[key] = span
        return hours
