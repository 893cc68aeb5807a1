"""Evidence custody holds however the file is asked for: a signed statement PDF is
evidence (item 12), and every read of a file is audited whatever its Range header asks
for, wherever it starts (item 13), without a row per range request of a player."""

from __future__ import annotations

import pytest
from sqlmodel import col, select

from appliance.models import AuditEvent, FileKind, Incident, Role, Statement
from appliance.services.evidence import custody, master_key, sealing
from appliance.web import keys
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


class _Clock:
    """The read ledger's clock, moved by the test instead of waiting five minutes."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _ledger(server: LiveServer) -> tuple[custody.ReadLedger, _Clock]:
    assert server.app is not None
    ledger, clock = server.app[keys.READS], _Clock()
    ledger.clock = clock
    return ledger, clock


async def _officer_and_recording(server: LiveServer, cad: str) -> tuple[FormClient, int]:
    with server.db.session() as session:
        add_user(session, "do1", Role.EVIDENCE_OFFICER)
        incident = add_incident(session, None, cad)
    file_id, _ = _seal(server, incident, "recording-1.webm", FileKind.RECORDING)
    return await _signed_in(server, "do1"), file_id


SIZE = len(PLAIN)


@pytest.mark.parametrize(
    ("header", "status", "served"),
    [
        ("bytes=1-", 206, (1, SIZE)),  # all but the first byte
        ("bytes=1-999999999", 206, (1, SIZE)),  # an end past the file, clamped
        ("bytes=-100", 206, (SIZE - 100, SIZE)),  # a suffix shorter than the file
        ("bytes=0-0,1-", 200, (0, SIZE)),  # two ranges: answered with the whole file
        ("bytes=1-1,2-", 200, (0, SIZE)),  # two ranges, neither from byte 0
    ],
)
async def test_a_read_that_does_not_start_at_byte_0_is_audited(
    live_server: LiveServer, header: str, status: int, served: tuple[int, int]
) -> None:
    """Tried: the Range spellings that used to read (nearly) the whole file with no audit
    row because they do not start at byte 0. Each read is one row naming the bytes
    answered."""
    client, file_id = await _officer_and_recording(live_server, "CAD/CUS/4")
    try:
        got, body = await _status(client, f"/evidence/{file_id}", Range=header)
        assert got == status and body == PLAIN[served[0] : served[1]]
    finally:
        await client.close()
    played = _actions(live_server, "evidence.played")
    assert [(e.actor, e.object_id) for e in played] == [("do1", str(file_id))]
    detail = played[0].detail
    assert detail["bytes"] == f"{served[0]}-{served[1]}"
    assert detail["bytes_served"] == served[1] - served[0]
    assert detail["requests"] == 1
    assert detail["whole"] is (served == (0, SIZE))


async def test_a_players_seeks_make_one_row_per_window_naming_every_range(
    live_server: LiveServer,
) -> None:
    """A player's first request is a row at once; its seeks in the next five minutes are
    no row each, and the first read after the window writes one row with every range
    answered since (merged), how many requests and how many bytes."""
    ledger, clock = _ledger(live_server)
    client, file_id = await _officer_and_recording(live_server, "CAD/CUS/3")
    url = f"/evidence/{file_id}"
    try:
        assert (await _status(client, url))[0] == 200
        for seek in ("bytes=1000-1999", "bytes=3000-", "bytes=-10"):
            assert (await _status(client, url, Range=seek))[0] == 206
        assert len(_actions(live_server, "evidence.played")) == 1
        clock.now += ledger.window_s
        status, body = await _status(client, url, Range="bytes=2000-2999")
        assert status == 206 and body == PLAIN[2000:3000]
    finally:
        await client.close()
    played = _actions(live_server, "evidence.played")
    assert [(e.detail["bytes"], e.detail["requests"]) for e in played] == [
        (f"0-{SIZE}", 1),
        (f"1000-{SIZE}", 4),
    ]
    assert played[1].detail["bytes_served"] == 1000 + (SIZE - 3000) + 10 + 1000


async def test_the_tail_of_a_playback_is_written_when_its_window_closes(
    live_server: LiveServer,
) -> None:
    """Reads after the first row and then nothing more (the player stopped): the flush
    the app runs every minute writes them once their window has closed, and only once."""
    ledger, clock = _ledger(live_server)
    client, file_id = await _officer_and_recording(live_server, "CAD/CUS/5")
    try:
        await _status(client, f"/evidence/{file_id}", Range="bytes=0-99")
        await _status(client, f"/evidence/{file_id}", Range="bytes=2000-2099")
    finally:
        await client.close()
    with live_server.db.session() as session:
        assert ledger.flush(session) == 0  # the window is still open
    clock.now += ledger.window_s
    with live_server.db.session() as session:
        assert ledger.flush(session) == 1
    with live_server.db.session() as session:
        assert ledger.flush(session, everything=True) == 0
    played = _actions(live_server, "evidence.played")
    assert [e.detail["bytes"] for e in played] == ["0-100", "2000-2100"]


async def test_every_download_is_audited_whatever_its_range(live_server: LiveServer) -> None:
    """Tried: two downloads in a row, one of them ``bytes=1-``. A download is a row each
    time, never folded into a playback's window."""
    _ledger(live_server)
    client, file_id = await _officer_and_recording(live_server, "CAD/CUS/6")
    try:
        assert (await _status(client, f"/evidence/{file_id}?download=1"))[0] == 200
        status, _ = await _status(client, f"/evidence/{file_id}?download=1", Range="bytes=1-")
        assert status == 206
    finally:
        await client.close()
    downloads = _actions(live_server, "evidence.downloaded")
    assert [e.detail["bytes"] for e in downloads] == [f"0-{SIZE}", f"1-{SIZE}"]
    assert _actions(live_server, "evidence.played") == []
