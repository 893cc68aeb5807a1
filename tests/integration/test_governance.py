"""Information governance: subject access by phone in any format or by name, a signed
bundle with its third parties, an audit trail an auditor can search and export, viewing
an incident audited, survey comments for the evaluation lead only."""

from __future__ import annotations

import csv
import io
import zipfile
from datetime import timedelta
from pathlib import Path

import pytest
from sqlmodel import col, select

from appliance import cli, migrate
from appliance.config import Settings
from appliance.db import Database
from appliance.models import (
    AuditEvent,
    Call,
    ChatMessage,
    Disclosure,
    FileKind,
    Role,
    SurveyResponse,
    ViewerLink,
)
from appliance.services.audit import Actor
from appliance.services.calls import invites
from appliance.services.evidence import export, master_key, sealing, signing
from appliance.services.governance import subject_access
from appliance.services.outbox import messages
from tests.support.http import FormClient
from tests.support.live import LiveServer
from tests.support.staff import PASSWORD, add_incident, add_user

ACTOR = Actor("im1")


def _a_caller_with_records(settings: Settings, db: Database) -> dict[str, int]:
    """Jane (stored +447700900123) with a call, chat, an SMS, a snapshot and a Clare's
    Law disclosure naming someone else; Bob on another number."""
    with db.session() as session:
        keyring = master_key.open_keyring(settings, session)
        user = add_user(session, "pc1", Role.HANDLER)
        jane = add_incident(session, user, "CAD/SAR/1", caller_phone="+447700900123")
        bob = add_incident(
            session, user, "CAD/SAR/2", caller_name="Bob Smith", caller_phone="07700 900456"
        )
        invites.create_invite(session, Actor("pc1"), jane, user, timedelta(hours=1))
        call = session.exec(select(Call).where(Call.incident_id == jane.id)).one()
        session.add(ChatMessage(call_id=call.id or 0, sender="caller", body="the blue car"))
        session.add(
            ViewerLink(
                call_id=call.id or 0,
                token_hash="v" * 64,
                name="PC 9 Ode",
                created_by_id=user.id or 0,
            )
        )
        session.add(
            Disclosure(
                incident_id=jane.id or 0,
                kind="right_to_ask_request",
                subject="John Doe",
                by_id=user.id or 0,
            )
        )
        messages.queue_sms(
            session,
            Actor("pc1"),
            settings=settings,
            to_phone="+447700900123",
            body="hello",
            reference="sar-x",
        )
        sealing.seal_bytes(
            session,
            keyring,
            settings.data_dir / "sar.jpg",
            b"jane's snapshot" * 20,
            FileKind.SNAPSHOT,
            jane.id or 0,
        )
        return {"jane": jane.id or 0, "bob": bob.id or 0}


def test_subject_access_finds_a_caller_by_phone_in_any_format(
    settings: Settings, tmp_path: Path
) -> None:
    """A caller stored as +447700900123 is found by the number as people write it, with
    her call, chat, SMS (including one not tied to an incident), file and disclosure;
    the other caller is not. The bundle verifies, names the disclosure subject as a
    third party; the audit records the search and the export, never the number."""
    db = Database(settings.effective_database_url)
    migrate.upgrade(db.engine)
    signing.ensure_signing_key(settings.effective_signing_key_file)
    try:
        ids = _a_caller_with_records(settings, db)
        with db.session() as session:
            keyring = master_key.open_keyring(settings, session)
            for written in ("+44 (0)7700 900123", "00447700900123", "07700-900-123"):
                again = subject_access.find(session, ACTOR, phone=written)
                assert [i.id for i in again.incidents] == [ids["jane"]], written
            found = subject_access.find(session, ACTOR, phone="07700 900123")
            assert [i.id for i in found.incidents] == [ids["jane"]]
            counts = found.counts()
            assert counts["calls"] == 1 and counts["chat"] == 1 and counts["files"] == 1
            assert [m.incident_id for m in found.sms] == [None], "found by its number alone"
            assert any("John Doe" in line for line in found.third_parties)
            assert any("viewer 'PC 9 Ode'" in line for line in found.third_parties)
            with (tmp_path / "sar.zip").open("wb") as out:
                subject_access.write_bundle(session, settings, keyring, ACTOR, found, out)
        assert export.verify_bundle(tmp_path / "sar.zip") == []
        with zipfile.ZipFile(tmp_path / "sar.zip") as bundle:
            names = bundle.namelist()
            assert "third_parties.txt" in names and "subject.json" in names
            assert bundle.read("chat.txt").decode().endswith("caller: the blue car\n")
            snapshot = next(n for n in names if n.startswith("files/snapshot-"))
            assert bundle.read(snapshot) == b"jane's snapshot" * 20
        with db.session() as session:
            events = session.exec(
                select(AuditEvent)
                .where(col(AuditEvent.action).startswith("subject_access"))
                .order_by(col(AuditEvent.seq))
            ).all()
        assert [e.action for e in events] == ["subject_access.searched"] * 4 + [
            "subject_access.exported"
        ]
        assert all("7700" not in str(e.detail) + e.object_id for e in events)
    finally:
        db.dispose()


