"""An incident's export bundle: a zip a receiving evidence system can open and check.

Inside: the media decrypted into their own standard containers (WebM or Matroska
recordings, JPEG snapshots, uploads as sent, statement PDFs if any), the chat
transcript, the caller's location track (``locations.csv``: each position with its
National Grid reference), call and incident metadata as JSON, an audit extract, and ``SHA256SUMS``
(``sha256sum -c`` format) signed with the box's Ed25519 key (``SHA256SUMS.sig``,
base64). Plaintext is streamed into the zip and never written under the data dir.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import json
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from sqlmodel import Session, col, select

from appliance import grid
from appliance.config import Settings
from appliance.models import (
    AuditEvent,
    Call,
    ChatMessage,
    EvidenceFile,
    FileKind,
    Incident,
    LocationFix,
    SharedLocation,
)
from appliance.services import audit
from appliance.services.audit import Actor
from appliance.services.evidence import custody, sealing, signing
from appliance.services.evidence.master_key import Keyring

SUMS = "SHA256SUMS"
SIGNATURE = "SHA256SUMS.sig"
PUBLIC_KEY = "public-key.pem"
README = "README.txt"
UNSUMMED = {SUMS, SIGNATURE, PUBLIC_KEY, README}
FOLDERS = {
    FileKind.RECORDING.value: "recordings",
    FileKind.SNAPSHOT.value: "snapshots",
    FileKind.UPLOAD.value: "uploads",
    FileKind.STATEMENT.value: "statements",
}
READ_ME = """EVR export bundle for incident {ref}.

