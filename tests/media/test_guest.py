"""Guests: one m-line per kind gets the caller; a second gets the handler."""

from media import Room
from tests.support.peers import Client, connect, until


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
