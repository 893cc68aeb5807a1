"""``evr backup DEST`` and ``evr restore SRC``: the database and the sealed media.

The database is snapshotted first and consistently (SQLite's online backup API;
``pg_dump --format=custom`` for PostgreSQL, Debian's from /usr/lib/postgresql/<v>/bin),
then the sealed media are copied (still sealed: a backup holds no clear evidence),
then a ``SHA256SUMS`` manifest of everything. The master and signing keys and the shred
list (``<data_dir>/keys``) are NOT in the backup: keep them apart (a backup and its key
together would be clear evidence). Restore tombstones every file whose wrapped key is on
the restoring box's shred list: a deletion made after the backup stays made. With
``backup_recipient`` set, the database in the backup is encrypted to the force's age
public key (``db.sqlite.age``/``db.pgdump.age``, the clear copy removed at once) and
``evr restore --identity FILE`` decrypts it into a temporary directory to load it.
Restore checks the manifest before it touches anything and refuses a box that
already has data. The PostgreSQL password reaches ``pg_dump``/``pg_restore`` in their
environment (``PGPASSWORD``), never on a command line another user could read.

``evr backup --keep N DIR`` is what the box's daily timer runs: a dated backup in DIR,
then only the newest N backups left there. A half-made one never counts, and nothing
in DIR that ``evr backup`` did not make is touched.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import sqlite3
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyrage
from pyrage import x25519
from sqlalchemy import inspect
from sqlalchemy.engine import make_url
from sqlmodel import select

from appliance import migrate
from appliance.config import Settings
from appliance.db import Database
from appliance.models import utcnow

SUMS = "SHA256SUMS"
INFO = "backup.json"
SQLITE_FILE = "db.sqlite"
PG_FILE = "db.pgdump"
AGE = ".age"
MEDIA = "media"
NOT_MEDIA = {"evr.db", "evr.db-wal", "evr.db-shm", "evr.db-journal", "evr-serve.lock"}
NOT_MEDIA_DIRS = {"keys", "tls"}
KEPT_NAME = re.compile(r"evr-\d{8}T\d{6}Z(-\d+)?")


class BackupError(Exception):
    """The backup or restore did not happen; the message says why and what is untouched."""


@dataclass(frozen=True)
class Made:
    files: int
    database: str


def pg_bin(tool: str) -> str:
    """Debian's newest ``pg_dump``/``pg_restore`` (the server's major version or newer)."""
    found = sorted(
        Path("/usr/lib/postgresql").glob(f"*/bin/{tool}"),
        key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0,
    )
    if found:
        return str(found[-1])
    on_path = shutil.which(tool)
    if on_path is None:
        raise BackupError(f"{tool} not found: install Debian's postgresql-client")
    return on_path


def _libpq(url_text: str) -> tuple[str, dict[str, str]]:
    url = make_url(url_text)
    parts = {
        "dbname": url.database or "",
        "user": url.username or "",
        "host": str(url.query.get("host") or url.host or ""),
        "port": str(url.query.get("port") or url.port or ""),
    }
    conninfo = " ".join(f"{k}={v}" for k, v in parts.items() if v)
    env = {**os.environ}
    if url.password:
        env["PGPASSWORD"] = url.password
    return conninfo, env


def _media_files(data_dir: Path) -> list[Path]:
    found = []
    for path in sorted(data_dir.rglob("*")):
        relative = path.relative_to(data_dir)
        if not path.is_file() or relative.parts[0] in NOT_MEDIA_DIRS:
            continue
        if len(relative.parts) == 1 and relative.name in NOT_MEDIA:
            continue
        if any(part.startswith(".") for part in relative.parts):
            # A write in progress (.partial), or the chunks of a caller's file still
            # arriving in parts (.session-*): not evidence yet.
            continue
        found.append(path)
    return found


def _sqlite_copy(source_path: Path, target_path: Path) -> None:
    """A consistent copy with SQLite's online backup API (the source may be in use)."""
    source = sqlite3.connect(source_path)
    target = sqlite3.connect(target_path)
    try:
        source.backup(target)
    finally:
        target.close()
        source.close()


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as source:
        while chunk := source.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def make(settings: Settings, db: Database, dest: Path, master_key_id: str) -> Made:
    if dest.exists() and any(dest.iterdir()):
        raise BackupError(f"{dest} is not empty; a backup goes into a new directory")
    dest.mkdir(parents=True, exist_ok=True, mode=0o700)
    url = settings.effective_database_url
    engine = db.engine.dialect.name
    if engine == "sqlite":
        _sqlite_copy(Path(make_url(url).database or ""), dest / SQLITE_FILE)
    else:
        conninfo, env = _libpq(url)
        result = subprocess.run(
            [
                pg_bin("pg_dump"),
                "--format=custom",
                "--no-owner",
                "--file",
                str(dest / PG_FILE),
                "--dbname",
                conninfo,
            ],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise BackupError(f"pg_dump failed: {result.stderr.strip()}")
    if settings.backup_recipient:
        clear = dest / (SQLITE_FILE if engine == "sqlite" else PG_FILE)
        recipient = x25519.Recipient.from_str(settings.backup_recipient)
        pyrage.encrypt_file(str(clear), str(clear) + AGE, [recipient])
        clear.unlink()
    media = _media_files(settings.data_dir)
    for path in media:
        target_path = dest / MEDIA / path.relative_to(settings.data_dir)
        target_path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, target_path)
    (dest / INFO).write_text(
        json.dumps(
            {
                "made_at": utcnow().isoformat(),
                "database": engine,
                "revision": migrate.current(db.engine),
                "master_key_id": master_key_id,
                "data_dir": str(settings.data_dir.resolve()),
                "media_files": len(media),
                "encrypted_to": settings.backup_recipient,
            },
            indent=2,
        )
    )
    lines = [
        f"{_sha256(path)}  {path.relative_to(dest)}\n"
        for path in sorted(dest.rglob("*"))
        if path.is_file() and path.name != SUMS
    ]
    (dest / SUMS).write_text("".join(lines))
    return Made(len(media), engine)


