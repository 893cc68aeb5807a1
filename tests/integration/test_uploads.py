"""Upload links over real HTTPS: real photos and videos stored and hashed, disguised
or oversized files refused with nothing half-written, links like video links."""

from __future__ import annotations

import hashlib
from datetime import timedelta
from pathlib import Path

import aiohttp
import pytest
from sqlmodel import select

from appliance.models import AuditEvent, Call, CallState, Incident, Role, UploadedItem, User
from appliance.services.audit import Actor
from appliance.services.calls import invites, life
from appliance.services.intake import uploads
from tests.support import media_files
from tests.support.evidence import files_containing, opened
from tests.support.http import FormClient
from tests.support.live import LiveServer
from tests.support.staff import PASSWORD, add_incident, add_user

ELF = b"\x7fELF\x02\x01\x01\x00" + b"\x00" * 8 + b"\x02\x00\x3e\x00" + b"\x00" * 200


@pytest.fixture
def incident(live_server: LiveServer) -> tuple[Incident, User]:
    with live_server.db.session() as session:
        user = add_user(session, "pc1", Role.HANDLER)
        incident = add_incident(session, user, "CAD/UP/1")
        return incident, user


def _link(server: LiveServer, incident: Incident, user: User, ttl_hours: float = 24) -> str:
    with server.db.session() as session:
        _, _, token = invites.create_invite(
            session,
            Actor("pc1"),
            incident,
            user,
            timedelta(hours=ttl_hours),
            kind=invites.UPLOAD,
        )
    return token


async def _agree(client: FormClient, token: str) -> str:
    response, body = await client.get(f"/v/{token}")
    assert response.status == 200 and "Send photos and videos" in body
    response, _ = await client.post(f"/v/{token}", {"consent": "yes"})
    assert response.status == 303 and response.headers["Location"] == f"/v/{token}/upload"
    response, body = await client.get(f"/v/{token}/upload")
    assert response.status == 200 and 'accept="image/*,video/*"' in body and "multiple" in body
    return body


async def _upload(client: FormClient, token: str, files: list[tuple[str, bytes, str]]):
    form = aiohttp.FormData()
    form.add_field("csrf_token", client.csrf)
    for name, data, content_type in files:
        form.add_field("files", data, filename=name, content_type=content_type)
    async with client.session.post(
        client.base_url + f"/v/{token}/upload", data=form, allow_redirects=False
    ) as response:
        return response, await response.text()


def _items(server: LiveServer) -> list[UploadedItem]:
    with server.db.session() as session:
        return list(session.exec(select(UploadedItem).order_by(UploadedItem.id)).all())


def _actions(server: LiveServer) -> list[tuple[str, dict]]:
    with server.db.session() as session:
        return [(e.action, e.detail) for e in session.exec(select(AuditEvent))]


def _leftovers(server: LiveServer, incident: Incident) -> list[Path]:
    folder = uploads.uploads_dir(server.settings.data_dir, incident.id or 0)
    return sorted(folder.iterdir()) if folder.exists() else []