def test_subject_access_by_name_and_the_cli(settings: Settings, tmp_path: Path) -> None:
    """`evr subject-access --name` finds Bob (any case) and writes a bundle that
    verifies; `evr audit export --from --to` writes the day's events as CSV, the
    subject access searches among them."""
    db = Database(settings.effective_database_url)
    migrate.upgrade(db.engine)
    _a_caller_with_records(settings, db)
    db.dispose()
    config = tmp_path / "evr.toml"
    config.write_text(
        f'data_dir = "{settings.data_dir}"\ndatabase_url = "{settings.effective_database_url}"\n'
    )
    signing.ensure_signing_key(settings.effective_signing_key_file)
    out = tmp_path / "bob.zip"
    assert (
        cli.main(
            ["--config", str(config), "subject-access", "--name", "bob smi", "--out", str(out)]
        )
        == 0
    )
    assert export.verify_bundle(out) == []
    with zipfile.ZipFile(out) as bundle:
        assert "CAD/SAR/2" in bundle.read("subject.json").decode()
        assert "CAD/SAR/1" not in bundle.read("subject.json").decode()
    today = __import__("appliance.models", fromlist=["utcnow"]).utcnow().strftime("%Y-%m-%d")
    csv_path = tmp_path / "audit.csv"
    assert (
        cli.main(
            [
                "--config",
                str(config),
                "audit",
                "export",
                "--from",
                today,
                "--to",
                today,
                "--out",
                str(csv_path),
            ]
        )
        == 0
    )
    rows = list(csv.DictReader(csv_path.open()))
    assert "subject_access.exported" in [r["action"] for r in rows]
    assert [int(r["seq"]) for r in rows] == sorted(int(r["seq"]) for r in rows)


async def _signed_in(server: LiveServer, username: str) -> FormClient:
    client = FormClient(server.base_url)
    await client.sign_in(username, PASSWORD)
    await client.get("/")
    return client


@pytest.mark.sqlite_only(reason="the pages and roles; the services run on both engines above")
async def test_pages_for_the_information_manager_auditor_and_evaluation_lead(
    live_server: LiveServer,
) -> None:
    """A handler's view of an incident is audited; the auditor finds it by action and
    exports it as CSV; the information manager searches by phone and downloads the
    bundle; the evaluation lead reads survey comments (audited); each page refuses a
    handler."""
    with live_server.db.session() as session:
        handler = add_user(session, "pc1", Role.HANDLER)
        add_user(session, "aud1", Role.AUDITOR)
        add_user(session, "im1", Role.INFORMATION_MANAGER)
        add_user(session, "eval1", Role.EVALUATION_LEAD)
        incident = add_incident(session, handler, "CAD/GOV/1", caller_phone="+447700900123")
        session.add(
            SurveyResponse(
                incident_id=incident.id or 0,
                cohort="video",
                channel="page",
                handling=5,
                outcome=4,
                comment="Kind and quick",
            )
        )
        incident_id = incident.id
    clients = [await _signed_in(live_server, name) for name in ("pc1", "aud1", "im1", "eval1")]
    pc1, aud1, im1, eval1 = clients
    try:
        response, _ = await pc1.get(f"/incidents/{incident_id}")
        assert response.status == 200
        response, page = await aud1.get("/audit?action=incident.viewed")
        assert response.status == 200 and "pc1" in page and "incident.viewed" in page
        response, text = await aud1.get("/audit.csv?action=incident.viewed&object_type=incident")
        rows = list(csv.DictReader(io.StringIO(text)))
        assert [(r["actor"], r["object_id"]) for r in rows] == [("pc1", str(incident_id))]

        response, page = await im1.post(
            "/governance/subject-access", {"phone": "07700 900123", "name": ""}
        )
        assert response.status == 200 and "CAD/GOV/1" in page
        async with im1.session.post(
            im1.base_url + "/governance/subject-access/bundle",
            data={"phone": "07700 900123", "name": "", "csrf_token": im1.csrf},
        ) as bundle_response:
            assert bundle_response.status == 200
            data = await bundle_response.read()
        with zipfile.ZipFile(io.BytesIO(data)) as bundle:
            assert "CAD/GOV/1" in bundle.read("subject.json").decode()

        response, page = await eval1.get("/governance/survey-comments")
        assert response.status == 200 and "Kind and quick" in page
        for path in ("/governance/survey-comments", "/governance/subject-access", "/audit"):
            response, _ = await pc1.get(path)
            assert response.status == 403, path
    finally:
        for client in clients:
            await client.close()
    with live_server.db.session() as session:
        actions = [e.action for e in session.exec(select(AuditEvent)).all()]
    for action in (
        "incident.viewed",
        "audit.searched",
        "audit.exported",
        "subject_access.searched",
        "subject_access.exported",
        "survey.comments_read",
    ):
        assert action in actions, action