@dataclass(frozen=True)
class Kept:
    path: Path
    made: Made
    removed: list[Path]


def make_kept(
    settings: Settings, db: Database, parent: Path, master_key_id: str, keep: int
) -> Kept:
    """A new ``evr-<UTC time>`` backup in ``parent``, then the oldest removed so that
    ``keep`` remain. It is made under a hidden name and renamed when whole, so a failed
    run leaves nothing that looks like a backup and removes none."""
    if keep < 1:
        raise BackupError("--keep must be 1 or more")
    parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    stamp = utcnow().strftime("%Y%m%dT%H%M%SZ")
    name = f"evr-{stamp}"
    suffix = 0
    while (parent / name).exists():
        suffix += 1
        name = f"evr-{stamp}-{suffix}"
    partial = parent / f".partial-{name}"
    try:
        made = make(settings, db, partial, master_key_id)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    final = parent / name
    partial.rename(final)
    kept = sorted(_kept_backups(parent), key=lambda item: item[0])
    removed = [path for _, path in kept[: max(0, len(kept) - keep)]]
    for path in removed:
        shutil.rmtree(path)
    return Kept(final, made, removed)


def _kept_backups(parent: Path) -> list[tuple[str, Path]]:
    """(made_at, path) of each backup ``make_kept`` left in ``parent``."""
    found = []
    for path in parent.iterdir():
        if not (path.is_dir() and KEPT_NAME.fullmatch(path.name)):
            continue
        try:
            made_at = str(json.loads((path / INFO).read_text())["made_at"])
        except (OSError, ValueError, KeyError):
            continue
        if (path / SUMS).is_file():
            found.append((made_at, path))
    return found


def check(src: Path) -> list[str]:
    """What is wrong with a backup directory (nothing when it is whole)."""
    sums = src / SUMS
    if not sums.is_file():
        return [f"{sums} missing: not a backup made by `evr backup`"]
    problems = []
    for line in sums.read_text().splitlines():
        digest, _, name = line.partition("  ")
        path = src / name
        if not path.is_file():
            problems.append(f"{name}: missing")
        elif _sha256(path) != digest:
            problems.append(f"{name}: SHA-256 does not match {SUMS}")
    return problems


def _identities(path: Path | None) -> list[x25519.Identity]:
    if path is None:
        raise BackupError(
            "the backup's database is encrypted to the force's key: give --identity FILE"
        )
    try:
        lines = path.read_text().split()
    except OSError as exc:
        raise BackupError(f"cannot read the identity file: {exc}") from None
    keys = [line for line in lines if line.startswith("AGE-SECRET-KEY-")]
    try:
        return [x25519.Identity.from_str(key) for key in keys]
    except pyrage.IdentityError:
        raise BackupError(f"{path} holds no valid age secret key") from None


