"""Uploads in chunks over real HTTPS (services/intake/resumable.py): a video cut off
mid-chunk resumes from the confirmed offset and arrives whole and sealed; hostile chunks
are refused with their code and lose nothing confirmed; another link's or phone's
session is refused; an abandoned session expires with its chunks."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import ssl
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import select
from yarl import URL

from appliance.config import Settings
from appliance.models import AuditEvent, Incident, Role, UploadedItem, UploadSession, User, utcnow
from appliance.services.audit import Actor
from appliance.services.calls import invites
from appliance.services.intake import resumable, uploads
from tests.support import media_files
from tests.support.evidence import files_containing, opened
from tests.support.http import FormClient
from tests.support.live import LiveServer
from tests.support.staff import add_incident, add_user

CHUNK = 1024
"""Chunks far smaller than the product's 1 MiB so a small real video spans several."""
MAX_FILES = 2
RESUME_HOURS = 2.0
"""Not the default 24: the expiry test proves the setting is what decides."""


@pytest.fixture(autouse=True)
def small_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(resumable, "CHUNK_BYTES", CHUNK)


@pytest.fixture
def refusals_per_source() -> int | None:
    return None


@pytest.fixture
def settings(settings: Settings, refusals_per_source: int | None) -> Settings:
    update: dict[str, Any] = {"upload_max_files": MAX_FILES, "upload_resume_hours": RESUME_HOURS}
    if refusals_per_source is not None:
        update["refusals_per_source"] = refusals_per_source
    return settings.model_copy(update=update)


@pytest.fixture
def incident(live_server: LiveServer) -> tuple[Incident, User]:
    with live_server.db.session() as session:
        user = add_user(session, "pc1", Role.HANDLER)
        return add_incident(session, user, "CAD/RES/1"), user


def _link(server: LiveServer, incident: Incident, user: User) -> str:
    with server.db.session() as session:
        _, _, token = invites.create_invite(
            session, Actor("pc1"), incident, user, timedelta(hours=1), kind=invites.UPLOAD
        )
    return token


async def _agree(client: FormClient, token: str) -> None:
    await client.get(f"/v/{token}")
    response, _ = await client.post(f"/v/{token}", {"consent": "yes"})
    assert response.status == 303
    response, _ = await client.get(f"/v/{token}/upload")
    assert response.status == 200


async def _json(
    client: FormClient, method: str, path: str, **kwargs: Any
) -> tuple[int, dict[str, Any]]:
    headers = {"X-CSRF-Token": client.csrf, **kwargs.pop("headers", {})}
    async with client.session.request(
        method, client.base_url + path, headers=headers, **kwargs
    ) as response:
        return response.status, await response.json(content_type=None)


async def _begin(client: FormClient, token: str, data: bytes, **override: Any) -> dict[str, Any]:
    declared = {
        "name": "clip.mp4",
        "type": "video/mp4",
        "size": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
        **override,
    }
    status, body = await _json(client, "POST", f"/v/{token}/uploads", json=declared)
    assert status == 200, body
    return body


async def _put(
    client: FormClient, token: str, upload: str, offset: int, data: bytes, digest: str = ""
) -> tuple[int, dict[str, Any]]:
    headers = {
        "Upload-Offset": str(offset),
        "Upload-Chunk-SHA256": digest or hashlib.sha256(data).hexdigest(),
        "Content-Type": "application/octet-stream",
    }
    return await _json(client, "PUT", f"/v/{token}/uploads/{upload}", data=data, headers=headers)


async def _offset(client: FormClient, token: str, upload: str) -> int:
    status, body = await _json(client, "GET", f"/v/{token}/uploads/{upload}")
    assert status == 200, body
    return int(body["offset"])


