"""``evr evidence verify``: every kept file against its hash, and the audit chain.

Each problem names the file (its id, kind, exhibit reference and path) and what is
wrong: missing, altered (a chunk fails its check), cut short, or a hash that does not
match the one recorded when it was written (or the one its recording, snapshot or
upload row carries).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from sqlmodel import Session, col, select

from appliance.models import EvidenceFile, FileStatus, Recording, Snapshot, UploadedItem
from appliance.services import audit
from appliance.services.audit import VerifyResult
from appliance.services.evidence import sealing
from appliance.services.evidence.master_key import Keyring, UnwrapError
from media.sealed import SealedError


@dataclass(frozen=True)
class Problem:
    file: EvidenceFile
    reason: str

    def __str__(self) -> str:
        exhibit = f" exhibit {self.file.exhibit_ref}" if self.file.exhibit_ref else ""
        return f"{self.file.kind} #{self.file.id}{exhibit} ({self.file.path}): {self.reason}"


@dataclass(frozen=True)
class Report:
    checked: int
    problems: list[Problem]
    chain: VerifyResult

    @property
    def ok(self) -> bool:
        return not self.problems and self.chain.ok


def _row_hashes(session: Session, keyring: Keyring) -> dict[str, str]:
    """What each recording, snapshot and upload row says its file's hash is, by path."""
    found: dict[str, str] = {}
    rows: list[Recording | Snapshot | UploadedItem] = [
        *session.exec(select(Recording)).all(),
        *session.exec(select(Snapshot)).all(),
        *session.exec(select(UploadedItem)).all(),
    ]
    for row in rows:
        if row.sha256:
            try:
                found[sealing.relative(keyring, Path(row.path))] = row.sha256
            except ValueError:
                continue  # a path outside the data dir: not one of ours
    return found


def check_file(keyring: Keyring, file: EvidenceFile) -> str | None:
    """Why this file cannot be trusted, or None."""
    path = sealing.absolute(keyring, file)
    if not path.is_file():
        return "the file is missing"
    try:
        with sealing.reader(keyring, file) as opened:
            digest = opened.sha256()
    except (SealedError, UnwrapError) as exc:
        return str(exc)
    if digest != file.sha256:
        return f"SHA-256 {digest} does not match the {file.sha256} recorded when written"
    return None


def files_to_check(session: Session) -> Iterator[EvidenceFile]:
    yield from session.exec(
        select(EvidenceFile)
        .where(
            col(EvidenceFile.status).in_([FileStatus.COMPLETE.value, FileStatus.INCOMPLETE.value])
        )
        .order_by(col(EvidenceFile.id))
    ).all()


def verify(session: Session, keyring: Keyring) -> Report:
    rows = _row_hashes(session, keyring)
    problems: list[Problem] = []
    checked = 0
    for file in files_to_check(session):
        checked += 1
        reason = check_file(keyring, file)
        if reason is None and file.path in rows and rows[file.path] != file.sha256:
            reason = f"its {file.kind} row records SHA-256 {rows[file.path]}, not {file.sha256}"
        if reason is not None:
            problems.append(Problem(file, reason))
    return Report(checked, problems, audit.verify(session))