def restore(settings: Settings, src: Path, identity: Path | None = None) -> dict[str, object]:
    """Bring a backup back onto a fresh box (empty data dir and database)."""
    problems = check(src)
    if problems:
        raise BackupError("the backup does not verify, nothing restored: " + "; ".join(problems))
    info: dict[str, Any] = json.loads((src / INFO).read_text())
    with tempfile.TemporaryDirectory(prefix="evr-restore-") as clear_dir:
        if info.get("encrypted_to"):
            name = SQLITE_FILE if info["database"] == "sqlite" else PG_FILE
            try:
                pyrage.decrypt_file(
                    str(src / (name + AGE)), str(Path(clear_dir) / name), _identities(identity)
                )
            except pyrage.DecryptError:
                raise BackupError(
                    "the identity does not decrypt this backup's database, nothing restored"
                ) from None
            database_dir = Path(clear_dir)
        else:
            database_dir = src
        _restore(settings, src, database_dir, info)
    return info


def _restore(settings: Settings, src: Path, database_dir: Path, info: dict[str, Any]) -> None:
    db = Database(settings.effective_database_url)
    try:
        engine = db.engine.dialect.name
        if engine != info["database"]:
            raise BackupError(
                f"the backup is of a {info['database']} database; this box uses {engine}"
            )
        if inspect(db.engine).get_table_names():
            raise BackupError("the database is not empty: restore goes onto a fresh box only")
        media = _media_files(settings.data_dir)
        if media:
            raise BackupError(f"the data dir {settings.data_dir} already holds media files")
        settings.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        if engine == "sqlite":
            db.dispose()
            target = Path(make_url(settings.effective_database_url).database or "")
            for leftover in (target, target.with_name(target.name + "-wal")):
                leftover.unlink(missing_ok=True)
            _sqlite_copy(database_dir / SQLITE_FILE, target)
        else:
            conninfo, env = _libpq(settings.effective_database_url)
            result = subprocess.run(
                [
                    pg_bin("pg_restore"),
                    "--no-owner",
                    "--exit-on-error",
                    "--dbname",
                    conninfo,
                    str(database_dir / PG_FILE),
                ],
                env=env,
                capture_output=True,
                text=True,
                check=False,
            )
            if result.returncode != 0:
                raise BackupError(f"pg_restore failed: {result.stderr.strip()}")
        for path in sorted((src / MEDIA).rglob("*")) if (src / MEDIA).exists() else []:
            if path.is_file():
                target_path = settings.data_dir / path.relative_to(src / MEDIA)
                target_path.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(path, target_path)
        _repoint(db, Path(info["data_dir"]), settings.data_dir.resolve())
        info["reshredded"] = reshred(db, settings)
    finally:
        db.dispose()


def reshred(db: Database, settings: Settings) -> int:
    """Deletions made after the backup: every file whose wrapped key is on this box's
    shred list becomes a tombstone again (key gone, media removed). Returns how many."""
    from appliance.models import EvidenceFile, FileStatus
    from appliance.services.evidence import master_key

    gone = master_key.shredded(master_key.shred_list_path(settings))
    if not gone:
        return 0
    count = 0
    with db.session() as session:
        for file in session.exec(select(EvidenceFile)).all():
            if file.wrapped_key and master_key.fingerprint(file.wrapped_key) in gone:
                file.wrapped_key = None
                file.status = FileStatus.DELETED.value
                file.deleted_at = file.deleted_at or utcnow()
                file.deleted_reason = "shredded after this backup"
                session.add(file)
                (settings.data_dir / file.path).unlink(missing_ok=True)
                count += 1
    return count


def _repoint(db: Database, old: Path, new: Path) -> None:
    """Recording, snapshot and upload rows name absolute paths: move them to this box's
    data dir (evidence files' own paths are relative and need nothing)."""
    if old == new:
        return
    from appliance.models import Recording, Snapshot, UploadedItem

    with db.session() as session:
        rows: list[Recording | Snapshot | UploadedItem] = [
            *session.exec(select(Recording)).all(),
            *session.exec(select(Snapshot)).all(),
            *session.exec(select(UploadedItem)).all(),
        ]
        for row in rows:
            path = Path(row.path)
            if path.is_relative_to(old):
                row.path = str(new / path.relative_to(old))
                session.add(row)
