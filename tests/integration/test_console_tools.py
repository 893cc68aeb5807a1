"""The handler's tools on the call console, server side: captions and marked-up copies of
snapshots, the caller's position with the force's map link, drafts of notes and THRIVE,
and whose waiting caller it is (for the sound and the desktop notification).

Through the real app over HTTPS (the in-process live server), on both databases.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
from datetime import timedelta
from html import unescape
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from sqlmodel import select

from appliance.config import SettingsError, load_settings
from appliance.models import (
    AuditEvent,
    Call,
    CallState,
    EvidenceFile,
    OfficerDraft,
    Role,
    Snapshot,
    utcnow,
)
from appliance.services.audit import Actor
from appliance.services.calls import invites
from appliance.services.evidence import captures, master_key, sealing
from appliance.services.identity import accounts
from tests.support import media_files
from tests.support.http import FormClient
from tests.support.live import LiveServer
from tests.support.staff import PASSWORD, add_incident, add_user

ARROW = {"kind": "arrow", "from": [0.1, 0.1], "to": [0.6, 0.5]}
CIRCLE = {"kind": "circle", "from": [0.5, 0.5], "to": [0.7, 0.5]}


@pytest.fixture
def scene(live_server: LiveServer) -> dict[str, Any]:
    """pc1's incident with a call and one real 320×240 snapshot sealed on it; pc2 another
    handler, sgt1 a supervisor (who may open any call)."""
    jpeg = media_files.jpeg(320, 240)
    with live_server.db.session() as session:
        keyring = master_key.open_keyring(live_server.settings, session)
        owner = add_user(session, "pc1", Role.HANDLER)
        add_user(session, "pc2", Role.HANDLER)
        add_user(session, "sgt1", Role.SUPERVISOR)
        incident = add_incident(session, owner, "CAD/TOOLS/1")
        _, call, _ = invites.create_invite(
            session, Actor("pc1"), incident, owner, timedelta(hours=1)
        )
        snapshot = captures.store_snapshot(session, keyring, call, owner, jpeg, "")
        return {
            "call": call.public_id,
            "call_id": call.id,
            "incident": incident.id,
            "snapshot": snapshot.id,
            "jpeg": jpeg,
            "keyring": keyring,
        }


async def signed_in(server: LiveServer, username: str, page: str = "/") -> FormClient:
    client = FormClient(server.base_url)
    await client.sign_in(username, PASSWORD)
    await client.get(page)  # the session's CSRF token
    return client


async def post_json(client: FormClient, path: str, body: bytes) -> tuple[int, dict[str, Any]]:
    async with client.session.post(
        client.base_url + path,
        data=body,
        headers={"X-CSRF-Token": client.csrf, "Content-Type": "application/json"},
    ) as response:
        text = await response.text()
    try:
        return response.status, json.loads(text)
    except ValueError:
        return response.status, {"text": text}


def sealed_bytes(server: LiveServer, keyring: master_key.Keyring, path: str) -> bytes:
    with server.db.reader() as session:
        file = sealing.file_at(session, keyring, path)
        assert file is not None
        return sealing.open_bytes(keyring, file)


def snapshot_files(server: LiveServer) -> list[tuple[str, str]]:
    with server.db.reader() as session:
        return [(f.path, f.sha256) for f in session.exec(select(EvidenceFile))]


async def test_a_marked_up_copy_is_new_evidence_and_leaves_the_original_untouched(
    live_server: LiveServer, scene: dict[str, Any]
) -> None:
    """Tried: an arrow, a circle and a caption on a 320×240 snapshot. The copy is a new
    sealed snapshot (its own SHA-256, the shapes kept, linked to its original, audited,
    a 320-wide JPEG with the caption's band under the picture); the original's sealed
    bytes, its recorded hash and its evidence row are exactly as before; the console
    lists the copy right after its original."""
    before_files = snapshot_files(live_server)
    pc1 = await signed_in(live_server, "pc1", f"/calls/{scene['call']}")
    try:
        body = json.dumps({"shapes": [ARROW, CIRCLE], "caption": "  Point of  entry "}).encode()
        status, answer = await post_json(
            pc1, f"/calls/{scene['call']}/snapshots/{scene['snapshot']}/markup", body
        )
        assert status == 200, answer
        _, page = await pc1.get(f"/calls/{scene['call']}")
    finally:
        await pc1.close()

    original_hash = hashlib.sha256(scene["jpeg"]).hexdigest()
    with live_server.db.reader() as session:
        original = session.get(Snapshot, scene["snapshot"])
        copy = session.get(Snapshot, answer["id"])
        events = session.exec(
            select(AuditEvent).where(AuditEvent.action == "snapshot.marked_up")
        ).all()
    assert original is not None and copy is not None
    assert original.sha256 == original_hash and original.caption == ""
    assert sealed_bytes(live_server, scene["keyring"], original.path) == scene["jpeg"]
    after_files = snapshot_files(live_server)
    assert set(before_files) < set(after_files)  # the original's row unchanged, one more

    copied = sealed_bytes(live_server, scene["keyring"], copy.path)
    assert copy.original_id == original.id and copy.call_id == scene["call_id"]
    assert copy.sha256 == hashlib.sha256(copied).hexdigest() == answer["sha256"]
    assert copy.sha256 != original_hash and copy.caption == "Point of entry"
    assert copy.markup == [ARROW, CIRCLE]
    with Image.open(io.BytesIO(copied)) as picture:
        assert picture.format == "JPEG" and picture.width == 320 and picture.height > 240
        # The arrow's yellow is there, drawn on pixels that were flat grey.
        assert picture.convert("RGB").getpixel((int(0.35 * 320), int(0.3 * 240)))[2] < 100
    assert [e.detail for e in events] == [
        {
            "snapshot": copy.id,
            "sha256": copy.sha256,
            "original": original.id,
            "original_sha256": original_hash,
            "shapes": 2,
        }
    ]
    gallery = page.split('id="gallery"')[1]
    order = re.findall(r'<li data-snapshot="(\d+)"', gallery)
    assert order == [str(original.id), str(copy.id)]
    assert "Snapshot 1, marked up" in gallery and f'data-original="{original.id}"' in gallery


HOSTILE = [
    (b"\x89PNG\r\n\x1a\n" + b"\0" * 64, "did not arrive as JSON"),
    (b"[" * 15_000, "did not arrive as JSON"),
    (b'{"shapes": []}', "Draw at least one arrow or circle"),
    (json.dumps({"shapes": [ARROW] * 41}).encode(), "at most 40 shapes"),
    (b'{"shapes": [{"kind": "arrow", "from": [NaN, 0], "to": [1, 1]}]}', "outside the picture"),
    (json.dumps({"shapes": [{**ARROW, "to": [5, 1e308]}]}).encode(), "outside the picture"),
    (json.dumps({"shapes": [{**ARROW, "to": [True, 0]}]}).encode(), "not a point"),
    (
        json.dumps({"shapes": [{"kind": "<script>", "from": [0, 0], "to": [1, 1]}]}).encode(),
        "not an arrow or a circle",
    ),
    (json.dumps({"shapes": [ARROW], "caption": "x" * 201}).encode(), "at most 200 characters"),
    (json.dumps({"shapes": [ARROW], "caption": "a\u0000b"}).encode(), "control characters"),
    (json.dumps({"shapes": [ARROW], "pad": "x" * 20_000}).encode(), "too large"),
]


@pytest.mark.sqlite_only(reason="request checking; the database only stores the outcome")
async def test_hostile_markups_are_refused_with_a_clear_error(
    live_server: LiveServer, scene: dict[str, Any]
) -> None:
    """Tried, one after another: a PNG instead of JSON, 15,000 nested lists, no shapes,
    41 shapes, NaN, a point off the picture, a boolean coordinate, an unknown kind, a
    long caption, a control character, a 20 KB body. Each answers 400 with the reason
    in words, and leaves nothing: no snapshot row, no evidence file."""
    before = snapshot_files(live_server)
    pc1 = await signed_in(live_server, "pc1", f"/calls/{scene['call']}")
    try:
        for body, message in HOSTILE:
            status, answer = await post_json(
                pc1, f"/calls/{scene['call']}/snapshots/{scene['snapshot']}/markup", body
            )
            assert status == 400 and message in answer["error"], (body[:40], answer)
    finally:
        await pc1.close()
    assert snapshot_files(live_server) == before
    with live_server.db.reader() as session:
        assert len(session.exec(select(Snapshot)).all()) == 1


async def test_only_those_who_may_see_the_call_mark_it_up_or_caption_it(
    live_server: LiveServer, scene: dict[str, Any]
) -> None:
    """pc2 (a handler not owning the incident) is refused both, and nothing changes; a
    snapshot of another call cannot be reached through this call's address."""
    pc2 = await signed_in(live_server, "pc2", "/incidents")
    try:
        status, _ = await post_json(
            pc2,
            f"/calls/{scene['call']}/snapshots/{scene['snapshot']}/markup",
            json.dumps({"shapes": [ARROW]}).encode(),
        )
        caption, _ = await pc2.post(
            f"/calls/{scene['call']}/snapshots/{scene['snapshot']}/caption", {"caption": "x"}
        )
    finally:
        await pc2.close()
    assert status in (403, 404) and caption.status in (403, 404)
    pc1 = await signed_in(live_server, "pc1", f"/calls/{scene['call']}")
    try:
        status, _ = await post_json(
            pc1,
            f"/calls/{scene['call']}/snapshots/{scene['snapshot'] + 99}/markup",
            json.dumps({"shapes": [ARROW]}).encode(),
        )
    finally:
        await pc1.close()
    assert status == 404
    with live_server.db.reader() as session:
        assert [(s.id, s.caption) for s in session.exec(select(Snapshot))] == [
            (scene["snapshot"], "")
        ]


async def test_a_caption_is_metadata_and_the_picture_is_unchanged(
    live_server: LiveServer, scene: dict[str, Any]
) -> None:
    """Tried: captioning the original. Its row holds the caption, its sealed bytes and hash
    are as taken, the audit names the snapshot and the caption's length but not its words;
    a caption with a control character is refused."""
    pc1 = await signed_in(live_server, "pc1", f"/calls/{scene['call']}")
    try:
        path = f"/calls/{scene['call']}/snapshots/{scene['snapshot']}/caption"
        response, body = await pc1.post(path, {"caption": "Jemmy marks on the back door"})
        refused, refusal = await pc1.post(path, {"caption": "bad\u0007bell"})
        _, page = await pc1.get(f"/calls/{scene['call']}")
    finally:
        await pc1.close()
    assert response.status == 200 and json.loads(body)["caption"] == "Jemmy marks on the back door"
    assert refused.status == 400 and "control characters" in json.loads(refusal)["error"]
    with live_server.db.reader() as session:
        snapshot = session.get(Snapshot, scene["snapshot"])
        events = session.exec(
            select(AuditEvent).where(AuditEvent.action == "snapshot.captioned")
        ).all()
    assert snapshot is not None and snapshot.caption == "Jemmy marks on the back door"
    assert snapshot.sha256 == hashlib.sha256(scene["jpeg"]).hexdigest()
    assert sealed_bytes(live_server, scene["keyring"], snapshot.path) == scene["jpeg"]
    assert [e.detail for e in events] == [{"snapshot": scene["snapshot"], "chars": 28}]
    assert 'data-caption="Jemmy marks on the back door"' in page


@pytest.mark.sqlite_only(reason="settings are checked before any database is opened")
def test_the_force_map_link_template_is_checked_at_start_up(tmp_path: Path) -> None:
    """Tried: a good template (with a format spec), empty, and five bad ones; each bad one
    stops start-up naming the setting and what is wrong."""
    good = "https://maps.force.example/?lat={lat:.6f}&lon={lon}&z=17"
    assert load_settings(data_dir=tmp_path, force_map_url=good).force_map_url == good
    assert load_settings(data_dir=tmp_path, force_map_url="").force_map_url == ""
    for bad, why in [
        ("https://maps.example/?lat={lat}", "must hold {lat} and {lon}"),
        ("https://maps.example/?lat={lat}&lon={lon}&k={key}", "found key"),
        ("javascript:alert({lat},{lon})", "https://"),
        ("https://maps.example/?q={lat} {lon}", "no spaces"),
        ("https://maps.example/?lat={lat}&lon={lon}&x={", "not a URL template"),
        ("https://maps.example/?lat={0}&lon={lon}", "found 0"),
    ]:
        with pytest.raises(SettingsError, match="force_map_url") as refused:
            load_settings(data_dir=tmp_path, force_map_url=bad)
        assert why in str(refused.value), (bad, str(refused.value))


@pytest.mark.parametrize(
    "map_template",
    ["https://maps.force.example/?lat={lat}&lon={lon:.3f}", ""],
    ids=["template", "no-template"],
)
@pytest.mark.sqlite_only(reason="page rendering; the database only holds the position")
async def test_the_caller_card_shows_the_position_with_copy_and_the_force_map(
    live_server: LiveServer, scene: dict[str, Any], map_template: str
) -> None:
    """A position shared on the call shows as text with a copy button, and with a template
    set, a force-map link at that position opening in a new tab; with none, no link."""
    settings = live_server.settings
    object.__setattr__(settings, "force_map_url", map_template)
    with live_server.db.session() as session:
        call = session.exec(select(Call).where(Call.public_id == scene["call"])).one()
        call.caller_latitude, call.caller_longitude = 50.7156123, -2.4369871
        call.caller_location_accuracy_m = 12.4
        session.add(call)
    pc1 = await signed_in(live_server, "pc1", f"/calls/{scene['call']}")
    try:
        _, page = await pc1.get(f"/calls/{scene['call']}")
    finally:
        await pc1.close()
    card = page.split('class="console__bar caller-card"')[1].split("</header>")[0]
    assert '<span id="shared-location">50.715612, -2.436987</span>' in card
    assert "(within 12 m)" in card and 'data-copy-text="shared-location"' in card
    link = re.search(
        r'<a id="force-map" href="([^"]*)" target="_blank" rel="noopener"( hidden)?>', card
    )
    assert link is not None
    if map_template:
        assert unescape(link[1]) == "https://maps.force.example/?lat=50.715612&lon=-2.437"
        assert link[2] is None
    else:
        assert link[2] == " hidden"


async def test_drafts_survive_a_reload_and_belong_to_their_author(
    live_server: LiveServer, scene: dict[str, Any]
) -> None:
    """Tried: pc1 types a note and a THRIVE note; the console, opened again, has both back
    with "Draft saved HH:MM GMT"; the supervisor on the same call sees neither; sending the
    note ends its draft; an unknown form and an over-long field are refused."""
    call = scene["call"]
    pc1 = await signed_in(live_server, "pc1", f"/calls/{call}")
    sgt = await signed_in(live_server, "sgt1", f"/calls/{call}")
    try:
        note, body = await pc1.post(
            f"/calls/{call}/drafts/note", {"text": "Van seen 21:40", "kind": "note"}
        )
        assert note.status == 200 and re.fullmatch(
            r"\d\d:\d\d (GMT|BST)", json.loads(body)["saved"]
        )
        thrive, _ = await pc1.post(
            f"/calls/{call}/drafts/thrive", {"threat": "high", "threat_note": "Ex-partner nearby"}
        )
        assert thrive.status == 200
        _, page = await pc1.get(f"/calls/{call}")
        assert ">Van seen 21:40</textarea>" in page
        assert 'value="Ex-partner nearby"' in page and "<option selected>high</option>" in page
        assert len(re.findall(r"Draft saved \d\d:\d\d (GMT|BST)</p>", page)) == 2

        _, theirs = await sgt.get(f"/calls/{call}")
        assert "Van seen 21:40" not in theirs and "Ex-partner nearby" not in theirs

        unknown, _ = await pc1.post(f"/calls/{call}/drafts/outcome", {"code": "x"})
        long, reason = await pc1.post(f"/calls/{call}/drafts/note", {"text": "x" * 4001})
        assert unknown.status == 400 and long.status == 400 and "too long" in reason

        sent, _ = await pc1.post(
            f"/incidents/{scene['incident']}/notes",
            {"text": "Van seen 21:40", "kind": "note"},
            headers={"X-Requested-With": "fetch"},
        )
        assert sent.status == 200
        _, page = await pc1.get(f"/calls/{call}")
        assert ">Van seen 21:40</textarea>" not in page
    finally:
        await pc1.close()
        await sgt.close()
    with live_server.db.reader() as session:
        assert [d.form for d in session.exec(select(OfficerDraft))] == ["thrive"]


async def test_the_waiting_list_says_whose_caller_it_is(
    live_server: LiveServer, scene: dict[str, Any]
) -> None:
    """The list every staff page polls marks a caller as the reader's own (the owner's
    alert) or as nobody's (the queue board's alert): pc1's caller is pc1's, not the
    supervisor's; a caller on an incident nobody owns is unassigned for everyone who sees
    it."""
    with live_server.db.session() as session:
        call = session.exec(select(Call).where(Call.public_id == scene["call"])).one()
        orphan = add_incident(session, None, "CAD/TOOLS/NOBODY")
        _, unowned, _ = invites.create_invite(
            session, Actor("sgt1"), orphan, accounts.require(session, "sgt1"), timedelta(hours=1)
        )
        for waiting in (call, unowned):
            waiting.state, waiting.waiting_at = CallState.WAITING.value, utcnow()
            session.add(waiting)
    flags: dict[str, dict[str, tuple[bool, bool]]] = {}
    for username in ("pc1", "sgt1"):
        client = await signed_in(live_server, username, "/calls")
        try:
            _, body = await client.get("/calls/waiting.json")
        finally:
            await client.close()
        flags[username] = {
            row["incident"]: (row["mine"], row["unassigned"]) for row in json.loads(body)["waiting"]
        }
    assert flags["pc1"] == {"CAD/TOOLS/1": (True, False), "CAD/TOOLS/NOBODY": (False, True)}
    assert flags["sgt1"] == {"CAD/TOOLS/1": (False, False), "CAD/TOOLS/NOBODY": (False, True)}
