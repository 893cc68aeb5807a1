"""Subject access: everything the box holds about one person, found by phone or name,
and a signed bundle of it for the information manager to review before disclosure.

A phone number is found however it is written (07700 900123, +44 (0)7700 900123,
00447700900123): the query is normalised like an incident's number and compared
with every stored number normalised the same way. A name is matched without regard to
case against callers, statement witnesses and disclosure subjects. The bundle has
the same shape and signature as an evidence export (``evr export verify`` checks it),
plus ``third_parties.txt``: who else is in it, to consider for redaction. Every search
and export is audited; the audit names neither the number nor the name (only a
short hash of the query, so a repeated search can be matched to its export).
"""

from __future__ import annotations

import base64
import hashlib
import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from sqlmodel import Session, col, select

from appliance.config import Settings
from appliance.models import (
    AuditEvent,
    Call,
    ChatMessage,
    DashAssessment,
    Disclosure,
    EvidenceFile,
    FileStatus,
    GuestInvite,
    Incident,
    IncidentNote,
    LocationFix,
    OutboundMessage,
    RvrCase,
    SharedLocation,
    Statement,
    SurveyResponse,
    User,
    ViewerLink,
)
from appliance.services import audit
from appliance.services.audit import Actor
from appliance.services.evidence import export, sealing, signing
from appliance.services.evidence.master_key import Keyring
from appliance.services.intake.incidents import IncidentError, normalise_phone

README = """EVR subject access bundle ({query}).

What the appliance held about one person when it was made, for the information
manager to review: subject.json (every record), chat.txt, sms.txt, files/ (decrypted
media and statements), audit.jsonl (events about these incidents) and
third_parties.txt (other people in it: consider them for redaction before disclosure).

Check it:
  sha256sum -c SHA256SUMS
  evr export verify BUNDLE.zip
"""


class SubjectAccessError(ValueError):
    """The query cannot be run; the message says why."""


@dataclass
class Found:
    """What the box holds about one person."""

    query: str
    incidents: list[Incident] = field(default_factory=list)
    calls: list[Call] = field(default_factory=list)
    files: list[EvidenceFile] = field(default_factory=list)
    statements: list[Statement] = field(default_factory=list)
    chat: list[ChatMessage] = field(default_factory=list)
    sms: list[OutboundMessage] = field(default_factory=list)
    survey: list[SurveyResponse] = field(default_factory=list)
    locations: list[SharedLocation] = field(default_factory=list)
    location_fixes: list[LocationFix] = field(default_factory=list)
    notes: list[IncidentNote] = field(default_factory=list)
    rvr: list[RvrCase] = field(default_factory=list)
    dash: list[DashAssessment] = field(default_factory=list)
    disclosures: list[Disclosure] = field(default_factory=list)
    audit_events: list[AuditEvent] = field(default_factory=list)
    third_parties: list[str] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        return {
            name: len(getattr(self, name))
            for name in (
                "incidents",
                "calls",
                "files",
                "statements",
                "chat",
                "sms",
                "survey",
                "locations",
                "notes",
                "rvr",
                "dash",
                "disclosures",
                "audit_events",
                "third_parties",
            )
        }


def _same_phone(stored: str, wanted: str) -> bool:
    if not stored:
        return False
    try:
        return normalise_phone(stored) == wanted
    except IncidentError:
        return False


def query_hash(query: str) -> str:
    """A short, stable name for a query in the audit trail (never the query itself)."""
    return hashlib.sha256(b"evr subject access" + query.encode()).hexdigest()[:16]


