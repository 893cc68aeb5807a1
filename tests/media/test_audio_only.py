"""A caller with no camera: audio both ways, handler video still offered to them."""

import pytest

from media import NoVideoError, Room
from tests.support.peers import Client, connect, until


async def test_audio_only_caller(room: Room, clients: list[Client]) -> None:
    caller = Client("caller", video=False)
    handler = Client("handler", video=True)
    clients += [caller, handler]
    answer = await room.join(leg_id="caller-1", role="caller", offer_sdp=await caller.offer())
    assert "m=video" in answer and "a=sendonly" in answer
    await caller.accept(answer)
    await connect(room, handler, "handler-1", "handler")

    await until(lambda: caller.audio_frames >= 25, what="caller hearing handler")
    await until(lambda: handler.audio_frames >= 25, what="handler hearing caller")
    await until(lambda: caller.video_frames >= 10, what="caller seeing handler video")
    assert handler.video_frames == 0
    assert room.leg("caller-1").video_source() is None
    with pytest.raises(NoVideoError):
        await room.snapshot("caller-1")
    stats = await room.stats()
    assert stats["caller-1"].fps_received == 0.0
    assert stats["handler-1"].fps_received > 5