async def test_a_real_photo_and_video_are_stored_hashed_and_audited(
    live_server: LiveServer, incident, caller: FormClient, tmp_path: Path
) -> None:
    incident, user = incident
    token = _link(live_server, incident, user)
    await _agree(caller, token)
    photo = media_files.jpeg()
    video = media_files.mp4(tmp_path / "clip.mp4")
    response, body = await _upload(
        caller,
        token,
        [("IMG_0001.JPG", photo, "image/jpeg"), ("../../etc/clip.mp4", video, "video/mp4")],
    )
    assert response.status == 200, body
    assert "Received" in body and "IMG_0001.JPG" in body
    items = _items(live_server)
    assert [(i.detected_type, i.size_bytes) for i in items] == [
        ("image/jpeg", len(photo)),
        ("video/mp4", len(video)),
    ]
    assert items[0].sha256 == hashlib.sha256(photo).hexdigest()
    assert items[1].sha256 == hashlib.sha256(video).hexdigest()
    assert items[1].original_name == "clip.mp4"  # no folders from the caller
    for item, data in zip(items, (photo, video), strict=True):
        path = Path(item.path)
        assert opened(live_server.settings, live_server.db, path) == data
        assert files_containing(live_server.settings.data_dir, data[len(data) // 2 :][:64]) == []
        assert path.parent == uploads.uploads_dir(live_server.settings.data_dir, incident.id)
    assert not [p for p in _leftovers(live_server, incident) if p.name.startswith(".")]
    received = [d for a, d in _actions(live_server) if a == "upload.received"]
    assert [d["sha256"] for d in received] == [i.sha256 for i in items]
    assert all("Jane" not in str(d) and "07700" not in str(d) for _, d in _actions(live_server))

    # Staff who may act see it on the incident and can fetch the bytes (audited).
    staff = FormClient(live_server.base_url)
    try:
        await staff.sign_in("pc1", PASSWORD)
        response, body = await staff.get(f"/incidents/{incident.id}")
        assert items[0].sha256 in body and "image/jpeg" in body and "video/mp4" in body
        async with staff.session.get(
            staff.base_url + f"/incidents/{incident.id}/uploads/{items[0].id}"
        ) as download:
            assert download.status == 200
            assert download.headers["Content-Type"] == "image/jpeg"
            assert await download.read() == photo
    finally:
        await staff.close()
    assert "upload.viewed" in [a for a, _ in _actions(live_server)]

    # Finished spends the link.
    response, body = await caller.post(f"/v/{token}/finish")
    assert response.status == 200 and "We received 2 files." in body
    response, body = await caller.get(f"/v/{token}")
    assert response.status == 410 and "This link has been used" in body


async def test_an_executable_named_jpg_is_refused_and_nothing_is_written(
    live_server: LiveServer, incident, caller: FormClient
) -> None:
    incident, user = incident
    token = _link(live_server, incident, user)
    await _agree(caller, token)
    for name, data in (("photo.jpg", ELF), ("photo.jpg", b"MZ" + b"\x90" * 300), ("a.jpg", b"#!")):
        response, body = await _upload(caller, token, [(name, data, "image/jpeg")])
        assert response.status == 415
        assert "is not a photo or video we can accept" in body
    # JPEG magic bytes in front of something that is not a JPEG: PyAV says no.
    response, body = await _upload(
        caller, token, [("photo.jpg", b"\xff\xd8\xff\xe0" + ELF * 2, "image/jpeg")]
    )
    assert response.status == 415
    assert _items(live_server) == []
    assert _leftovers(live_server, incident) == []
    refused = [d["reason"] for a, d in _actions(live_server) if a == "upload.refused"]
    assert refused == ["type"] * 4


async def test_over_the_file_limit_and_over_the_total_are_refused_whole(
    live_server: LiveServer, incident, caller: FormClient, tmp_path: Path
) -> None:
    incident, user = incident
    photo = media_files.jpeg()
    video = media_files.mp4(tmp_path / "clip.mp4", frames=30)
    settings = live_server.settings
    settings.upload_max_file_bytes = len(video) - 1
    settings.upload_max_total_bytes = len(photo) * 2 + 10
    token = _link(live_server, incident, user)
    await _agree(caller, token)

    response, body = await _upload(caller, token, [("big.mp4", video, "video/mp4")])
    assert response.status == 413 and "the most one file may be" in body
    assert _items(live_server) == [] and _leftovers(live_server, incident) == []

    response, body = await _upload(
        caller,
        token,
        [("one.jpg", photo, "image/jpeg"), ("two.jpg", photo, "image/jpeg")],
    )
    assert response.status == 200
    response, body = await _upload(caller, token, [("three.jpg", photo, "image/jpeg")])
    assert response.status == 413 and "past its limit" in body and "Nothing of it was kept" in body
    assert [i.original_name for i in _items(live_server)] == ["one.jpg", "two.jpg"]
    assert len(_leftovers(live_server, incident)) == 2
    reasons = [d["reason"] for a, d in _actions(live_server) if a == "upload.refused"]
    assert reasons == ["file_too_large", "total_too_large"]


async def test_reaching_the_file_count_spends_the_link(
    live_server: LiveServer, incident, caller: FormClient
) -> None:
    incident, user = incident
    live_server.settings.upload_max_files = 1
    token = _link(live_server, incident, user)
    await _agree(caller, token)
    response, body = await _upload(caller, token, [("one.jpg", media_files.jpeg(), "image/jpeg")])
    assert response.status == 200 and "taken all it can" in body
    with live_server.db.session() as session:
        call = session.exec(select(Call)).one()
        assert call.state == CallState.ENDED and call.end_reason == "upload_limit_reached"


async def test_a_second_phone_an_expired_or_revoked_link_is_refused(
    live_server: LiveServer, incident, caller: FormClient
) -> None:
    incident, user = incident
    token = _link(live_server, incident, user)
    await _agree(caller, token)
    other = FormClient(live_server.base_url)
    try:
        response, body = await other.get(f"/v/{token}")
        assert response.status == 409 and "another phone" in body
        await other.get("/login")  # an anonymous CSRF token of its own
        response, body = await _upload(other, token, [("a.jpg", media_files.jpeg(), "image/jpeg")])
        assert response.status == 409
    finally:
        await other.close()
    assert _items(live_server) == []

    with live_server.db.session() as session:
        life.revoke(session, live_server.settings, Actor("pc1"), session.exec(select(Call)).one())
    response, body = await _upload(caller, token, [("a.jpg", media_files.jpeg(), "image/jpeg")])
    assert response.status == 410 and "no longer in use" in body
    assert _items(live_server) == []

    expired = _link(live_server, incident, user, ttl_hours=-1)
    response, body = await caller.get(f"/v/{expired}")
    assert response.status == 410 and "expired" in body


async def test_an_upload_without_the_csrf_token_is_refused(
    live_server: LiveServer, incident, caller: FormClient
) -> None:
    incident, user = incident
    token = _link(live_server, incident, user)
    await _agree(caller, token)
    form = aiohttp.FormData()
    form.add_field("files", media_files.jpeg(), filename="a.jpg", content_type="image/jpeg")
    async with caller.session.post(caller.base_url + f"/v/{token}/upload", data=form) as response:
        assert response.status == 403
    assert _items(live_server) == [] and _leftovers(live_server, incident) == []


async def test_an_upload_link_sms_says_what_it_is_for(live_server: LiveServer, incident) -> None:
    incident, user = incident
    with live_server.db.session() as session:
        _, message, _ = invites.create_sms_invite(
            session,
            Actor("pc1"),
            incident,
            user,
            live_server.settings,
            safe_to_contact=True,
            kind=invites.UPLOAD,
        )
        assert "photos and videos" in message.body and "video call" not in message.body