Check it:
  sha256sum -c SHA256SUMS           (every file against the manifest)
  evr export verify BUNDLE.zip      (the manifest's Ed25519 signature, and every file)
The signature is over SHA256SUMS; public-key.pem is the box's public key as shipped
in the bundle: check it against the copy the force published (docs/evidence.md).
"""


class ExportError(Exception):
    """The bundle could not be made; the message says why."""


@dataclass(frozen=True)
class Bundle:
    files: int
    sums_sha256: str


def _json(value: Any) -> bytes:
    return json.dumps(value, indent=2, sort_keys=True, default=str).encode()


def _audit_extract(
    session: Session, incident: Incident, calls: list[Call], files: list[EvidenceFile]
) -> bytes:
    wanted = {("incident", str(incident.id))}
    wanted |= {("call", c.public_id) for c in calls}
    wanted |= {("evidence_file", str(f.id)) for f in files}
    lines = []
    for event in session.exec(select(AuditEvent).order_by(col(AuditEvent.seq))).all():
        if (event.object_type, event.object_id) in wanted or event.detail.get(
            "incident"
        ) == incident.id:
            lines.append(
                json.dumps(
                    {
                        "seq": event.seq,
                        "at": event.at.isoformat(),
                        "actor": event.actor,
                        "action": event.action,
                        "object_type": event.object_type,
                        "object_id": event.object_id,
                        "detail": event.detail,
                        "hash": event.hash,
                        "prev_hash": event.prev_hash,
                    },
                    sort_keys=True,
                )
            )
    return ("\n".join(lines) + "\n").encode()


@dataclass(frozen=True)
class Contents:
    """Everything a bundle holds but the media themselves, read in one short (read-only)
    transaction: the zip is then written with no transaction open, so a slow or
    abandoned download never holds the database."""

    incident: Incident
    files: list[EvidenceFile]
    calls: list[Call]
    chat: bytes
    audit_extract: bytes
    locations: bytes = b""


def gather(session: Session, incident: Incident) -> Contents:
    files = custody.files_of(session, incident.id or 0)
    calls = list(session.exec(select(Call).where(Call.incident_id == incident.id)).all())
    chat = []
    for call in calls:
        messages = session.exec(
            select(ChatMessage).where(ChatMessage.call_id == call.id).order_by(col(ChatMessage.id))
        ).all()
        chat += [
            f"{m.sent_at.isoformat()} [{call.public_id}] {m.sender}: {m.body}" for m in messages
        ]
    return Contents(
        incident,
        files,
        calls,
        ("\n".join(chat) + "\n").encode(),
        _audit_extract(session, incident, calls, files),
        _locations(session, incident, calls),
    )


LOCATION_COLUMNS = (
    "at",
    "source",
    "call",
    "latitude",
    "longitude",
    "accuracy_m",
    "easting",
    "northing",
    "grid_reference",
)


def _locations(session: Session, incident: Incident, calls: list[Call]) -> bytes:
    """The caller's track as CSV, oldest first: each position the phone reported (WGS 84)
    and the National Grid reference kept with it (OSTN15; empty outside Great Britain)."""
    public_ids = {c.id: c.public_id for c in calls}
    rows: list[tuple[Any, ...]] = []
    for fix in session.exec(
        select(LocationFix).where(LocationFix.incident_id == incident.id)
    ).all():
        rows.append(
            (
                fix.fixed_at,
                "call",
                public_ids.get(fix.call_id, ""),
                fix.latitude,
                fix.longitude,
                fix.accuracy_m,
                fix.easting,
                fix.northing,
            )
        )
    for shared in session.exec(
        select(SharedLocation).where(SharedLocation.incident_id == incident.id)
    ).all():
        rows.append(
            (
                shared.shared_at,
                "link",
                "",
                shared.latitude,
                shared.longitude,
                shared.accuracy_m,
                shared.easting,
                shared.northing,
            )
        )
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(LOCATION_COLUMNS)
    for at, source, call, lat, lon, accuracy, easting, northing in sorted(rows, key=lambda r: r[0]):
        on_grid = easting is not None and northing is not None
        writer.writerow(
            (
                at.isoformat(),
                source,
                call,
                f"{lat:.7f}",
                f"{lon:.7f}",
                f"{accuracy:.1f}",
                f"{easting:.3f}" if on_grid else "",
                f"{northing:.3f}" if on_grid else "",
                str(grid.GridReference(easting, northing)) if on_grid else "",
            )
        )
    return out.getvalue().encode()


def write_zip(
    contents: Contents, settings: Settings, keyring: Keyring, actor: Actor, out: IO[bytes]
) -> Bundle:
    """Write the zip to ``out`` (a file or a pipe); no database session is used."""
    incident, files = contents.incident, contents.files
    sums: list[tuple[str, str]] = []
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as bundle:

        def add(name: str, data: bytes) -> None:
            bundle.writestr(name, data)
            sums.append((hashlib.sha256(data).hexdigest(), name))

        for file in files:
            name = f"{FOLDERS[file.kind]}/{file.kind}-{file.id}{Path(file.path).suffix.lower()}"
            digest = hashlib.sha256()
            try:
                with sealing.reader(keyring, file) as sealed, bundle.open(name, "w") as member:
                    for chunk in sealed:
                        digest.update(chunk)
                        member.write(chunk)
            except sealing.SealedError as exc:
                raise ExportError(f"{file.kind} #{file.id} fails its check: {exc}") from None
            if digest.hexdigest() != file.sha256:
                raise ExportError(f"{file.kind} #{file.id} does not match its recorded hash")
            sums.append((file.sha256, name))
        add("chat.txt", contents.chat)
        add("locations.csv", contents.locations)
        add(
            "incident.json",
            _json(
                {
                    "incident": incident.model_dump(exclude={"caller_phone"}),
                    "calls": [c.model_dump(exclude={"caller_device_hash"}) for c in contents.calls],
                    "files": [
                        {
                            "name": name,
                            "kind": f.kind,
                            "id": f.id,
                            "sha256": f.sha256,
                            "status": f.status,
                            "exhibit_ref": f.exhibit_ref,
                            "evidential": f.evidential,
                            "made_at": f.created_at.isoformat(),
                        }
                        for f, (_, name) in zip(files, sums, strict=False)
                    ],
                    "exported_by": actor.name,
                }
            ),
        )
        add("audit.jsonl", contents.audit_extract)
        manifest = "".join(f"{digest}  {name}\n" for digest, name in sums).encode()
        key_file = settings.effective_signing_key_file
        bundle.writestr(SUMS, manifest)
        bundle.writestr(SIGNATURE, base64.b64encode(signing.sign(key_file, manifest)) + b"\n")
        bundle.writestr(PUBLIC_KEY, signing.public_pem(key_file))
        bundle.writestr(README, READ_ME.format(ref=incident.cad_reference))
    return Bundle(len(sums), hashlib.sha256(manifest).hexdigest())


def record_export(session: Session, actor: Actor, incident: Incident, bundle: Bundle) -> None:
    """Audit a bundle written whole."""
    audit.record(
        session,
        actor,
        "evidence.exported",
        object_type="incident",
        object_id=incident.id or 0,
        detail={"files": bundle.files, "sha256sums": bundle.sums_sha256},
    )


def write_bundle(
    session: Session,
    settings: Settings,
    keyring: Keyring,
    actor: Actor,
    incident: Incident,
    out: IO[bytes],
) -> Bundle:
    """Gather, write and audit in one session (the CLI, writing to a file it owns)."""
    bundle = write_zip(gather(session, incident), settings, keyring, actor, out)
    record_export(session, actor, incident, bundle)
    return bundle


def verify_bundle(path: Path, public_key: bytes | None = None) -> list[str]:
    """Every problem with a bundle, named; empty when it holds. Without ``public_key``
    the key shipped in the bundle is used (then only integrity, not origin, is shown)."""
    problems: list[str] = []
    try:
        bundle = zipfile.ZipFile(path)
    except (OSError, zipfile.BadZipFile) as exc:
        return [f"not a readable zip: {exc}"]
    with bundle:
        names = set(bundle.namelist())
        if SUMS not in names or SIGNATURE not in names:
            return [f"no {SUMS} or {SIGNATURE} in the bundle"]
        manifest = bundle.read(SUMS)
        key = public_key or bundle.read(PUBLIC_KEY)
        try:
            signature = base64.b64decode(bundle.read(SIGNATURE), validate=False)
            good = signing.verify(key, manifest, signature)
        except ValueError as exc:
            good, problems = False, [f"the public key or signature is unreadable: {exc}"]
        if not good:
            problems.append(f"{SUMS}: the signature does not hold for this key")
        listed: set[str] = set()
        for line in manifest.decode().splitlines():
            digest, _, name = line.partition("  ")
            listed.add(name)
            if name not in names:
                problems.append(f"{name}: listed but missing")
                continue
            actual = hashlib.sha256()
            with bundle.open(name) as member:
                while chunk := member.read(1 << 20):
                    actual.update(chunk)
            if actual.hexdigest() != digest:
                problems.append(f"{name}: SHA-256 does not match {SUMS}")
        for extra in sorted(names - listed - UNSUMMED):
            problems.append(f"{extra}: in the bundle but not in {SUMS}")
    return problems
