"""A leg that restarts ICE keeps its place; the other leg is not disturbed."""

import pytest

from media import Room, UnknownLegError
from tests.support.peers import Client, Events, connect, until


async def test_ice_restart_keeps_the_leg_and_media_resumes(
    room: Room, clients: list[Client], events: Events
) -> None:
    caller, handler = Client("caller"), Client("handler", video=False)
    clients += [caller, handler]
    await connect(room, caller, "caller-1", "caller")
    await connect(room, handler, "handler-1", "handler")
    await until(lambda: handler.video_frames >= 10 and caller.audio_frames >= 10, what="call")
    handler_peer = room.leg("handler-1").peer
    caller_leg = room.leg("caller-1")

    again = Client("caller after network change")
    clients.append(again)
    offer = await again.offer()
    assert (
        offer.split("a=ice-ufrag:")[1][:4]
        != caller.pc.localDescription.sdp.split("a=ice-ufrag:")[1][:4]
    )
    answer = await room.renegotiate("caller-1", offer)
    await again.accept(answer)
    await caller.close()

    frames = handler.video_frames
    await until(lambda: handler.video_frames >= frames + 20, what="caller video after restart")
    await until(lambda: again.audio_frames >= 25, what="handler audio at the new connection")
    assert room.leg("caller-1") is caller_leg
    assert room.leg("handler-1").peer is handler_peer, "the handler was renegotiated"
    assert room.leg_ids == ["caller-1", "handler-1"]
    assert "renegotiated" in events.kinds("caller-1")
    assert "closed" not in events.kinds("caller-1")
    stats = await room.stats()
    assert stats["caller-1"].state == "connected"
    assert stats["caller-1"].fps_received > 5

    with pytest.raises(UnknownLegError):
        await room.renegotiate("nobody", offer)
