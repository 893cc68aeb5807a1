"""The witness statement: typed by the officer, read and signed by the caller on the phone.

A statement moves draft → sent → (changes requested → draft → sent …) → signed. Once
signed it is frozen: the PDF, the signature and the hashes never change, and a later
change starts a new version that has to be signed again. The content hash printed on
the PDF is the SHA-256 of :func:`canonical_content`, so anyone holding the statement's
fields and the signature image can recompute it without trusting this box.
"""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, UnidentifiedImageError
from sqlmodel import Session, col, select
from sqlmodel.sql.expression import SelectOfScalar

from appliance import i18n
from appliance.config import Settings
from appliance.i18n import N_
from appliance.models import (
    Call,
    FileKind,
    Incident,
    Invite,
    SignedBy,
    Statement,
    StatementState,
    User,
    utcnow,
)
from appliance.services import audit
from appliance.services.audit import Actor
from appliance.services.evidence import sealing
from appliance.services.evidence.master_key import Keyring
from appliance.services.outbox import cad

# The pad is 600×200 CSS pixels; twice that covers a high-density screen. The check
# reads the header first, so a bigger image costs nothing to refuse.
MAX_SIGNATURE_BYTES = 256 * 1024
MAX_SIGNATURE_SIDE = 1200
MIN_INK_PIXELS = 30

# What a caller who signs by typing ticks, word for word; the PDF quotes it. Typing a
# name is an electronic signature as good as a drawn one (Electronic Communications Act
# 2000 s.7) when the signer means it as one, which is what the box asks them to say.
TYPED_CONFIRMATION = N_("I confirm that typing my full name is my signature to this statement.")


class StatementError(ValueError):
    """Refused input; nothing changed. The message is for whoever asked."""


class StatementNotKept(StatementError):
    """The box could not write the signed files (a full disk): nothing was recorded."""


class StatementConflict(StatementError):
    """Refused because of the statement's state (signed already, being changed)."""


@dataclass(frozen=True)
class Witness:
    name: str
    age: str
    occupation: str
    account: str

    @classmethod
    def clean(cls, name: str, age: str, occupation: str, account: str) -> Witness:
        return cls(name.strip()[:120], age.strip()[:32], occupation.strip()[:120], account.strip())


def latest(session: Session, incident: Incident) -> Statement | None:
    return session.exec(
        select(Statement)
        .where(Statement.incident_id == incident.id)
        .order_by(col(Statement.version).desc())
        .limit(1)
    ).first()


def versions(session: Session, incident: Incident) -> list[Statement]:
    return list(
        session.exec(
            select(Statement)
            .where(Statement.incident_id == incident.id)
            .order_by(col(Statement.version).desc())
        ).all()
    )


def _record(
    session: Session, actor: Actor, action: str, statement: Statement, **detail: object
) -> None:
    incident = session.get(Incident, statement.incident_id)
    audit.record(
        session,
        actor,
        f"statement.{action}",
        object_type="incident",
        object_id=incident.cad_reference if incident else str(statement.incident_id),
        detail={"statement": statement.id, "version": statement.version, **detail},
    )


def save(
    session: Session,
    actor: Actor,
    officer: User,
    incident: Incident,
    witness: Witness,
    declaration: str,
    call: Call | None = None,
) -> Statement:
    """Save the officer's text. A signed statement is refused: start a new version."""
    statement = latest(session, incident)
    if statement is not None and statement.state == StatementState.SIGNED:
        raise StatementConflict(
            f"version {statement.version} is signed and never changes: start a new version"
        )
    created = statement is None
    if statement is None:
        statement = Statement(
            incident_id=incident.id or 0, version=1, declaration=declaration, officer_id=0
        )
    statement.witness_name = witness.name
    statement.witness_age = witness.age
    statement.witness_occupation = witness.occupation
    statement.account = witness.account
    statement.declaration = declaration
    statement.officer_id = officer.id or 0
    statement.state = StatementState.DRAFT.value
    statement.updated_at = utcnow()
    if call is not None:
        statement.call_id = call.id
    session.add(statement)
    session.flush()
    _record(session, actor, "created" if created else "edited", statement)
    return statement


def new_version(session: Session, actor: Actor, officer: User, incident: Incident) -> Statement:
    """A new draft copied from the signed one, which stays as it is."""
    previous = latest(session, incident)
    if previous is None:
        raise StatementError("there is no statement yet: write one")
    if previous.state != StatementState.SIGNED:
        raise StatementConflict(f"version {previous.version} is not signed yet: change it instead")
    statement = Statement(
        incident_id=previous.incident_id,
        call_id=previous.call_id,
        version=previous.version + 1,
        witness_name=previous.witness_name,
        witness_age=previous.witness_age,
        witness_occupation=previous.witness_occupation,
        account=previous.account,
        declaration=previous.declaration,
        officer_id=officer.id or 0,
    )
    session.add(statement)
    session.flush()
    _record(session, actor, "new_version", statement, replaces=previous.version)
    return statement