async def _raw_put(
    server: LiveServer,
    client: FormClient,
    token: str,
    upload: str,
    offset: int,
    data: bytes,
    *,
    cut: bool,
) -> bytes:
    """A PUT written by hand on its own TLS connection; with ``cut`` the connection
    closes after half the body (a phone losing signal), else the answer's status line."""
    url = URL(server.base_url)
    cookies = client.session.cookie_jar.filter_cookies(url)
    cookie = "; ".join(f"{k}={m.value}" for k, m in cookies.items())
    context = ssl.create_default_context()
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    reader, writer = await asyncio.open_connection(url.host, url.port, ssl=context)
    head = (
        f"PUT /v/{token}/uploads/{upload} HTTP/1.1\r\nHost: {url.host}:{url.port}\r\n"
        f"Cookie: {cookie}\r\nX-CSRF-Token: {client.csrf}\r\nConnection: close\r\n"
        f"Upload-Offset: {offset}\r\nUpload-Chunk-SHA256: {hashlib.sha256(data).hexdigest()}\r\n"
        f"Content-Type: application/octet-stream\r\nContent-Length: {len(data)}\r\n\r\n"
    )
    writer.write(head.encode() + (data[: len(data) // 2] if cut else data))
    await writer.drain()
    status = b"" if cut else await reader.readline()
    writer.close()
    await writer.wait_closed()
    return status


def _items(server: LiveServer) -> list[UploadedItem]:
    with server.db.session() as session:
        return list(session.exec(select(UploadedItem)).all())


def _sessions(server: LiveServer) -> list[UploadSession]:
    with server.db.session() as session:
        return list(session.exec(select(UploadSession)).all())


async def test_a_video_cut_off_mid_chunk_resumes_from_the_status_and_arrives_sealed(
    live_server: LiveServer,
    incident,
    caller: FormClient,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Two chunks confirmed, the third cut off half-way by a closed connection, a
    reload (the page declares the same file again and gets the same session), then
    the rest from the confirmed offset: the kept file is the video, bit for bit."""
    incident, user = incident
    token = _link(live_server, incident, user)
    await _agree(caller, token)
    video = media_files.mp4(tmp_path / "clip.mp4", frames=60)
    assert len(video) > 4 * CHUNK, "the clip must span several chunks"
    upload = (await _begin(caller, token, video))["id"]
    for offset in (0, CHUNK):
        status, body = await _put(caller, token, upload, offset, video[offset : offset + CHUNK])
        assert (status, body["offset"], body["done"]) == (200, offset + CHUNK, False)
    third = video[2 * CHUNK : 3 * CHUNK]
    await _raw_put(live_server, caller, token, upload, 2 * CHUNK, third, cut=True)
    assert await _offset(caller, token, upload) == 2 * CHUNK
    # A lost signal is an ordinary event on a phone, not an error of the box.
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []
    # Nothing of the video is in clear on disk while it waits.
    assert files_containing(live_server.settings.data_dir, video[CHUNK + 100 : CHUNK + 164]) == []

    again = await _begin(caller, token, video)
    assert (again["id"], again["offset"]) == (upload, 2 * CHUNK)
    # The same hand-written request, sent whole, is taken: the cut was the only fault.
    answer = await _raw_put(live_server, caller, token, upload, 2 * CHUNK, third, cut=False)
    assert answer.startswith(b"HTTP/1.1 200"), answer
    assert await _offset(caller, token, upload) == 3 * CHUNK
    again["offset"] = 3 * CHUNK
    offset, body = again["offset"], again
    while offset < len(video):
        status, body = await _put(caller, token, upload, offset, video[offset : offset + CHUNK])
        assert status == 200, body
        offset = body["offset"]
    assert body["done"] is True

    [item] = _items(live_server)
    assert (item.sha256, item.size_bytes) == (hashlib.sha256(video).hexdigest(), len(video))
    assert item.detected_type == "video/mp4"
    assert opened(live_server.settings, live_server.db, item.path) == video
    assert files_containing(live_server.settings.data_dir, video[CHUNK + 100 : CHUNK + 164]) == []
    assert _sessions(live_server) == []
    folder = uploads.uploads_dir(live_server.settings.data_dir, incident.id or 0)
    assert [p.name for p in folder.iterdir() if p.name.startswith(".")] == []
    with live_server.db.session() as session:
        actions = [e.action for e in session.exec(select(AuditEvent))]
    assert "upload.session_begun" in actions and "upload.received" in actions


async def test_hostile_chunks_are_refused_with_their_code_and_lose_nothing_confirmed(
    live_server: LiveServer, incident, caller: FormClient, tmp_path: Path
) -> None:
    """After one chunk is confirmed: a chunk ahead of the offset, one sent again, one
    too long, one running past the declared size, one altered, one without its hash;
    each refused, the offset still one chunk, and the file then completes intact."""
    incident, user = incident
    token = _link(live_server, incident, user)
    await _agree(caller, token)
    video = media_files.mp4(tmp_path / "clip.mp4", frames=60)
    upload = (await _begin(caller, token, video))["id"]
    assert (await _put(caller, token, upload, 0, video[:CHUNK]))[0] == 200
    second = video[CHUNK : 2 * CHUNK]
    refusals = [
        ("ahead", await _put(caller, token, upload, 2 * CHUNK, video[2 * CHUNK : 3 * CHUNK]), 409),
        ("again", await _put(caller, token, upload, 0, video[:CHUNK]), 409),
        ("too long", await _put(caller, token, upload, CHUNK, video[CHUNK : 2 * CHUNK + 1]), 413),
        ("altered", await _put(caller, token, upload, CHUNK, second, "0" * 64), 422),
        ("no hash", await _put(caller, token, upload, CHUNK, second, "not-a-hash"), 400),
    ]
    for what, (status, body), expected in refusals:
        assert status == expected, (what, body)
        assert body["offset"] == CHUNK, what
        assert body["error"], what
    assert await _offset(caller, token, upload) == CHUNK

    offset = CHUNK
    while offset < len(video):
        status, body = await _put(caller, token, upload, offset, video[offset : offset + CHUNK])
        assert status == 200, body
        offset = body["offset"]
    [item] = _items(live_server)
    assert opened(live_server.settings, live_server.db, item.path) == video


async def test_a_file_not_as_declared_or_past_the_limits_is_refused_and_nothing_kept(
    live_server: LiveServer, incident, caller: FormClient, tmp_path: Path
) -> None:
    """Every chunk good but the whole file's SHA-256 not the one declared: 422, no item,
    session and chunks gone. A declaration larger than a file may be: 413."""
    incident, user = incident
    token = _link(live_server, incident, user)
    await _agree(caller, token)
    video = media_files.mp4(tmp_path / "clip.mp4", frames=60)
    upload = (await _begin(caller, token, video, sha256="ab" * 32))["id"]
    offset, status, body = 0, 200, {}
    while offset < len(video) and status == 200:
        status, body = await _put(caller, token, upload, offset, video[offset : offset + CHUNK])
        offset = body.get("offset") or len(video)
    assert (status, body["reason"]) == (422, "file_hash")
    assert _items(live_server) == [] and _sessions(live_server) == []
    folder = uploads.uploads_dir(live_server.settings.data_dir, incident.id or 0)
    assert list(folder.iterdir()) == []

    too_big = live_server.settings.upload_max_file_bytes + 1
    status, body = await _json(
        caller,
        "POST",
        f"/v/{token}/uploads",
        json={"name": "big.mp4", "type": "video/mp4", "size": too_big, "sha256": "ab" * 32},
    )
    assert (status, body["reason"]) == (413, "file_too_large")


async def test_a_session_is_refused_to_another_link_and_another_phone(
    live_server: LiveServer, incident, caller: FormClient, tmp_path: Path
) -> None:
    """The session's id used from a second upload link (its own agreed phone): 404; from
    another phone on the session's own link: the link refuses a second phone (410).
    The session's offset is unchanged by either."""
    incident, user = incident
    token = _link(live_server, incident, user)
    await _agree(caller, token)
    video = media_files.mp4(tmp_path / "clip.mp4", frames=60)
    upload = (await _begin(caller, token, video))["id"]
    assert (await _put(caller, token, upload, 0, video[:CHUNK]))[0] == 200

    other = FormClient(live_server.base_url)
    try:
        other_token = _link(live_server, incident, user)
        await _agree(other, other_token)
        status, _ = await _json(other, "GET", f"/v/{other_token}/uploads/{upload}")
        assert status == 404
        status, _ = await _put(other, other_token, upload, CHUNK, video[CHUNK : 2 * CHUNK])
        assert status == 404
        await other.get(f"/v/{token}/upload")  # its CSRF cookie, then the other link
        status, _ = await _put(other, token, upload, CHUNK, video[CHUNK : 2 * CHUNK])
        assert status == 410
    finally:
        await other.close()
    assert await _offset(caller, token, upload) == CHUNK


async def test_an_abandoned_session_expires_and_its_chunks_are_deleted(
    live_server: LiveServer, incident, caller: FormClient, tmp_path: Path
) -> None:
    """One chunk sent, then nothing for longer than the resume window
    (``upload_resume_hours``, 2 h here): the purge's sweep keeps it a minute before the
    window ends, then deletes the row and the sealed chunks, and the page is told it is
    gone."""
    incident, user = incident
    token = _link(live_server, incident, user)
    await _agree(caller, token)
    video = media_files.mp4(tmp_path / "clip.mp4", frames=60)
    upload = (await _begin(caller, token, video))["id"]
    assert (await _put(caller, token, upload, 0, video[:CHUNK]))[0] == 200
    [row] = _sessions(live_server)
    chunks = resumable.chunks_dir(live_server.settings.data_dir, row)
    assert [p.name for p in chunks.iterdir()] == [f"{0:016d}.chunk"]

    with live_server.db.session() as session:
        assert resumable.expire(session, live_server.settings.data_dir, utcnow()) == 0
        window = timedelta(hours=RESUME_HOURS)
        almost = utcnow() + window - timedelta(minutes=1)
        assert resumable.expire(session, live_server.settings.data_dir, almost) == 0
        later = utcnow() + window + timedelta(seconds=1)
        assert resumable.expire(session, live_server.settings.data_dir, later) == 1
    assert not chunks.exists() and _sessions(live_server) == []
    status, body = await _json(caller, "GET", f"/v/{token}/uploads/{upload}")
    assert (status, body["reason"]) == (404, "unknown_session")


async def test_files_under_way_count_against_the_links_limit(
    live_server: LiveServer, incident, caller: FormClient, tmp_path: Path
) -> None:
    """A link that takes two files: two declared and under way, a third declaration is
    refused 413 before any of it is sent; the first declared again (a reload) is still
    its own session, not a new file."""
    incident, user = incident
    token = _link(live_server, incident, user)
    await _agree(caller, token)
    first, second, third = (b"first", b"second", b"third")
    upload = (await _begin(caller, token, first))["id"]
    await _begin(caller, token, second)
    status, body = await _json(
        caller,
        "POST",
        f"/v/{token}/uploads",
        json={
            "name": "third.jpg",
            "type": "image/jpeg",
            "size": len(third),
            "sha256": hashlib.sha256(third).hexdigest(),
        },
    )
    assert (status, body["reason"]) == (413, "too_many_files")
    assert (await _begin(caller, token, first))["id"] == upload
    assert len(_sessions(live_server)) == MAX_FILES


@pytest.mark.sqlite_only(reason="a per-address tally in the web process, not the database")
@pytest.mark.parametrize("refusals_per_source", [2])
async def test_an_address_whose_declarations_keep_being_refused_gets_429(
    live_server: LiveServer, incident, caller: FormClient
) -> None:
    """Two declarations of a file larger than any may be (413 each, audited) from one
    address: the third, even of a file that would fit, is answered 429 with Retry-After
    and no session is begun, as the one-shot form's upload is."""
    incident, user = incident
    token = _link(live_server, incident, user)
    await _agree(caller, token)
    too_big = live_server.settings.upload_max_file_bytes + 1
    for _ in range(2):
        status, body = await _json(
            caller,
            "POST",
            f"/v/{token}/uploads",
            json={"name": "big.mp4", "type": "video/mp4", "size": too_big, "sha256": "ab" * 32},
        )
        assert (status, body["reason"]) == (413, "file_too_large")
    headers = {"X-CSRF-Token": caller.csrf}
    async with caller.session.post(
        caller.base_url + f"/v/{token}/uploads",
        json={"name": "small.jpg", "type": "image/jpeg", "size": 10, "sha256": "cd" * 32},
        headers=headers,
    ) as response:
        assert response.status == 429
        assert int(response.headers["Retry-After"]) >= 1
        assert "wait a minute" in (await response.json())["error"]
    assert _sessions(live_server) == []
    with live_server.db.reader() as session:
        refused = session.exec(
            select(AuditEvent).where(AuditEvent.action == "upload.refused")
        ).all()
    assert len(refused) == 2
