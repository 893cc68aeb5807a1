"""Evidence custody holds however the file is asked for: a signed statement PDF is
evidence (item 12), and a read from the start of a file is audited whatever the Range
header's spelling (item 13)."""

from __future__ import annotations

import pytest
from sqlmodel import col, select

from appliance.models import AuditEvent, FileKind, Incident, Role, Statement
from appliance.services.evidence import master_key, sealing
from tests.support.http import FormClient
from tests.support.live import LiveServer
from tests.support.staff import PASSWORD, add_incident, add_user

pytestmark = pytest.mark.sqlite_only(
    reason="the rules are the handlers' and custody's Python; the same audit writes run on "
    "both engines in tests/integration/test_evidence.py"
)

PLAIN = bytes(range(256)) * 16  # 4 KiB to read back


def _seal(server: LiveServer, incident: Incident, name: str, kind: FileKind) -> tuple[int, str]:
    with server.db.session() as session:
        keyring = master_key.open_keyring(server.settings, session)
        path = server.settings.data_dir / "calls" / f"inc{incident.id}" / name
        file = sealing.seal_bytes(session, keyring, path, PLAIN, kind, incident.id or 0)
        return file.id or 0, str(path)


async def _signed_in(server: LiveServer, username: str) -> FormClient:
    client = FormClient(server.base_url)
    await client.sign_in(username, PASSWORD)
    return client


async def _status(client: FormClient, path: str, **headers: str) -> tuple[int, bytes]:
    async with client.session.get(client.base_url + path, headers=headers) as response:
        return response.status, await response.read()


def _actions(server: LiveServer, prefix: str) -> list[AuditEvent]:
    with server.db.session() as session:
        query = select(AuditEvent).where(col(AuditEvent.action).startswith(prefix))
        return list(session.exec(query.order_by(col(AuditEvent.seq))).all())


async def test_a_signed_statement_pdf_follows_the_evidence_custody_rules(
    live_server: LiveServer,
) -> None:
    """Tried: a handler who does not own the incident (nobody does) downloads its signed
    statement PDF, as they could before though the same incident's evidence gave 403.
    Refused and audited; an evidence officer still gets it."""
    with live_server.db.session() as session:
        officer = add_user(session, "pc1", Role.HANDLER)
        add_user(session, "pc2", Role.HANDLER)
        add_user(session, "do1", Role.EVIDENCE_OFFICER)
        incident = add_incident(session, None, "CAD/CUS/1")
    _, path = _seal(live_server, incident, "statement-1.pdf", FileKind.STATEMENT)
    with live_server.db.session() as session:
        statement = Statement(
            incident_id=incident.id or 0,
            version=1,
            state="signed",
            declaration="true",
            officer_id=officer.id or 0,
            pdf_path=path,
        )
        session.add(statement)
        session.flush()
        url = f"/incidents/{incident.id}/statements/{statement.id}.pdf"
    outsider = await _signed_in(live_server, "pc2")
    try:
        status, body = await _status(outsider, url)
        assert status == 403 and PLAIN not in body
        refused = _actions(live_server, "evidence.refused")
        assert [(e.actor, e.object_type) for e in refused] == [("pc2", "statement")]
        assert _actions(live_server, "statement.downloaded") == []
    finally:
        await outsider.close()
    keeper = await _signed_in(live_server, "do1")
    try:
        status, body = await _status(keeper, url)
        assert status == 200 and body == PLAIN
    finally:
        await keeper.close()
    assert [e.actor for e in _actions(live_server, "statement.downloaded")] == ["do1"]


@pytest.mark.parametrize(
    "spelling", ["bytes=-{size}", "bytes=-99999999", "bytes=00-", "bytes=0000-"]
)
async def test_a_whole_file_read_is_audited_however_the_range_is_spelt(
    live_server: LiveServer, spelling: str
) -> None:
    """Tried: ``Range: bytes=-N`` (N at least the size), ``bytes=00-`` and ``bytes=0000-``,
    each of which reads every byte but none of which starts with the text ``bytes=0-``
    the old check looked for. Each is audited as a whole-file read."""
    with live_server.db.session() as session:
        add_user(session, "do1", Role.EVIDENCE_OFFICER)
        incident = add_incident(session, None, "CAD/CUS/2")
    file_id, _ = _seal(live_server, incident, "recording-1.webm", FileKind.RECORDING)
    client = await _signed_in(live_server, "do1")
    try:
        status, body = await _status(
            client, f"/evidence/{file_id}", Range=spelling.format(size=len(PLAIN))
        )
        assert status == 206 and body == PLAIN
    finally:
        await client.close()
    played = _actions(live_server, "evidence.played")
    assert len(played) == 1
    assert played[0].detail["whole"] is True
    assert played[0].detail["bytes"] == f"0-{len(PLAIN)}"


async def test_a_seek_further_in_is_not_recorded_but_the_start_is(
    live_server: LiveServer,
) -> None:
    """The legitimate path: a player's first request (no Range) is one audit event with
    the bytes it covers; its seeks further into the file add none."""
    with live_server.db.session() as session:
        add_user(session, "do1", Role.EVIDENCE_OFFICER)
        incident = add_incident(session, None, "CAD/CUS/3")
    file_id, _ = _seal(live_server, incident, "recording-1.webm", FileKind.RECORDING)
    client = await _signed_in(live_server, "do1")
    try:
        assert (await _status(client, f"/evidence/{file_id}"))[0] == 200
        status, body = await _status(client, f"/evidence/{file_id}", Range="bytes=1000-1999")
        assert status == 206 and body == PLAIN[1000:2000]
    finally:
        await client.close()
    played = _actions(live_server, "evidence.played")
    assert [(e.detail["bytes"], e.detail["whole"]) for e in played] == [(f"0-{len(PLAIN)}", True)]