def send(session: Session, actor: Actor, incident: Incident, call: Call) -> Statement:
    """Put the latest version on the caller's phone to read and sign."""
    statement = latest(session, incident)
    if statement is None:
        raise StatementError("write the statement first")
    if statement.state == StatementState.SIGNED:
        raise StatementConflict(f"version {statement.version} is already signed")
    if not statement.witness_name or not statement.account:
        raise StatementError("the statement needs the witness's name and their account")
    invite = session.get(Invite, call.invite_id)
    # The caller reads it, and its declaration, in their language: the catalogue holds
    # the default declaration's translation (a force's own wording goes as written).
    statement.language = invite.language if invite is not None else i18n.SOURCE
    statement.declaration = i18n.gettext(statement.language, statement.declaration)
    statement.state = StatementState.SENT.value
    statement.sent_at = utcnow()
    statement.call_id = call.id
    statement.change_request = ""
    session.add(statement)
    _record(session, actor, "sent", statement, call=call.public_id, language=statement.language)
    return statement


def _on_link(call: Call) -> SelectOfScalar[int] | SelectOfScalar[None]:
    """The calls made on this call's link: a caller who ended and rejoined (a new call on
    the same invite) still reads and signs what the officer sent during the first."""
    return select(Call.id).where(Call.invite_id == call.invite_id)


def for_caller(session: Session, call: Call) -> Statement | None:
    """The statement waiting on this call's caller, or the one they signed last."""
    return session.exec(
        select(Statement)
        .where(col(Statement.call_id).in_(_on_link(call)))
        .where(col(Statement.state).in_([StatementState.SENT, StatementState.SIGNED]))
        .order_by(col(Statement.version).desc())
        .limit(1)
    ).first()


def _waiting(session: Session, call: Call, statement_id: int) -> Statement:
    statement = session.get(Statement, statement_id)
    on_link = session.exec(_on_link(call)).all()
    if statement is None or statement.call_id not in on_link:
        raise StatementError(N_("there is no such statement for this call"))
    if statement.state == StatementState.SIGNED:
        raise StatementConflict(N_("this statement is already signed"))
    if statement.state != StatementState.SENT:
        raise StatementConflict(N_("the officer is changing this statement: wait for the new text"))
    return statement


def request_changes(
    session: Session, call: Call, statement_id: int, text: str, source: str
) -> Statement:
    statement = _waiting(session, call, statement_id)
    if not text.strip():
        raise StatementError(N_("say what should change"))
    statement.state = StatementState.CHANGES_REQUESTED.value
    statement.change_request = text.strip()[:2000]
    session.add(statement)
    _record(session, Actor("caller", source), "changes_requested", statement)
    return statement


def ink_check(png: bytes) -> tuple[int, int]:
    """The signature must be a real PNG of sensible size with something drawn on it."""
    if len(png) > MAX_SIGNATURE_BYTES:
        raise StatementError(N_("the signature image is too large"))
    inked = 0
    try:
        with Image.open(io.BytesIO(png)) as image:
            kind, (width, height) = image.format, image.size  # the header: nothing decoded yet
            sensible = max(width, height) <= MAX_SIGNATURE_SIDE and min(width, height) >= 20
            if kind == "PNG" and sensible:
                # Ink: dark (luminance under 160) where the pen drew (alpha over 128).
                lum, alpha = image.convert("LA").split()
                drawn = alpha.point(lambda a: 255 if a > 128 else 0)
                inked = sum(lum.histogram(mask=drawn)[:160])
    except Image.DecompressionBombError as exc:
        raise StatementError(N_("the signature image has an odd size")) from exc
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise StatementError(N_("the signature is not a readable image")) from exc
    if kind != "PNG":
        raise StatementError(N_("the signature must be a PNG image"))
    if not sensible:
        raise StatementError(N_("the signature image has an odd size"))
    if inked < MIN_INK_PIXELS:
        raise StatementError(N_("draw your signature in the box first"))
    return width, height


