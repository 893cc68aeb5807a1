"""The officer's record of an incident: THRIVE, notes and safeguarding, the outcome.

THRIVE is versioned: a change adds a version and the earlier ones stay, so who
changed what, and when, can always be read back. Notes never change once written.
Closing an incident needs an outcome, and the outcome says whether anyone had to be
sent: deployments avoided are counted from it.
"""

from __future__ import annotations

from sqlmodel import Session, col, func, select

from appliance.config import Settings
from appliance.models import (
    THRIVE_PARTS,
    THRIVE_RATINGS,
    Incident,
    IncidentNote,
    ThriveAssessment,
    User,
    utcnow,
)
from appliance.services import audit
from appliance.services.audit import Actor
from appliance.services.intake.incidents import IncidentError
from appliance.services.outbox import cad

NOTE_KINDS = ("note", "safeguarding")


def thrive_history(session: Session, incident: Incident) -> list[ThriveAssessment]:
    return list(
        session.exec(
            select(ThriveAssessment)
            .where(ThriveAssessment.incident_id == incident.id)
            .order_by(col(ThriveAssessment.version).desc())
        ).all()
    )


def record_thrive(
    session: Session,
    actor: Actor,
    user: User,
    incident: Incident,
    ratings: dict[str, str],
    notes: dict[str, str],
) -> ThriveAssessment:
    """A new THRIVE version; every part rated low, medium or high, notes optional."""
    missing = [part for part in THRIVE_PARTS if ratings.get(part) not in THRIVE_RATINGS]
    if missing:
        raise IncidentError("rate each part of THRIVE low, medium or high: " + ", ".join(missing))
    unknown = set(ratings) - set(THRIVE_PARTS) | set(notes) - set(THRIVE_PARTS)
    if unknown:
        raise IncidentError(f"THRIVE has no part called {sorted(unknown)[0]!r}")
    last = session.exec(
        select(func.max(ThriveAssessment.version)).where(
            ThriveAssessment.incident_id == incident.id
        )
    ).one()
    assessment = ThriveAssessment(
        incident_id=incident.id or 0,
        version=(last or 0) + 1,
        ratings={part: ratings[part] for part in THRIVE_PARTS},
        notes={part: notes.get(part, "").strip()[:1000] for part in THRIVE_PARTS},
        by_id=user.id or 0,
    )
    session.add(assessment)
    session.flush()
    audit.record(
        session,
        actor,
        "incident.thrive",
        object_type="incident",
        object_id=incident.cad_reference,
        detail={"version": assessment.version, "ratings": assessment.ratings},
    )
    return assessment


def add_note(
    session: Session,
    actor: Actor,
    user: User,
    incident: Incident,
    text: str,
    kind: str = "note",
    referred_to: str = "",
) -> IncidentNote:
    if kind not in NOTE_KINDS:
        raise IncidentError(f"a note is one of: {', '.join(NOTE_KINDS)}")
    if not text.strip():
        raise IncidentError("write the note first")
    if kind == "safeguarding" and not referred_to.strip():
        raise IncidentError("say who the safeguarding referral goes to")
    note = IncidentNote(
        incident_id=incident.id or 0,
        kind=kind,
        text=text.strip()[:4000],
        referred_to=referred_to.strip()[:120],
        by_id=user.id or 0,
    )
    session.add(note)
    session.flush()
    audit.record(
        session,
        actor,
        f"incident.{'safeguarding' if kind != 'note' else 'note'}",
        object_type="incident",
        object_id=incident.cad_reference,
        detail={"note": note.id},
    )
    return note


def notes_of(session: Session, incident: Incident) -> list[IncidentNote]:
    return list(
        session.exec(
            select(IncidentNote)
            .where(IncidentNote.incident_id == incident.id)
            .order_by(col(IncidentNote.id))
        ).all()
    )


def set_outcome(
    session: Session,
    actor: Actor,
    user: User,
    incident: Incident,
    settings: Settings,
    code: str,
    deployment_needed: bool | None,
) -> None:
    if code not in settings.outcome_codes:
        raise IncidentError("choose an outcome from the list")
    if code in settings.outcome_codes_deploying:
        deployment_needed = True
    if deployment_needed is None:
        raise IncidentError("say whether an officer had to be sent")
    incident.outcome_code = code
    incident.deployment_needed = deployment_needed
    incident.outcome_by_id = user.id
    incident.outcome_at = utcnow()
    session.add(incident)
    audit.record(
        session,
        actor,
        "incident.outcome",
        object_type="incident",
        object_id=incident.cad_reference,
        detail={"outcome": code, "deployment_needed": deployment_needed},
    )
    cad.queue_event(
        session,
        settings,
        "incident.outcome",
        incident.id,
        {
            "outcome": {
                "code": code,
                "label": settings.outcome_codes[code],
                "deploymentNeeded": deployment_needed,
                "by": user.display_name,
            }
        },
    )


def close(session: Session, actor: Actor, incident: Incident, settings: Settings) -> None:
    """Close the incident; refused without an outcome."""
    if incident.outcome_code is None:
        raise IncidentError("set the outcome before closing the incident")
    if incident.status == "closed":
        return
    incident.status = "closed"
    incident.closed_at = utcnow()
    session.add(incident)
    audit.record(
        session,
        actor,
        "incident.closed",
        object_type="incident",
        object_id=incident.cad_reference,
        detail={"outcome": incident.outcome_code},
    )
    cad.queue_event(
        session, settings, "incident.closed", incident.id, {"outcome": incident.outcome_code}
    )
