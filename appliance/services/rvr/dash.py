"""The DASH risk checklist: its questions (a data file the force can replace), scoring, and
the MARAC flag.

The shipped file holds short headings in our own words, following the checklist's 27-part
structure; the checklist's own wording is not ours to ship. Scoring counts the yes answers;
the risk level is the officer's professional judgement, and a high level (or at least
``dash_marac_yes_count`` yes answers) flags a MARAC referral.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from sqlmodel import Session, col, select

from appliance.config import Settings
from appliance.models import DASH_ANSWERS, RISK_LEVELS, DashAssessment, Incident, User
from appliance.services import audit
from appliance.services.audit import Actor

DEFAULT_FILE = Path(__file__).resolve().parents[2] / "data" / "dash_questions.json"


class DashError(ValueError):
    """The message is for the officer, or (a bad questions file) for the administrator."""


@dataclass(frozen=True)
class Question:
    id: str
    text: str


@dataclass(frozen=True)
class Questions:
    version: str
    items: tuple[Question, ...]


def load_questions(path: Path | None = None) -> Questions:
    """The checklist from ``path`` (else the shipped default), checked: ids unique, texts set."""
    path = path or DEFAULT_FILE
    try:
        raw = path.read_bytes()
        data = json.loads(raw)
    except (OSError, ValueError) as exc:
        raise DashError(f"DASH questions file {path}: {exc}") from None
    entries = data.get("questions") if isinstance(data, dict) else data
    if not isinstance(entries, list) or not entries:
        raise DashError(f"DASH questions file {path}: expected a non-empty list of questions")
    items: list[Question] = []
    for number, entry in enumerate(entries, 1):
        if not isinstance(entry, dict) or not str(entry.get("id", "")).strip():
            raise DashError(f"DASH questions file {path}: question {number} has no id")
        text = str(entry.get("text", "")).strip()
        if not text:
            raise DashError(f"DASH questions file {path}: question {number} has no text")
        items.append(Question(str(entry["id"]).strip()[:32], text[:500]))
    if len({q.id for q in items}) != len(items):
        raise DashError(f"DASH questions file {path}: question ids must be unique")
    version = data.get("version") if isinstance(data, dict) else None
    return Questions(str(version or hashlib.sha256(raw).hexdigest()[:16])[:64], tuple(items))


def questions_for(settings: Settings) -> Questions:
    return load_questions(settings.dash_questions_file)


@dataclass(frozen=True)
class Score:
    yes: int
    not_known: int
    marac_referral: bool


def score(answers: dict[str, str], risk_level: str, marac_yes_count: int) -> Score:
    """Yes answers counted; MARAC when the officer says high, or the yes count reaches it."""
    yes = sum(1 for a in answers.values() if a == "yes")
    not_known = sum(1 for a in answers.values() if a == "not_known")
    return Score(yes, not_known, risk_level == "high" or yes >= marac_yes_count)


def record(
    session: Session,
    actor: Actor,
    user: User,
    incident: Incident,
    questions: Questions,
    answers: dict[str, str],
    notes: dict[str, str],
    risk_level: str,
    marac_yes_count: int,
) -> DashAssessment:
    """A completed checklist. Every question needs an answer and a risk level is needed."""
    missing = [q.id for q in questions.items if answers.get(q.id) not in DASH_ANSWERS]
    if missing:
        raise DashError(
            f"answer every question (yes, no or not known): {len(missing)} not answered"
        )
    if risk_level not in RISK_LEVELS:
        raise DashError("choose the risk level: standard, medium or high")
    kept = {q.id: answers[q.id] for q in questions.items}
    kept_notes = {
        q.id: notes[q.id].strip()[:1000] for q in questions.items if notes.get(q.id, "").strip()
    }
    result = score(kept, risk_level, marac_yes_count)
    assessment = DashAssessment(
        incident_id=incident.id or 0,
        questions_version=questions.version,
        answers=kept,
        notes=kept_notes,
        yes_count=result.yes,
        not_known_count=result.not_known,
        risk_level=risk_level,
        marac_referral=result.marac_referral,
        by_id=user.id or 0,
    )
    session.add(assessment)
    session.flush()
    audit.record(
        session,
        actor,
        "incident.dash",
        object_type="incident",
        object_id=incident.cad_reference,
        detail={
            "yes": result.yes,
            "not_known": result.not_known,
            "risk_level": risk_level,
            "marac_referral": result.marac_referral,
            "questions": questions.version,
        },
    )
    return assessment


def latest(session: Session, incident: Incident) -> DashAssessment | None:
    return session.exec(
        select(DashAssessment)
        .where(DashAssessment.incident_id == incident.id)
        .order_by(col(DashAssessment.id).desc())
    ).first()
