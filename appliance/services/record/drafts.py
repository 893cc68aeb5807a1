"""Drafts of the officer's forms (a note, THRIVE), saved as they type.

A draft is the author's own: saved and read by the user who typed it, on one incident,
one per form; another officer on the same incident never sees it. It is not part of the
record (the note or the THRIVE version sent is), so saving one is not audited, and it goes
when its form is sent (``discard``). The fields kept are the form's own, by name, and
only those: anything else in the request is dropped.
"""

from __future__ import annotations

from collections.abc import Mapping

from sqlalchemy import delete
from sqlmodel import Session, col, select

from appliance.models import DRAFT_FORMS, THRIVE_PARTS, OfficerDraft, User, utcnow

FIELDS = {
    "note": {"text": 4000, "kind": 16, "referred_to": 120},
    "thrive": {
        **{part: 16 for part in THRIVE_PARTS},
        **{f"{part}_note": 1000 for part in THRIVE_PARTS},
    },
}
"""Each form's fields and the most characters each may hold (the form's own limits)."""
UNTOUCHED = {"note": {"kind": "note"}}
"""A field at its form's starting value is not something typed: a note form with only its
"Note" radio chosen is an empty form and leaves no draft."""


class DraftRefused(ValueError):
    """Not saved; the message is for the officer."""


def _fields(form: str, values: Mapping[str, str]) -> dict[str, str]:
    if form not in DRAFT_FORMS:
        raise DraftRefused("There is no such form to keep a draft of.")
    kept = {}
    for name, limit in FIELDS[form].items():
        value = str(values.get(name, ""))
        if len(value) > limit:
            raise DraftRefused(f"The draft's {name.replace('_', ' ')} is too long.")
        if value and value != UNTOUCHED.get(form, {}).get(name):
            kept[name] = value
    return kept


def get(session: Session, user: User, incident_id: int, form: str) -> OfficerDraft | None:
    return session.exec(
        select(OfficerDraft).where(
            OfficerDraft.user_id == user.id,
            OfficerDraft.incident_id == incident_id,
            OfficerDraft.form == form,
        )
    ).first()


def of(session: Session, user: User, incident_id: int) -> dict[str, OfficerDraft]:
    """This user's drafts on this incident, by form."""
    rows = session.exec(
        select(OfficerDraft).where(
            OfficerDraft.user_id == user.id, OfficerDraft.incident_id == incident_id
        )
    ).all()
    return {row.form: row for row in rows}


def save(
    session: Session, user: User, incident_id: int, form: str, values: Mapping[str, str]
) -> OfficerDraft | None:
    """Keep what is typed; an emptied form leaves no draft (returns None)."""
    fields = _fields(form, values)
    draft = get(session, user, incident_id, form)
    if not fields:
        if draft is not None:
            session.delete(draft)
        return None
    if draft is None:
        draft = OfficerDraft(user_id=user.id or 0, incident_id=incident_id, form=form)
    draft.fields = fields
    draft.saved_at = utcnow()
    session.add(draft)
    session.flush()
    return draft


def discard(session: Session, user: User, incident_id: int, form: str) -> None:
    """The form was sent: its draft is done with."""
    session.execute(
        delete(OfficerDraft).where(
            col(OfficerDraft.user_id) == user.id,
            col(OfficerDraft.incident_id) == incident_id,
            col(OfficerDraft.form) == form,
        )
    )