def find(session: Session, actor: Actor, phone: str = "", name: str = "") -> Found:
    """Everything held about the person with this phone number or name (audited)."""
    if bool(phone.strip()) == bool(name.strip()):
        raise SubjectAccessError("search by a phone number or by a name, one of the two")
    if phone.strip():
        try:
            wanted = normalise_phone(phone)
        except IncidentError as exc:
            raise SubjectAccessError(str(exc)) from None
        found = Found(query=f"phone {wanted}")
        # Every stored number, normalised here: one written by hand in another format
        # (an API client's, an older row's) is found too.
        candidates = session.exec(select(Incident).where(Incident.caller_phone != "")).all()
        found.incidents = [i for i in candidates if _same_phone(i.caller_phone, wanted)]
        messages = session.exec(select(OutboundMessage).where(OutboundMessage.to_phone != "")).all()
        found.sms = [m for m in messages if _same_phone(m.to_phone, wanted)]
        extra = {m.incident_id for m in found.sms} - {i.id for i in found.incidents} - {None}
        if extra:
            found.incidents += session.exec(
                select(Incident).where(col(Incident.id).in_(extra))
            ).all()
    else:
        needle = name.strip().lower()
        found = Found(query=f"name {name.strip()}")
        ids = set(
            session.exec(
                select(Incident.id).where(col(Incident.caller_name).icontains(needle))
            ).all()
        )
        ids |= set(
            session.exec(
                select(Statement.incident_id).where(
                    col(Statement.witness_name).icontains(needle)
                    | col(Statement.signed_name).icontains(needle)
                )
            ).all()
        )
        ids |= set(
            session.exec(
                select(Disclosure.incident_id).where(col(Disclosure.subject).icontains(needle))
            ).all()
        )
        found.incidents = list(
            session.exec(select(Incident).where(col(Incident.id).in_(ids))).all()
        )
    found.incidents.sort(key=lambda i: i.id or 0)
    _gather(session, found, name.strip().lower())
    audit.record(
        session,
        actor,
        "subject_access.searched",
        object_type="subject",
        object_id=query_hash(found.query),
        detail={
            "by": "phone" if phone.strip() else "name",
            "incidents": [i.id for i in found.incidents],
        },
    )
    return found


def _gather(session: Session, found: Found, name: str) -> None:
    ids = [i.id for i in found.incidents]
    if not ids:
        return
    found.calls = list(session.exec(select(Call).where(col(Call.incident_id).in_(ids))).all())
    call_ids = [c.id for c in found.calls]
    found.files = list(
        session.exec(
            select(EvidenceFile)
            .where(col(EvidenceFile.incident_id).in_(ids))
            .order_by(col(EvidenceFile.id))
        ).all()
    )
    found.statements = list(
        session.exec(select(Statement).where(col(Statement.incident_id).in_(ids))).all()
    )
    found.chat = list(
        session.exec(
            select(ChatMessage)
            .where(col(ChatMessage.call_id).in_(call_ids))
            .order_by(col(ChatMessage.id))
        ).all()
    )
    known = {m.id for m in found.sms}
    found.sms += [
        m
        for m in session.exec(
            select(OutboundMessage).where(col(OutboundMessage.incident_id).in_(ids))
        ).all()
        if m.id not in known
    ]
    for table, attr in (
        (SurveyResponse, "survey"),
        (SharedLocation, "locations"),
        (LocationFix, "location_fixes"),
        (IncidentNote, "notes"),
        (RvrCase, "rvr"),
        (DashAssessment, "dash"),
        (Disclosure, "disclosures"),
    ):
        rows = session.exec(select(table).where(col(table.incident_id).in_(ids))).all()
        setattr(found, attr, list(rows))
    wanted = {("incident", str(i)) for i in ids} | {("call", c.public_id) for c in found.calls}
    wanted |= {("evidence_file", str(f.id)) for f in found.files}
    found.audit_events = [
        e
        for e in session.exec(select(AuditEvent).order_by(col(AuditEvent.seq))).all()
        if (e.object_type, e.object_id) in wanted or e.detail.get("incident") in ids
    ]
    found.third_parties = _third_parties(session, found, name)


