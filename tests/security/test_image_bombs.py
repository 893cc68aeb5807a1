"""Image bombs (issue 16, item 4): a small file declaring a huge picture is refused from
its header, before anything decodes it — uploads, snapshots and signatures alike."""

from __future__ import annotations

import resource
from collections.abc import Awaitable, Callable
from datetime import timedelta

import aiohttp
import pytest
from aiortc import RTCRtpCodecParameters
from sqlmodel import select

from appliance.config import Settings
from appliance.models import AuditEvent, Role, UploadedItem
from appliance.services.audit import Actor
from appliance.services.calls import invites
from appliance.services.record import statements
from appliance.services.record.statements import StatementError
from media import snapshot
from media.relay import EncodedFrame
from tests.support import media_files
from tests.support.hostile import png_declaring
from tests.support.http import FormClient
from tests.support.live import LiveServer
from tests.support.staff import add_incident, add_user

pytestmark = pytest.mark.sqlite_only(
    reason="image headers and decoders are under test; the refusal's row is a plain insert"
)


REFUSALS_ALLOWED = 4


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"refusals_per_source": REFUSALS_ALLOWED})


Send = Callable[[str, bytes, str], Awaitable[tuple[int, str]]]


async def _upload_link(server: LiveServer, caller: FormClient) -> Send:
    """An upload link the caller has agreed to, and a way to post one file to it."""
    with server.db.session() as session:
        user = add_user(session, "pc1", Role.HANDLER)
        incident = add_incident(session, user, "CAD/IB/1")
        _, _, token = invites.create_invite(
            session, Actor("pc1"), incident, user, timedelta(hours=1), kind=invites.UPLOAD
        )
    await caller.get(f"/v/{token}")
    await caller.post(f"/v/{token}", {"consent": "yes"})
    await caller.get(f"/v/{token}/upload")

    async def send(name: str, data: bytes, kind: str) -> tuple[int, str]:
        form = aiohttp.FormData()
        form.add_field("csrf_token", caller.csrf)
        form.add_field("files", data, filename=name, content_type=kind)
        async with caller.session.post(
            caller.base_url + f"/v/{token}/upload", data=form, allow_redirects=False
        ) as response:
            return response.status, await response.text()

    return send


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def test_an_upload_declaring_a_huge_picture_is_refused_before_decoding(
    live_server: LiveServer, caller: FormClient
) -> None:
    """Three PNGs of a few KB each declaring 16000×16000 pixels (a gigabyte each once
    decoded): each is refused 413 from its header, the process does not grow by anything
    like that, nothing is kept, and a real photo on the same link is still taken."""
    send = await _upload_link(live_server, caller)
    bomb = png_declaring(16000, 16000, rows=8)
    assert len(bomb) < 4096
    before = _peak_rss_mb()
    for n in range(3):
        status, body = await send(f"bomb{n}.png", bomb, "image/png")
        assert status == 413 and "megapixels at most" in body
    assert _peak_rss_mb() - before < 300, "the bomb was decoded"
    status, body = await send("real.jpg", media_files.jpeg(64, 48), "image/jpeg")
    assert status == 200 and "Received" in body
    with live_server.db.reader() as session:
        assert len(session.exec(select(UploadedItem)).all()) == 1
        reasons = [
            e.detail["reason"]
            for e in session.exec(select(AuditEvent).where(AuditEvent.action == "upload.refused"))
        ]
    assert reasons == ["image_too_large"] * 3


async def test_an_address_posting_bombs_is_refused_before_its_files_are_read(
    live_server: LiveServer, caller: FormClient
) -> None:
    send = await _upload_link(live_server, caller)
    bomb = png_declaring(16000, 16000, rows=8)
    statuses = [(await send(f"b{n}.png", bomb, "image/png"))[0] for n in range(REFUSALS_ALLOWED)]
    assert statuses == [413] * REFUSALS_ALLOWED
    status, body = await send("one-more.png", bomb, "image/png")
    assert status == 429 and "wait a minute" in body
    with live_server.db.reader() as session:
        refused = session.exec(select(AuditEvent).where(AuditEvent.action == "upload.refused"))
        assert len(refused.all()) == REFUSALS_ALLOWED


def test_a_signature_declaring_a_huge_or_odd_picture_is_refused_from_its_header() -> None:
    for declared in (png_declaring(16000, 16000), png_declaring(2000, 2000)):
        with pytest.raises(StatementError, match="odd size"):
            statements.ink_check(declared)
    with pytest.raises(StatementError, match="too large"):
        statements.ink_check(b"\x89PNG\r\n\x1a\n" + b"\x00" * statements.MAX_SIGNATURE_BYTES)


def test_a_snapshot_of_a_stream_declaring_a_huge_picture_is_refused() -> None:
    """A caller's VP8 key frame whose header says 16000×16000: no decoder is opened."""
    tag = bytes([0x10, 0x02, 0x00])  # a key frame (lowest bit 0), shown
    header = tag + b"\x9d\x01\x2a" + (16000).to_bytes(2, "little") * 2 + b"\x00" * 64
    codec = RTCRtpCodecParameters(mimeType="video/VP8", clockRate=90000, payloadType=96)
    frame = EncodedFrame("video", codec, header, 0, True, 0.0)
    with pytest.raises(ValueError, match="larger than a snapshot may be"):
        snapshot.decode_last([frame])
