"""Invites and the call state machine: links, consent, one device, expiry, revocation, recovery."""

from __future__ import annotations

import hashlib
import io
import os
from datetime import timedelta
from pathlib import Path

import av
import pytest
from sqlmodel import select

from appliance.config import Settings
from appliance.db import Database
from appliance.models import AuditEvent, Call, CallState, Incident, Invite, Role, User, utcnow
from appliance.services.audit import Actor
from appliance.services.calls import invites, life, states
from appliance.services.calls.invites import Consent, LinkProblem
from appliance.services.calls.states import CallError
from appliance.services.evidence import captures, sealing
from appliance.services.evidence.master_key import Keyring
from appliance.services.identity import accounts
from appliance.services.intake import incidents
from media.sealed import SealedWriter
from tests.support.sigkill_call import record_until_killed

HANDLER = Actor("pc1", "10.1.1.1")
DAY = timedelta(hours=24)
PHONE_A = hashlib.sha256(b"device-a").hexdigest()
PHONE_B = hashlib.sha256(b"device-b").hexdigest()


@pytest.fixture
def handler(db: Database) -> User:
    with db.session() as session:
        user, _ = accounts.create_user(session, Actor("test"), "pc1", "Pat", {Role.HANDLER})
        return user


@pytest.fixture
def incident(db: Database, handler: User) -> Incident:
    with db.session() as session:
        return incidents.create(
            session,
            HANDLER,
            handler,
            cad_reference="CAD/2026/0001",
            grade=3,
            category="Burglary",
            caller_name="Jane Marple",
            caller_phone="07700 900123",
        )


def _invite(
    db: Database, incident: Incident, handler: User, ttl: timedelta = DAY
) -> tuple[Call, str]:
    with db.session() as session:
        _, call, token = invites.create_invite(session, HANDLER, incident, handler, ttl)
        return call, token


def _actions(db: Database) -> list[str]:
    with db.session() as session:
        return [e.action for e in session.exec(select(AuditEvent).order_by(AuditEvent.seq))]


def test_a_link_has_256_random_bits_and_only_its_hash_is_kept(
    db: Database, incident: Incident, handler: User
) -> None:
    call, token = _invite(db, incident, handler)
    assert len(token) >= 43
    with db.session() as session:
        invite = session.exec(select(Invite)).one()
        assert invite.token_hash == hashlib.sha256(token.encode()).hexdigest()
        assert token not in {invite.token_hash, call.public_id}
        assert abs((invite.expires_at - utcnow()) - DAY) < timedelta(minutes=1)
    assert call.state == CallState.INVITED


def test_the_whole_happy_path_is_audited_move_by_move(
    db: Database, settings: Settings, incident: Incident, handler: User
) -> None:
    call, token = _invite(db, incident, handler)
    with db.session() as session:
        call = invites.open_link(session, token, None, "1.2.3.4")
        invites.record_consent(session, call, Consent(True, True, False), PHONE_A, "1.2.3.4")
        states.caller_waiting(session, call, "1.2.3.4")
        life.admit(session, settings, call, handler, "10.1.1.1")
        life.end(session, settings, call, HANDLER, "handler_ended")
        assert call.state == CallState.ENDED
        assert call.consent_recording and not call.consent_location
        assert call.notice_version == invites.NOTICE_VERSION
        assert call.waiting_at <= call.connected_at <= call.ended_at
    moves = [
        "invite.created",
        "invite.opened",
        "call.consent",
        "call.waiting",
        "call.connected",
        "call.ended",
    ]
    assert [a for a in _actions(db) if a in moves] == moves
    with db.session() as session:
        assert invites.open_link(session, token, PHONE_A, "1.2.3.4") is LinkProblem.FINISHED


def test_moves_the_state_machine_forbids(
    db: Database, settings: Settings, incident: Incident, handler: User
) -> None:
    call, _ = _invite(db, incident, handler)
    with db.session() as session:
        call = session.get(Call, call.id)
        with pytest.raises(CallError, match="invited call cannot become connected"):
            states.move(session, call, CallState.CONNECTED, HANDLER)
        with pytest.raises(CallError, match="the call is invited: there is nobody to admit"):
            life.admit(session, settings, call, handler, "")
        assert life.end(session, settings, call, HANDLER, "changed_mind")
        assert call.state == CallState.CANCELLED
        assert not life.end(session, settings, call, HANDLER, "changed_mind")
        with pytest.raises(CallError, match="the call is cancelled: there is nobody to admit"):
            life.admit(session, settings, call, handler, "")


