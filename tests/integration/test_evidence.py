"""Evidence at rest: sealed, verified, played with ranges, seen only by those allowed.

Runs against the real app on HTTPS and the `evr` command, on both databases.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import select

from appliance.cli.common import hold_serve_lock
from appliance.config import Settings
from appliance.db import Database
from appliance.models import (
    AuditEvent,
    Call,
    EvidenceFile,
    FileKind,
    Incident,
    OfficerDraft,
    OutboundMessage,
    Role,
    UploadSession,
    User,
)
from appliance.services.audit import Actor
from appliance.services.calls import invites
from appliance.services.evidence import captures, master_key, sealing
from appliance.services.outbox import messages
from appliance.services.record import drafts
from media.sealed import new_data_key
from tests.support import media_files
from tests.support.cli import Ran, run_evr
from tests.support.evidence import files_containing
from tests.support.http import FormClient
from tests.support.live import LiveServer
from tests.support.staff import PASSWORD, add_incident, add_user

# Default settings for messages queued outside an app (the RVR gate reads its lists).
SMS_SETTINGS = Settings()


def _env(settings: Settings) -> dict[str, str]:
    env = {
        "EVR_DATABASE_URL": settings.effective_database_url,
        "EVR_DATA_DIR": str(settings.data_dir),
        "EVR_PORT": str(settings.port),
        "EVR_HOST": "127.0.0.1",
        "EVR_FORCE_NAME": "Wessex Police",
    }
    if settings.master_key_file is not None:
        env["EVR_MASTER_KEY_FILE"] = str(settings.master_key_file)
    return env


def evr(settings: Settings, *args: str) -> Ran:
    """An `evr` command on this box, in this process (tests/support/cli.py)."""
    return run_evr(_env(settings), *args)


def evr_serve(settings: Settings) -> subprocess.CompletedProcess[str]:
    """`evr serve` as its own process: a start that went wrong would serve, not return."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("EVR_")} | _env(settings)
    return subprocess.run(
        [sys.executable, "-m", "appliance", "serve"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def keyring_of(server: LiveServer) -> master_key.Keyring:
    with server.db.session() as session:
        return master_key.open_keyring(server.settings, session)


def seal_recording(server: LiveServer, incident: Incident, tmp_path: Path) -> tuple[int, bytes]:
    """A real VP8 WebM, sealed under the incident as its call's recording would be."""
    plain = media_files.webm(tmp_path / "source.webm", seconds=6)
    keyring = keyring_of(server)
    with server.db.session() as session:
        path = server.settings.data_dir / "calls" / f"inc{incident.id}" / "recording-1.webm"
        file = sealing.seal_bytes(
            session, keyring, path, plain, FileKind.RECORDING, incident.id or 0
        )
        return file.id or 0, plain


@pytest.fixture
def people(live_server: LiveServer) -> dict[str, Any]:
    with live_server.db.session() as session:
        owner = add_user(session, "pc1", Role.HANDLER)
        add_user(session, "pc2", Role.HANDLER)
        add_user(session, "do1", Role.EVIDENCE_OFFICER)
        add_user(session, "aud1", Role.AUDITOR)
        add_user(session, "adm1", Role.ADMIN)
        incident = add_incident(session, owner, "CAD/EV/1")
        return {"owner": owner, "incident": incident}


async def signed_in(server: LiveServer, username: str) -> FormClient:
    client = FormClient(server.base_url)
    await client.sign_in(username, PASSWORD)
    await client.get("/")  # the session's CSRF token
    return client


async def fetch(client: FormClient, path: str, **headers: str) -> tuple[int, dict, bytes]:
    async with client.session.get(client.base_url + path, headers=headers) as response:
        return response.status, dict(response.headers), await response.read()


def actions(db: Database) -> list[tuple[str, str, dict]]:
    with db.session() as session:
        return [(e.action, e.actor, e.detail) for e in session.exec(select(AuditEvent))]


def test_a_snapshot_is_never_on_disk_in_clear(db: Database, tmp_path: Path) -> None:
    """A real JPEG kept as a call's snapshot: no file under the data dir holds its bytes."""
    keyring = master_key.Keyring(os.urandom(32), tmp_path)
    jpeg = media_files.jpeg(64, 48)
    with db.session() as session:
        user = add_user(session, "pc1", Role.HANDLER)
        incident = add_incident(session, user, "CAD/EV/2")
        invite, _, _ = invites.create_invite(
            session, Actor("pc1"), incident, user, __import__("datetime").timedelta(hours=1)
        )
        call = session.exec(select(Call).where(Call.invite_id == invite.id)).one()
        snapshot = captures.store_snapshot(session, keyring, call, user, jpeg, "")
        file = sealing.file_at(session, keyring, snapshot.path)
        assert file is not None and sealing.open_bytes(keyring, file) == jpeg
        assert file.sha256 == snapshot.sha256 == hashlib.sha256(jpeg).hexdigest()
    assert Path(snapshot.path).is_file()
    for pattern in (jpeg, jpeg[:32], jpeg[len(jpeg) // 2 :][:32]):
        assert files_containing(tmp_path, pattern) == []


async def test_playback_with_ranges_and_a_flipped_byte(
    live_server: LiveServer, people: dict[str, Any], tmp_path: Path
) -> None:
    file_id, plain = seal_recording(live_server, people["incident"], tmp_path)
    officer = await signed_in(live_server, "do1")
    try:
        status, headers, body = await fetch(officer, f"/evidence/{file_id}")
        assert status == 200 and body == plain and headers["Content-Type"] == "video/webm"
        assert headers["Accept-Ranges"] == "bytes"
        status, headers, body = await fetch(
            officer, f"/evidence/{file_id}", Range="bytes=1000-1999"
        )
        assert status == 206 and body == plain[1000:2000]
        assert headers["Content-Range"] == f"bytes 1000-1999/{len(plain)}"
        status, headers, body = await fetch(officer, f"/evidence/{file_id}", Range="bytes=-10")
        assert status == 206 and body == plain[-10:]
        status, headers, _ = await fetch(
            officer, f"/evidence/{file_id}", Range=f"bytes={len(plain)}-"
        )
        assert status == 416 and headers["Content-Range"] == f"bytes */{len(plain)}"

        result = evr(live_server.settings, "evidence", "verify")
        assert result.returncode == 0, result.stderr
        assert "1 of 1 evidence files verified" in result.stdout

        # One byte flipped in the middle of the stored file.
        keyring = keyring_of(live_server)
        with live_server.db.session() as session:
            file = session.get(EvidenceFile, file_id)
            stored = sealing.absolute(keyring, file)
        raw = bytearray(stored.read_bytes())
        raw[len(raw) // 2] ^= 0x01
        stored.write_bytes(raw)

        status, _, body = await fetch(officer, f"/evidence/{file_id}")
        assert status == 500 and b"fails its integrity check" in body
        result = evr(live_server.settings, "evidence", "verify")
        assert result.returncode == 1
        assert (
            f"FAILED recording #{file_id}" in result.stderr and "fails its check" in result.stderr
        )
        assert "0 of 1 evidence files verified" in result.stdout
        assert "audit chain OK" in result.stdout
    finally:
        await officer.close()
    played = [a for a, actor, d in actions(live_server.db) if a == "evidence.played"]
    assert played, "the playback was audited"


async def test_who_may_see_evidence_and_refusals_are_audited(
    live_server: LiveServer, people: dict[str, Any], tmp_path: Path
) -> None:
    file_id, plain = seal_recording(live_server, people["incident"], tmp_path)
    incident_id = people["incident"].id
    owner = await signed_in(live_server, "pc1")
    other = await signed_in(live_server, "pc2")
    auditor = await signed_in(live_server, "aud1")
    admin = await signed_in(live_server, "adm1")
    try:
        response, body = await owner.get(f"/incidents/{incident_id}/evidence")
        assert response.status == 200 and f'src="/evidence/{file_id}"' in body
        assert (await fetch(owner, f"/evidence/{file_id}"))[2] == plain
        response, _ = await other.get(f"/incidents/{incident_id}/evidence")
        assert response.status == 403
        status, _, body = await fetch(other, f"/evidence/{file_id}")
        assert status == 403 and plain[:100] not in body
        for client in (auditor, admin):
            status, _, body = await fetch(client, f"/evidence/{file_id}")
            assert status == 403 and plain[:100] not in body
        response, _ = await owner.post(f"/evidence/{file_id}/mark", {"evidential": "yes"})
        assert response.status == 403, "a handler does not mark evidence"
    finally:
        for client in (owner, other, auditor, admin):
            await client.close()
    refused = [(actor, d) for a, actor, d in actions(live_server.db) if a == "evidence.refused"]
    assert ("pc2", {}) in refused and len(refused) == 2


async def test_an_evidence_officer_marks_an_exhibit(
    live_server: LiveServer, people: dict[str, Any], tmp_path: Path
) -> None:
    file_id, _ = seal_recording(live_server, people["incident"], tmp_path)
    officer = await signed_in(live_server, "do1")
    try:
        response, _ = await officer.post(
            f"/evidence/{file_id}/mark", {"evidential": "yes", "exhibit_ref": "JS/1"}
        )
        assert response.status == 303 and response.headers["Location"].endswith(
            "?error=review_missing"
        )
        response, _ = await officer.post(
            f"/evidence/{file_id}/mark",
            {"evidential": "yes", "exhibit_ref": "JS/1", "review_at": "2099-01-01"},
        )
        assert response.status == 303
        response, body = await officer.get(f"/incidents/{people['incident'].id}/evidence")
        assert "exhibit JS/1" in body
        # The officer's way in: their home leads to an evidence list searched by reference.
        response, body = await officer.get("/")
        assert 'href="/evidence"' in body
        reference = people["incident"].cad_reference
        response, body = await officer.get("/evidence", params={"q": reference[-4:]})
        assert response.status == 200
        assert f'href="/incidents/{people["incident"].id}/evidence">{reference}<' in body
        response, body = await officer.get("/evidence", params={"q": "NO-SUCH-REF"})
        assert "No incident with evidence matches" in body and reference not in body
    finally:
        await officer.close()
    marks = [d for a, _, d in actions(live_server.db) if a == "evidence.marked"]
    assert marks and marks[-1]["after"]["exhibit_ref"] == "JS/1"


@pytest.mark.sqlite_only(
    reason="the key is checked against the sealed files' key id, the same query on both "
    "engines; three `evr serve` processes are 15 s a run"
)
def test_start_up_refuses_a_missing_or_wrong_master_key(settings: Settings) -> None:
    """Files sealed, then the key file removed, then replaced by another key: each
    start stops with a message naming the setting, exit 2, before anything is written."""
    db = Database(settings.effective_database_url)
    from appliance import migrate

    migrate.upgrade(db.engine)
    with db.session() as session:
        keyring = master_key.open_keyring(settings, session)
        user = add_user(session, "pc1", Role.HANDLER)
        incident = add_incident(session, user, "CAD/EV/3")
        sealing.seal_bytes(
            session,
            keyring,
            settings.data_dir / "x.jpg",
            b"evidence",
            FileKind.SNAPSHOT,
            incident.id or 0,
        )
    db.dispose()
    key_file = settings.effective_master_key_file
    original = key_file.read_bytes()

    key_file.unlink()
    result = evr_serve(settings)
    assert result.returncode == 2
    assert "master_key_file" in result.stderr and "does not exist" in result.stderr
    assert not key_file.exists(), "no new key was made over sealed data"

    key_file.write_bytes(os.urandom(32))
    result = evr_serve(settings)
    assert result.returncode == 2 and "is not the key that sealed 1 evidence files" in result.stderr

    key_file.write_bytes(b"short")
    result = evr_serve(settings)
    assert result.returncode == 2 and "holds 5 bytes" in result.stderr

    key_file.write_bytes(original)
    result = evr(settings, "evidence", "verify")
    assert result.returncode == 0, result.stderr


def test_rotation_rewraps_keys_and_leaves_media_alone(settings: Settings) -> None:
    """A sealed snapshot and a caller's file still arriving in parts: refused while the
    data dir is served (the server holds the old key in memory); then every data key is
    re-wrapped, the upload's included, and the media bytes are untouched."""
    from appliance import migrate

    db = Database(settings.effective_database_url)
    migrate.upgrade(db.engine)
    data_key = new_data_key()
    with db.session() as session:
        keyring = master_key.open_keyring(settings, session)
        user: User = add_user(session, "pc1", Role.HANDLER)
        incident = add_incident(session, user, "CAD/EV/4")
        path = settings.data_dir / "y.jpg"
        sealing.seal_bytes(session, keyring, path, b"evidence", FileKind.SNAPSHOT, incident.id)
        invite, _, _ = invites.create_invite(
            session, Actor("pc1"), incident, user, timedelta(hours=1), kind=invites.UPLOAD
        )
        session.add(
            UploadSession(
                public_id="0" * 32,
                incident_id=incident.id or 0,
                invite_id=invite.id or 0,
                device_hash="d" * 64,
                original_name="clip.mp4",
                declared_type="video/mp4",
                total_bytes=2048,
                sha256="ab" * 32,
                confirmed_bytes=1024,
                wrapped_key=keyring.wrap(data_key),
            )
        )
    before = path.read_bytes()
    db.dispose()

    serving = hold_serve_lock(settings)
    assert serving is not None
    with serving:
        refused = evr(settings, "keys", "rotate")
    assert refused.returncode == 2 and "stop it" in refused.stderr
    assert settings.effective_master_key_file.read_bytes() == keyring.master

    result = evr(settings, "keys", "rotate")
    assert result.returncode == 0, result.stderr
    assert f"{keyring.key_id} -> " in result.stdout
    assert path.read_bytes() == before
    assert settings.effective_master_key_file.read_bytes() != keyring.master
    result = evr(settings, "evidence", "verify")
    assert result.returncode == 0, result.stderr
    db = Database(settings.effective_database_url)
    assert "keys.rotated" in [a for a, _, _ in actions(db)]
    with db.session() as session:
        rotated = master_key.open_keyring(settings, session)
        upload = session.exec(select(UploadSession)).one()
        assert rotated.unwrap(upload.wrapped_key) == data_key
    db.dispose()


def _age(db: Database, file_id: int, days: int) -> None:
    with db.session() as session:
        file = session.get(EvidenceFile, file_id)
        file.created_at = file.created_at - __import__("datetime").timedelta(days=days)
        session.add(file)


def test_purge_dry_run_lists_exactly_what_the_purge_deletes(settings: Settings) -> None:
    """Old, new, legal hold, evidential-past-review: the dry run's list is the real
    purge's list; held and evidential items survive; tombstones keep their hash."""
    from datetime import timedelta

    from appliance import migrate
    from appliance.models import utcnow

    db = Database(settings.effective_database_url)
    migrate.upgrade(db.engine)
    ids: dict[str, int] = {}
    with db.session() as session:
        keyring = master_key.open_keyring(settings, session)
        user = add_user(session, "pc1", Role.HANDLER)
        incident = add_incident(session, user, "CAD/EV/5")
        # Closed, or retention would keep everything of it (nothing of an open case goes).
        incident.status, incident.outcome_code = "closed", "advice_given"
        incident.closed_at = utcnow() - timedelta(days=40)
        for name in ("old1", "old2", "fresh", "held", "exhibit"):
            file = sealing.seal_bytes(
                session,
                keyring,
                settings.data_dir / f"{name}.jpg",
                name.encode() * 100,
                FileKind.SNAPSHOT,
                incident.id or 0,
            )
            ids[name] = file.id or 0
    for name in ("old1", "old2", "held", "exhibit"):
        _age(db, ids[name], 31)
    with db.session() as session:
        session.get(EvidenceFile, ids["held"]).legal_hold = True
        exhibit = session.get(EvidenceFile, ids["exhibit"])
        exhibit.evidential, exhibit.exhibit_ref = True, "JS/2"
        exhibit.review_at = utcnow() - timedelta(days=1)
    db.dispose()

    dry = evr(settings, "purge", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    listed = [
        line.split(" incident")[0] for line in dry.stdout.splitlines() if line.startswith("would")
    ]
    assert listed == [
        f"would delete snapshot #{ids['old1']}",
        f"would delete snapshot #{ids['old2']}",
    ]
    assert f"review due (evidential, kept) snapshot #{ids['exhibit']}" in dry.stdout
    assert all((settings.data_dir / f"{n}.jpg").exists() for n in ids)

    # While `evr serve` holds the data dir (it purges on its own timer): the dry run
    # still answers, the real purge stops at once and deletes nothing.
    serving = hold_serve_lock(settings)
    assert serving is not None
    with serving:
        assert evr(settings, "purge", "--dry-run").stdout == dry.stdout
        refused = evr(settings, "purge")
    assert refused.returncode == 2, refused.stdout
    assert "purges by itself every 60 minutes" in refused.stderr and "stop it" in refused.stderr
    assert all((settings.data_dir / f"{n}.jpg").exists() for n in ids)

    real = evr(settings, "purge")
    assert real.returncode == 0, real.stderr
    deleted = [
        line.split(" incident")[0] for line in real.stdout.splitlines() if "deleted " in line
    ]
    assert [d.replace("deleted", "would delete") for d in deleted] == listed
    for name in ids:
        assert (settings.data_dir / f"{name}.jpg").exists() == (name not in ("old1", "old2"))
    db = Database(settings.effective_database_url)
    with db.session() as session:
        tombstone = session.get(EvidenceFile, ids["old1"])
        assert tombstone.status == "deleted" and tombstone.wrapped_key is None
        assert tombstone.sha256 == hashlib.sha256(b"old1" * 100).hexdigest()
    assert [a for a, _, _ in actions(db)].count("evidence.deleted") == 2
    db.dispose()
    again = evr(settings, "purge", "--dry-run")
    assert "0 files to delete (dry run)" in again.stdout
    verify = evr(settings, "evidence", "verify")
    assert verify.returncode == 0 and "3 of 3 evidence files verified" in verify.stdout


def _tamper_zip(source: Path, target: Path, name: str) -> None:
    import zipfile

    with zipfile.ZipFile(source) as old, zipfile.ZipFile(target, "w") as new:
        for item in old.infolist():
            data = old.read(item.filename)
            if item.filename == name:
                data = data[:-1] + bytes([data[-1] ^ 1])
            new.writestr(item, data)


async def test_an_export_bundle_verifies_and_tampering_fails(
    live_server: LiveServer, people: dict[str, Any], tmp_path: Path
) -> None:
    import zipfile

    file_id, plain = seal_recording(live_server, people["incident"], tmp_path)
    officer = await signed_in(live_server, "do1")
    try:
        status, headers, body = await fetch(officer, f"/incidents/{people['incident'].id}/export")
        assert status == 200 and headers["Content-Type"] == "application/zip"
        status, _, pem = await fetch(officer, "/evidence/public-key.pem")
        assert status == 200 and pem.startswith(b"-----BEGIN PUBLIC KEY-----")
        handler = await signed_in(live_server, "pc1")
        status, _, _ = await fetch(handler, f"/incidents/{people['incident'].id}/export")
        assert status == 403, "only an evidence officer exports"
        await handler.close()
    finally:
        await officer.close()
    bundle = tmp_path / "bundle.zip"
    bundle.write_bytes(body)
    key = tmp_path / "box.pem"
    key.write_bytes(pem)
    with zipfile.ZipFile(bundle) as opened_zip:
        names = set(opened_zip.namelist())
        assert opened_zip.read(f"recordings/recording-{file_id}.webm") == plain
    assert {"SHA256SUMS", "SHA256SUMS.sig", "chat.txt", "incident.json", "audit.jsonl"} <= names

    unpacked = tmp_path / "unpacked"
    zipfile.ZipFile(bundle).extractall(unpacked)
    check = subprocess.run(["sha256sum", "-c", "SHA256SUMS"], cwd=unpacked, capture_output=True)
    assert check.returncode == 0, check.stdout
    result = evr(live_server.settings, "export", "verify", str(bundle), "--public-key", str(key))
    assert result.returncode == 0, result.stderr

    # One bit of the recording changed inside the zip: both checks fail and name it.
    tampered = tmp_path / "tampered.zip"
    _tamper_zip(bundle, tampered, f"recordings/recording-{file_id}.webm")
    bad = tmp_path / "bad"
    zipfile.ZipFile(tampered).extractall(bad)
    check = subprocess.run(["sha256sum", "-c", "SHA256SUMS"], cwd=bad, capture_output=True)
    assert check.returncode != 0 and b"recording" in check.stdout and b"FAILED" in check.stdout
    result = evr(live_server.settings, "export", "verify", str(tampered), "--public-key", str(key))
    assert result.returncode == 1
    assert f"recordings/recording-{file_id}.webm: SHA-256 does not match" in result.stderr

    # The manifest edited to match the altered file: the signature no longer holds.
    edited = tmp_path / "edited.zip"
    _tamper_zip(bundle, edited, "SHA256SUMS")
    result = evr(live_server.settings, "export", "verify", str(edited), "--public-key", str(key))
    assert result.returncode == 1 and "signature does not hold" in result.stderr
    exported = [d for a, _, d in actions(live_server.db) if a == "evidence.exported"]
    assert exported and exported[0]["files"] >= 4
    cli_bundle = tmp_path / "cli.zip"
    result = evr(live_server.settings, "export", "bundle", "CAD/EV/1", str(cli_bundle))
    assert result.returncode == 0, result.stderr
    assert evr(live_server.settings, "export", "verify", str(cli_bundle)).returncode == 0
    again = evr(live_server.settings, "export", "bundle", "CAD/EV/1", str(cli_bundle))
    assert again.returncode == 1 and "not overwritten" in again.stderr


def test_backup_then_restore_onto_an_empty_box(
    settings: Settings, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """Incidents, sealed files and the audit chain come back the same on a fresh data
    dir (another path) and a fresh database; a tampered backup is refused whole."""
    from appliance import migrate
    from appliance.config import load_settings
    from appliance.models import Snapshot as SnapshotRow

    db = Database(settings.effective_database_url)
    migrate.upgrade(db.engine)
    with db.session() as session:
        keyring = master_key.open_keyring(settings, session)
        user = add_user(session, "pc1", Role.HANDLER)
        for n in range(3):
            incident = add_incident(session, user, f"CAD/BK/{n}")
            sealing.seal_bytes(
                session,
                keyring,
                settings.data_dir / "calls" / f"c{n}" / "snapshots" / "s.jpg",
                f"snapshot {n}".encode() * 50,
                FileKind.SNAPSHOT,
                incident.id or 0,
            )
        invite, _, _ = invites.create_invite(
            session, Actor("pc1"), incident, user, __import__("datetime").timedelta(hours=1)
        )
        call = session.exec(select(Call).where(Call.invite_id == invite.id)).one()
        snapshot = captures.store_snapshot(session, keyring, call, user, media_files.jpeg(), "")
        snapshot_id = snapshot.id

    def state(database: Database) -> tuple[list, list, int]:
        with database.session() as session:
            incidents = sorted(i.cad_reference for i in session.exec(select(Incident)))
            files = sorted((f.path, f.sha256) for f in session.exec(select(EvidenceFile)))
            chain = __import__("appliance.services.audit", fromlist=["verify"]).verify(session)
            assert chain.ok
            return incidents, files, chain.checked

    before = state(db)
    db.dispose()
    dest = tmp_path / "backup"
    made = evr(settings, "backup", str(dest))
    assert made.returncode == 0, made.stderr
    assert not list(dest.rglob("*.key")), "the master key stays out of the backup"
    check = subprocess.run(["sha256sum", "-c", "SHA256SUMS"], cwd=dest, capture_output=True)
    assert check.returncode == 0, check.stdout

    if settings.effective_database_url.startswith("sqlite"):
        fresh_url = f"sqlite:///{tmp_path / 'fresh' / 'evr.db'}"
        (tmp_path / "fresh").mkdir()
    else:
        fresh_url = request.getfixturevalue("postgres_databases").create()
    fresh = load_settings(
        data_dir=tmp_path / "fresh-var",
        database_url=fresh_url,
        master_key_file=settings.effective_master_key_file,  # the key kept apart
        port=settings.port,
    )
    tampered = tmp_path / "tampered"
    shutil.copytree(dest, tampered)
    victim = next((tampered / "media").rglob("s.jpg"))
    victim.write_bytes(victim.read_bytes()[:-1] + b"\0")
    refused = evr(fresh, "restore", str(tampered))
    assert refused.returncode == 1 and "does not verify, nothing restored" in refused.stderr
    assert "s.jpg: SHA-256 does not match" in refused.stderr

    restored = evr(fresh, "restore", str(dest))
    assert restored.returncode == 0, restored.stderr
    assert "audit chain OK" in restored.stdout
    again = Database(fresh_url)
    try:
        incidents, files, checked = state(again)
        assert (incidents, files) == before[:2] and checked >= before[2]
        with again.session() as session:
            moved = session.get(SnapshotRow, snapshot_id)
            assert Path(moved.path).is_relative_to(fresh.data_dir)
    finally:
        again.dispose()
    verify = evr(fresh, "evidence", "verify")
    assert verify.returncode == 0, verify.stderr
    assert "4 of 4 evidence files verified" in verify.stdout
    second = evr(fresh, "restore", str(dest))
    assert second.returncode == 1 and "not empty" in second.stderr


def test_the_scheduled_purge_minimises_old_closed_incidents(settings: Settings) -> None:
    """The server's purge task (one run): an incident closed long ago loses its caller's
    details; one closed recently, and one whose evidence is on legal hold, keep them."""
    from datetime import timedelta

    from appliance import migrate
    from appliance.models import utcnow
    from appliance.purger import Purger

    db = Database(settings.effective_database_url)
    migrate.upgrade(db.engine)
    with db.session() as session:
        keyring = master_key.open_keyring(settings, session)
        user = add_user(session, "pc1", Role.HANDLER)
        old, recent, held = (add_incident(session, user, f"CAD/MIN/{n}") for n in range(3))
        for incident, days in ((old, 400), (recent, 10), (held, 400)):
            incident.status, incident.closed_at = "closed", utcnow() - timedelta(days=days)
            session.add(incident)
        file = sealing.seal_bytes(
            session, keyring, settings.data_dir / "h.jpg", b"x" * 10, FileKind.SNAPSHOT, held.id
        )
        file.legal_hold = True
        ids = [old.id, recent.id, held.id]
        for incident in (old, recent):
            drafts.save(session, user, incident.id or 0, "note", {"text": "Unsent note"})
            messages.queue_sms(
                session,
                Actor("pc1"),
                settings=SMS_SETTINGS,
                to_phone="+447700900123",
                body="Your video call link",
                reference=f"min-{incident.id}",
                incident_id=incident.id,
            )
    try:
        assert Purger(settings, db, keyring).run_once() == 0  # nothing old enough to delete
        with db.session() as session:
            names = [session.get(Incident, i).caller_name for i in ids]
            phones = [session.get(Incident, i).caller_phone for i in ids]
        assert names == ["(minimised)", "Jane Marple", "Jane Marple"]
        assert phones[0] == "" and phones[1] == "+447700900123"
        assert [a for a, _, _ in actions(db)].count("incident.minimised") == 1
        with db.session() as session:
            outbox = {
                m.incident_id: (m.to_phone, m.status)
                for m in session.exec(select(OutboundMessage)).all()
            }
        assert outbox == {old.id: ("", "cancelled"), recent.id: ("+447700900123", "pending")}
        with db.session() as session:
            left = [d.incident_id for d in session.exec(select(OfficerDraft)).all()]
        assert left == [recent.id]  # an unsent draft goes with the caller's details
        with db.session() as session:
            assert audit_ok(session)
    finally:
        db.dispose()


def audit_ok(session: Any) -> bool:
    from appliance.services import audit

    return audit.verify(session).ok


@pytest.mark.sqlite_only(reason="a lock on the data dir, not the database")
def test_a_second_serve_of_one_data_dir_is_refused(settings: Settings) -> None:
    """The data dir is held by a serving process (its lock, as `evr serve` takes it): a
    second `evr serve` of it stops at once, saying so, and serves nothing."""
    serving = hold_serve_lock(settings)
    assert serving is not None
    with serving:
        second = evr(settings, "serve")
    assert second.returncode == 2
    assert f"another evr serve is serving {settings.data_dir}" in second.stderr