def canonical_content(statement: Statement, cad_reference: str, signature_sha256: str) -> bytes:
    """What the content hash covers, in a form anyone can rebuild (docs/statements.md).
    A typed signature has no image (``signature_sha256`` is empty) and adds
    ``"signed_by": "typed"``; a drawn one has no such key, so the hashes of statements
    signed before typing existed rebuild as they always did."""
    assert statement.signed_at is not None
    typed = {"signed_by": SignedBy.TYPED.value} if statement.signed_by == SignedBy.TYPED else {}
    return json.dumps(
        {
            **typed,
            "incident": cad_reference,
            "version": statement.version,
            "witness_name": statement.witness_name,
            "witness_age": statement.witness_age,
            "witness_occupation": statement.witness_occupation,
            "account": statement.account,
            "declaration": statement.declaration,
            "signed_name": statement.signed_name,
            "signed_at": statement.signed_at.isoformat(),
            "signature_sha256": signature_sha256,
        },
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    ).encode()


def statement_dir(data_dir: Path, incident: Incident) -> Path:
    """Named by the incident's id, like its uploads' folder: a CAD reference is the CAD's
    text, and two of them (``A/1`` and ``A_1``) could come to the same folder name.
    Statements kept before this keep their paths (each row stores its own)."""
    return data_dir / "incidents" / str(incident.id) / "statements"


def sign(
    session: Session,
    settings: Settings,
    keyring: Keyring,
    call: Call,
    statement_id: int,
    signed_name: str,
    signature_png: bytes | None,
    source: str,
    officer_name: str = "",
    typed_confirmed: bool = False,
) -> Statement:
    """Sign, render the PDF, keep its files sealed with their hashes (docs/evidence.md),
    and tell the CAD (``statement.signed``); refused if signed already.

    ``signature_png`` is the drawn signature; ``None`` signs by the typed name alone,
    which needs ``typed_confirmed`` (the caller ticked :data:`TYPED_CONFIRMATION`): a
    caller who cannot draw is not refused, and nobody signs by typing without saying so.
    """
    from appliance.services.record.statement_pdf import render  # fpdf2 is only loaded to sign

    statement = _waiting(session, call, statement_id)
    name = " ".join(signed_name.split())[:120]
    if not name:
        raise StatementError(N_("type your full name as well as signing"))
    if signature_png is None:
        if not typed_confirmed:
            raise StatementError(N_("tick the box to confirm your typed name is your signature"))
    else:
        ink_check(signature_png)
    incident = session.get(Incident, statement.incident_id)
    assert incident is not None
    officer = session.get(User, statement.officer_id)
    statement.signed_name = name
    statement.signed_by = (SignedBy.TYPED if signature_png is None else SignedBy.DRAWN).value
    statement.signed_at = signed_at = utcnow()
    signature_sha256 = "" if signature_png is None else hashlib.sha256(signature_png).hexdigest()
    content = canonical_content(statement, incident.cad_reference, signature_sha256)
    statement.content_sha256 = hashlib.sha256(content).hexdigest()
    pdf = render(
        statement,
        incident,
        signature_png,
        officer_name or (officer.display_name if officer else ""),
        TYPED_CONFIRMATION,
    )
    folder = statement_dir(keyring.data_dir, incident)
    signature_path = folder / f"statement-v{statement.version}-signature.png"
    pdf_path = folder / f"statement-v{statement.version}.pdf"
    files = [(pdf_path, pdf)]
    if signature_png is not None:
        files.insert(0, (signature_path, signature_png))
    written: list[Path] = []
    try:
        for path, data in files:
            sealing.seal_bytes(session, keyring, path, data, FileKind.STATEMENT, incident.id or 0)
            written.append(path)
    except OSError as exc:
        for path in written:
            path.unlink(missing_ok=True)
        raise StatementNotKept(
            N_("the box could not keep your signed statement just now; please try again")
        ) from exc
    statement.signature_path = str(signature_path) if signature_png is not None else ""
    statement.pdf_path = str(pdf_path)
    statement.pdf_sha256 = hashlib.sha256(pdf).hexdigest()
    statement.pdf_size_bytes = len(pdf)
    statement.state = StatementState.SIGNED.value
    session.add(statement)
    _record(
        session,
        Actor("caller", source),
        "signed",
        statement,
        language=statement.language,
        signed_by=statement.signed_by,
        content_sha256=statement.content_sha256,
        pdf_sha256=statement.pdf_sha256,
        signature_sha256=signature_sha256,
    )
    cad.queue_event(
        session,
        settings,
        "statement.signed",
        statement.incident_id,
        {
            "statement": {
                "version": statement.version,
                "signedAt": signed_at.isoformat(),
                "contentSha256": statement.content_sha256,
                "pdfSha256": statement.pdf_sha256,
            }
        },
    )
    return statement
