"""Guests: one m-line per kind gets the caller, a second the handler, further ones the
other guests, each on a slot it keeps; and their voices in the recording."""

import asyncio
from pathlib import Path

import av
import pytest

from media import Room
from tests.support.peers import Client, Events, connect, until


async def test_guest_with_two_tracks_per_kind_sees_both_parties(
    room: Room, clients: list[Client]
) -> None:
    caller, handler = Client("caller"), Client("handler")
    guest = Client("guest", video=False, audio=False)
    guest.pc.addTransceiver("audio", direction="recvonly")
    guest.pc.addTransceiver("video", direction="recvonly")
    clients += [caller, handler, guest]
    await connect(room, caller, "caller-1", "caller")
    await connect(room, handler, "handler-1", "handler")
    await connect(room, guest, "guest-1", "guest")

    mids = {t.mid: t.kind for t in guest.pc.getTransceivers()}
    assert sorted(mids.values()) == ["audio", "audio", "video", "video"]
    await until(lambda: len(guest.frames_by_mid) == 4, what="media on all four guest tracks")
    await until(lambda: min(guest.frames_by_mid.values()) >= 10, what="all four flowing")

    outputs = room.leg("guest-1").peer.outputs
    assert [t.source.leg_id for t in outputs if t.kind == "video"] == ["caller-1", "handler-1"]
    assert [t.source.leg_id for t in outputs if t.kind == "audio"] == ["caller-1", "handler-1"]
    assert room.leg("handler-1").outputs("video")[0].source.leg_id == "caller-1"
    assert room.leg("caller-1").outputs("video")[0].source.leg_id == "handler-1"


GUESTS = 3  # the appliance's default `guests_max`: each page offers this many guest slots


async def _four_parties_and_guests(
    room: Room, clients: list[Client], guests: int
) -> tuple[Client, Client, list[Client]]:
    """A caller and a handler each offering GUESTS guest slots, then ``guests`` guests
    (sound only: the slots, not the video, are under test, and it spares the CPU)."""
    caller, handler = Client("caller", video=False), Client("handler", video=False)
    caller.receive_slots(GUESTS)
    handler.receive_slots(GUESTS)
    clients += [caller, handler]
    await connect(room, caller, "caller", "caller")
    await connect(room, handler, "handler", "handler")
    joined = []
    for n in range(1, guests + 1):
        guest = Client(f"guest-{n}", video=False)
        guest.receive_slots(GUESTS)  # the officer, then the other guests
        clients.append(guest)
        await connect(room, guest, f"guest-{n}", "guest")
        joined.append(guest)
    return caller, handler, joined


def _heard(client: Client) -> list[int]:
    return [client.frames_by_mid.get(mid, 0) for mid in client.audio_mids()]


async def test_three_guests_join_without_a_new_offer_to_the_caller(
    room: Room, clients: list[Client], events: Events
) -> None:
    """Tried: three guests arrive one after the other on a call whose caller and handler
    offered three guest slots when they joined. The caller applies one answer only, the
    room renegotiates nobody, and every party hears every other."""
    caller, handler, guests = await _four_parties_and_guests(room, clients, 3)

    for client in (caller, handler, *guests):
        await until(
            lambda c=client: all(n >= 10 for n in _heard(c)),  # type: ignore[misc]
            timeout=15,
            what=f"{client.name} hearing all four others",
        )
    assert [client.answers for client in (caller, handler, *guests)] == [1] * 5
    assert "renegotiated" not in events.kinds()
    # The caller's slots: the officer first, then each guest on a slot of its own, and
    # the page was told whose each one is.
    routed = [e.detail["slots"] for e in events if e.leg_id == "caller" and e.kind == "routed"]
    audio = caller.audio_mids()
    assert [routed[-1][mid] for mid in audio] == ["handler", "guest-1", "guest-2", "guest-3"]


async def test_one_guest_leaving_ends_only_their_leg_and_moves_nobody(
    room: Room, clients: list[Client], events: Events
) -> None:
    """Tried: the second of three guests leaves. Their slot falls silent at the caller
    and the handler; the officer and the other two guests go on, on the same slots."""
    caller, handler, _ = await _four_parties_and_guests(room, clients, 3)
    for client in (caller, handler):
        await until(lambda c=client: all(n >= 10 for n in _heard(c)), timeout=15)  # type: ignore[misc]

    await room.leave("guest-2")
    await asyncio.sleep(1.0)  # what was in flight arrives (slow on a loaded box)
    before = {c.name: _heard(c) for c in (caller, handler)}
    await asyncio.sleep(2.0)  # 100 frames of 20 ms on each slot still carrying someone
    after = {c.name: _heard(c) for c in (caller, handler)}
    for name in before:
        rose = [a - b for a, b in zip(after[name], before[name], strict=True)]
        assert rose[2] == 0, (name, rose)  # guest 2's slot is silent
        assert all(n > 10 for i, n in enumerate(rose) if i != 2), (name, rose)
    assert set(room.leg_ids) == {"caller", "handler", "guest-1", "guest-3"}
    audio = caller.audio_mids()
    slots = [e.detail["slots"] for e in events if e.leg_id == "caller" and e.kind == "routed"]
    assert [slots[-1][mid] for mid in audio] == ["handler", "guest-1", None, "guest-3"]


@pytest.mark.parametrize("guest_tracks", [GUESTS, 0], ids=["guests_recorded", "not_recorded"])
async def test_the_recording_holds_the_guests_tracks_only_when_asked_and_says_whose(
    room: Room, clients: list[Client], tmp_path: Path, guest_tracks: int
) -> None:
    """Tried: recording starts with the caller and the handler (as the appliance does),
    then two guests join and talk. With guest tracks, each guest's voice is a track of
    its own and the recording says which leg each track held; without, the file has the
    caller's and the handler's tracks only."""
    caller, handler = Client("caller", video=False), Client("handler", video=False)
    caller.receive_slots(GUESTS)
    handler.receive_slots(GUESTS)
    clients += [caller, handler]
    await connect(room, caller, "caller", "caller")
    await connect(room, handler, "handler", "handler")
    await room.start_recording(tmp_path / "call.webm", guest_tracks=guest_tracks)
    for n in (1, 2):
        guest = Client(f"guest-{n}", video=False)
        clients.append(guest)
        await connect(room, guest, f"guest-{n}", "guest")
    await until(lambda: all(n >= 50 for n in _heard(caller)[:3]), timeout=15)
    info = await room.stop_recording()

    guest_keys = [f"guest_audio_{n}" for n in range(1, guest_tracks + 1)]
    assert info.tracks == ["caller_audio", "handler_audio", *guest_keys]
    assert info.track_legs.get("caller_audio") == ["caller"]
    assert info.track_legs.get("handler_audio") == ["handler"]
    with av.open(info.path) as container:
        titles = [s.metadata.get("title") for s in container.streams.audio]
        packets = {s.metadata.get("title"): 0 for s in container.streams.audio}
        for packet in container.demux():
            if packet.size:
                packets[packet.stream.metadata.get("title")] += 1
    assert titles == [key.replace("_", " ") for key in info.tracks]
    if guest_tracks:
        assert {k: v for k, v in info.track_legs.items() if k.startswith("guest")} == {
            "guest_audio_1": ["guest-1"],
            "guest_audio_2": ["guest-2"],
        }
        assert packets["guest audio 1"] > 10 and packets["guest audio 2"] > 10
        assert packets["guest audio 3"] == 0  # a third guest's track, kept in case
    else:
        assert not any(k.startswith("guest") for k in info.track_legs)
    assert packets["caller audio"] > 10 and packets["handler audio"] > 10