@pytest.mark.parametrize("token", ["", "nonsense", "x" * 300])
def test_unknown_links_are_refused(db: Database, token: str) -> None:
    with db.session() as session:
        assert invites.open_link(session, token, None, "") is LinkProblem.UNKNOWN


def test_an_expired_link_expires_its_call(db: Database, incident: Incident, handler: User) -> None:
    call, token = _invite(db, incident, handler, ttl=timedelta(seconds=-1))
    with db.session() as session:
        assert invites.open_link(session, token, None, "") is LinkProblem.EXPIRED
    with db.session() as session:  # the expiry was kept, not rolled back
        assert session.get(Call, call.id).state == CallState.EXPIRED
    assert "call.expired" in _actions(db)


def test_a_revoked_link_is_refused(
    db: Database, settings: Settings, incident: Incident, handler: User
) -> None:
    call, token = _invite(db, incident, handler)
    with db.session() as session:
        life.revoke(session, settings, HANDLER, session.get(Call, call.id))
    with db.session() as session:
        assert invites.open_link(session, token, None, "") is LinkProblem.REVOKED
    assert {"invite.revoked", "call.cancelled"} <= set(_actions(db))


def test_a_second_device_is_refused_once_the_first_has_consented(
    db: Database, incident: Incident, handler: User
) -> None:
    _, token = _invite(db, incident, handler)
    with db.session() as session:
        call = invites.open_link(session, token, PHONE_A, "")
        invites.record_consent(session, call, Consent(True, False, False), PHONE_A, "")
    with db.session() as session:
        assert invites.open_link(session, token, PHONE_B, "") is LinkProblem.OTHER_DEVICE
    with db.session() as session:
        assert isinstance(invites.open_link(session, token, PHONE_A, ""), Call)  # first phone
    assert "call.second_device_refused" in _actions(db)


def test_consent_without_the_video_call_is_refused(
    db: Database, incident: Incident, handler: User
) -> None:
    _, token = _invite(db, incident, handler)
    with db.session() as session:
        call = invites.open_link(session, token, None, "")
        assert not invites.record_consent(session, call, Consent(False, True, True), PHONE_A, "")
        assert call.caller_device_hash is None and call.consent_at is None
    assert "call.consent_declined" in _actions(db)


def test_location_only_with_consent(db: Database, incident: Incident, handler: User) -> None:
    _, token = _invite(db, incident, handler)
    with db.session() as session:
        call = invites.open_link(session, token, None, "")
        invites.record_consent(session, call, Consent(True, False, False), PHONE_A, "")
        with pytest.raises(CallError, match="location"):
            states.record_location(session, call, 50.7, -2.4, 10)


def test_calls_live_at_a_crash_are_failed_and_partial_recordings_hashed(
    db: Database, settings: Settings, incident: Incident, handler: User, tmp_path: Path
) -> None:
    call, token = _invite(db, incident, handler)
    keyring = Keyring(os.urandom(32), tmp_path)
    partial = tmp_path / "recording-1.webm"
    written = b"not really a webm, but bytes that were written"
    with db.session() as session:
        call = invites.open_link(session, token, PHONE_A, "")
        invites.record_consent(session, call, Consent(True, True, False), PHONE_A, "")
        states.caller_waiting(session, call, "")
        life.admit(session, settings, call, handler, "")
        _, data_key = captures.recording_started(session, keyring, call, partial)
    crashed = SealedWriter(partial, data_key)
    crashed.write(written)
    crashed.flush()
    crashed.abandon()  # no final chunk, as after a SIGKILL
    with db.session() as session:
        failed = life.recover_after_crash(session, settings, keyring)
        assert [c.public_id for c in failed] == [call.public_id]
        call = session.get(Call, call.id)
        assert call.state == CallState.FAILED and call.end_reason == "appliance_restarted"
        recording = states.recordings_of(session, call)[0]
        assert recording.status == "partial"
        assert recording.sha256 == hashlib.sha256(written).hexdigest()
        file = sealing.file_at(session, keyring, partial)
        assert file is not None and file.status == "incomplete"
        assert file.sha256 == recording.sha256 and file.size_bytes == len(written)
        assert recording.size_bytes == len(written)  # of the plaintext
    assert {"recording.partial", "call.failed"} <= set(_actions(db))


