"""A cancelled or slow export (issue 16, item 2): the bundle is written with no
transaction open, so a download that stops being read holds no lock; a client that
goes stops the producer, and the next export is whole."""

from __future__ import annotations

import asyncio
import os
import time

import aiohttp
import pytest
from sqlmodel import select

from appliance.models import AuditEvent, FileKind, Role
from appliance.services.evidence import master_key, sealing
from tests.support.http import FormClient
from tests.support.live import LiveServer
from tests.support.staff import PASSWORD, add_incident, add_user

pytestmark = pytest.mark.sqlite_only(
    reason="the lock a held export took is SQLite's single writer; the producer's abort is "
    "the same on either engine"
)

BIG = 24 * 1024 * 1024  # far more than the pipe (8 × 256 KiB) and the sockets' buffers hold


def _exported(server: LiveServer) -> int:
    with server.db.reader() as session:
        return len(
            session.exec(select(AuditEvent).where(AuditEvent.action == "evidence.exported")).all()
        )


@pytest.fixture
async def officer(live_server: LiveServer) -> tuple[FormClient, int]:
    """An evidence officer signed in, and an incident with a large sealed upload."""
    with live_server.db.session() as session:
        owner = add_user(session, "pc1", Role.HANDLER)
        add_user(session, "do1", Role.EVIDENCE_OFFICER)
        incident = add_incident(session, owner, "CAD/EX/1")
        keyring = master_key.open_keyring(live_server.settings, session)
        path = live_server.settings.data_dir / "uploads" / f"inc{incident.id}" / "big.mp4"
        sealing.seal_bytes(session, keyring, path, os.urandom(BIG), FileKind.UPLOAD, incident.id)
    client = FormClient(live_server.base_url)
    await client.sign_in("do1", PASSWORD)
    yield client, incident.id or 0
    await client.close()


async def test_a_download_nobody_reads_holds_no_lock_and_a_dropped_one_stops(
    live_server: LiveServer, officer: tuple[FormClient, int]
) -> None:
    """The officer's client reads the first bytes and stops reading: meanwhile a write
    transaction opens at once (it waited 10 s and failed before). Then the client goes:
    nothing is audited as exported, and the next export arrives whole."""
    client, incident_id = officer
    url = f"{live_server.base_url}/incidents/{incident_id}/export"
    response = await client.session.get(url)
    assert response.status == 200
    assert (await response.content.readexactly(4)) == b"PK\x03\x04"
    await asyncio.sleep(0.5)  # the producer fills the pipe and blocks on it

    def write_now() -> float:
        started = time.perf_counter()
        with live_server.db.session() as session:
            add_user(session, "pc2", Role.HANDLER)
        return time.perf_counter() - started

    assert await asyncio.to_thread(write_now) < 2.0
    response.close()  # the client goes mid-download
    await asyncio.sleep(1.5)  # the producer notices within a poll
    assert _exported(live_server) == 0

    async with client.session.get(url) as whole:
        body = await whole.read()
    assert whole.status == 200 and len(body) > BIG
    assert _exported(live_server) == 1


async def test_a_stalled_download_is_abandoned(
    live_server: LiveServer, officer: tuple[FormClient, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A client that never reads past the first bytes is dropped after the stall limit,
    so its thread does not wait for ever (and neither does shutdown)."""
    from appliance.web.staff import evidence

    monkeypatch.setattr(evidence, "EXPORT_STALL_SECONDS", 0.5)
    client, incident_id = officer
    url = f"{live_server.base_url}/incidents/{incident_id}/export"
    response = await client.session.get(url)
    await response.content.readexactly(4)
    await asyncio.sleep(2)
    with pytest.raises((aiohttp.ClientPayloadError, aiohttp.ClientConnectionError)):
        await response.read()
    assert _exported(live_server) == 0