def _third_parties(session: Session, found: Found, name: str) -> list[str]:
    """Other people in what was found, for the information manager to consider."""
    refs = {i.id: i.cad_reference for i in found.incidents}
    parties = []
    for disclosure in found.disclosures:
        if disclosure.subject and (not name or name not in disclosure.subject.lower()):
            parties.append(
                f"{refs[disclosure.incident_id]}: disclosure subject {disclosure.subject!r}"
            )
    for statement in found.statements:
        witness = statement.witness_name
        if witness and name and name not in witness.lower():
            parties.append(f"{refs[statement.incident_id]}: statement witness {witness!r}")
    calls = {c.id: c for c in found.calls}
    if calls:
        for guest in session.exec(
            select(GuestInvite).where(col(GuestInvite.call_id).in_(list(calls)))
        ).all():
            call = calls[guest.call_id]
            parties.append(
                f"{refs[call.incident_id]}: {guest.role} {guest.name!r} on call {call.public_id}"
            )
        for viewer in session.exec(
            select(ViewerLink).where(col(ViewerLink.call_id).in_(list(calls)))
        ).all():  # a responder who may have watched the call by a view-only link
            call = calls[viewer.call_id]
            parties.append(
                f"{refs[call.incident_id]}: viewer {viewer.name!r} on call {call.public_id}"
            )
    staff = {
        u.id: u.display_name
        for u in session.exec(select(User)).all()
        if u.id in {c.handler_id for c in found.calls} | {n.by_id for n in found.notes}
    }
    for user_id, display in sorted(staff.items(), key=lambda item: item[1]):
        parties.append(f"staff: {display!r} (user #{user_id}), named in the records")
    for file in found.files:
        if file.kind in ("recording", "snapshot", "upload") and file.status != "deleted":
            parties.append(
                f"{refs[file.incident_id]}: {file.kind} #{file.id} may show or be heard "
                "other people: review before disclosure"
            )
    if found.notes:
        parties.append("notes and safeguarding referrals may name other people: review them")
    return parties


def _rows(rows: list[Any]) -> list[dict[str, Any]]:
    return [row.model_dump() for row in rows]


def write_bundle(
    session: Session,
    settings: Settings,
    keyring: Keyring,
    actor: Actor,
    found: Found,
    out: IO[bytes],
) -> export.Bundle:
    """A signed zip of everything found, in the evidence export's format (audited)."""
    sums: list[tuple[str, str]] = []
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as bundle:

        def add(name: str, data: bytes) -> None:
            bundle.writestr(name, data)
            sums.append((hashlib.sha256(data).hexdigest(), name))

        for file in found.files:
            if file.status == FileStatus.DELETED.value:
                continue
            suffix = Path(file.path).suffix.lower()
            add(f"files/{file.kind}-{file.id}{suffix}", sealing.open_bytes(keyring, file))
        add(
            "subject.json",
            json.dumps(
                {
                    "query": found.query,
                    "incidents": _rows(found.incidents),
                    "calls": [c.model_dump(exclude={"caller_device_hash"}) for c in found.calls],
                    "files": [f.model_dump(exclude={"wrapped_key", "path"}) for f in found.files],
                    "statements": _rows(found.statements),
                    "survey": _rows(found.survey),
                    "locations": _rows(found.locations),
                    "location_fixes": _rows(found.location_fixes),
                    "notes": _rows(found.notes),
                    "rvr": _rows(found.rvr),
                    "dash": _rows(found.dash),
                    "disclosures": _rows(found.disclosures),
                    "exported_by": actor.name,
                },
                indent=2,
                sort_keys=True,
                default=str,
            ).encode(),
        )
        chat = "".join(f"{m.sent_at.isoformat()} {m.sender}: {m.body}\n" for m in found.chat)
        add("chat.txt", chat.encode())
        add(
            "sms.txt",
            "".join(
                f"{m.created_at.isoformat()} to {m.to_phone} [{m.status}]: {m.body}\n"
                for m in found.sms
            ).encode(),
        )
        add(
            "audit.jsonl",
            "".join(
                json.dumps(e.model_dump(), sort_keys=True, default=str) + "\n"
                for e in found.audit_events
            ).encode(),
        )
        add("third_parties.txt", "".join(f"{line}\n" for line in found.third_parties).encode())
        manifest = "".join(f"{digest}  {name}\n" for digest, name in sums).encode()
        key_file = settings.effective_signing_key_file
        bundle.writestr(export.SUMS, manifest)
        bundle.writestr(
            export.SIGNATURE, base64.b64encode(signing.sign(key_file, manifest)) + b"\n"
        )
        bundle.writestr(export.PUBLIC_KEY, signing.public_pem(key_file))
        bundle.writestr(export.README, README.format(query=query_hash(found.query)))
    sums_sha256 = hashlib.sha256(manifest).hexdigest()
    audit.record(
        session,
        actor,
        "subject_access.exported",
        object_type="subject",
        object_id=query_hash(found.query),
        detail={
            "incidents": [i.id for i in found.incidents],
            "files": len(sums),
            "sha256sums": sums_sha256,
        },
    )
    return export.Bundle(len(sums), sums_sha256)