@pytest.mark.sqlite_only(
    reason="a killed media process's H.264 file is under test; the recovery's database "
    "work is the test above's, which runs on both engines"
)
def test_an_h264_recording_left_by_a_killed_process_is_found_and_kept_at_restart(
    db: Database, settings: Settings, incident: Incident, handler: User, tmp_path: Path
) -> None:
    """Tried: the row names ``recording-1.webm`` (what the appliance asks for), a real
    media process with an H.264-only caller writes sealed ``recording-1.mkv`` and is
    SIGKILLed; the start-up recovery finds the ``.mkv``, repoints both rows at it, and
    hashes and measures the plaintext, which PyAV reads as Matroska with H.264."""
    call, token = _invite(db, incident, handler)
    keyring = Keyring(os.urandom(32), tmp_path)
    asked = tmp_path / "recording-1.webm"
    with db.session() as session:
        call = invites.open_link(session, token, PHONE_A, "")
        invites.record_consent(session, call, Consent(True, True, False), PHONE_A, "")
        states.caller_waiting(session, call, "")
        life.admit(session, settings, call, handler, "")
        _, data_key = captures.recording_started(session, keyring, call, asked)
    record_until_killed(asked, "--h264", "--data-key", data_key.hex(), seconds=2.0)
    written = asked.with_suffix(".mkv")
    assert written.is_file() and not asked.exists()

    with db.session() as session:
        life.recover_after_crash(session, settings, keyring)
        recording = states.recordings_of(session, session.get(Call, call.id))[0]
        file = sealing.file_at(session, keyring, written)
        assert file is not None, "the evidence row follows the file to .mkv"
        assert (recording.status, file.status) == ("partial", "incomplete")
        assert recording.path == str(written)
        plain = sealing.open_bytes(keyring, file)
    assert recording.sha256 == file.sha256 == hashlib.sha256(plain).hexdigest()
    assert recording.size_bytes == file.size_bytes == len(plain)
    assert recording.duration_s is not None and recording.duration_s >= 0.5
    with av.open(io.BytesIO(plain)) as container:
        assert "matroska" in container.format.name
        assert [s.codec_context.name for s in container.streams.video] == ["h264"]
        assert sum(1 for _ in container.decode(video=0)) >= 8


@pytest.mark.parametrize(
    ("raw", "e164"),
    [
        ("07700 900123", "+447700900123"),
        ("+44 7700 900123", "+447700900123"),
        ("0044 (0)7700-900123", "+447700900123"),
        ("+44 (0)7700 900123", "+447700900123"),
        ("+44(0)20 7946 0958", "+442079460958"),
        ("+33 6 12 34 56 78", "+33612345678"),
    ],
)
def test_phone_numbers_are_stored_in_e164(raw: str, e164: str) -> None:
    assert incidents.normalise_phone(raw) == e164


@pytest.mark.parametrize(
    ("e164", "shown"),
    [
        ("+447700900123", "07700 900123"),
        ("+442079460958", "020 7946 0958"),
        ("+441134960000", "0113 496 0000"),
        ("+443001234567", "0300 123 4567"),
        ("+441632960001", "01632 960001"),
        ("+33612345678", "+33612345678"),
    ],
)
def test_stored_numbers_are_shown_in_uk_national_format(e164: str, shown: str) -> None:
    assert incidents.national_format(e164) == shown


@pytest.mark.parametrize("raw", ["12345", "077009001234", "phone", "+44 20 7946 095"])
def test_bad_phone_numbers_are_refused(raw: str) -> None:
    with pytest.raises(incidents.IncidentError):
        incidents.normalise_phone(raw)


def test_only_the_owner_or_a_supervisor_may_act(
    db: Database, incident: Incident, handler: User
) -> None:
    with db.session() as session:
        other, _ = accounts.create_user(session, Actor("t"), "pc2", "Other", {Role.HANDLER})
        boss, _ = accounts.create_user(session, Actor("t"), "sgt1", "Sergeant", {Role.SUPERVISOR})
    assert incidents.may_act(handler, {Role.HANDLER}, incident)
    assert not incidents.may_act(other, {Role.HANDLER}, incident)
    assert incidents.may_act(boss, {Role.SUPERVISOR}, incident)
    assert not incidents.may_act(handler, {Role.AUDITOR}, incident)
