"""Snapshots: a full-resolution JPEG decoded on demand from the keyframe buffer."""

import io

import av
import pytest

from media import NoVideoError, Room, RoomConfig, UnknownLegError
from tests.support.peers import Client, connect, count_pli, until


def jpeg_size(data: bytes) -> tuple[int, int]:
    assert data[:2] == b"\xff\xd8" and data[-2:] == b"\xff\xd9", "not a JPEG"
    with av.open(io.BytesIO(data), format="image2pipe") as container:
        frame = next(container.decode(video=0))
        return frame.width, frame.height


async def test_snapshot_is_a_full_size_jpeg(room: Room, clients: list[Client]) -> None:
    caller, handler = Client("caller"), Client("handler", video=False)
    clients += [caller, handler]
    with pytest.raises(UnknownLegError):
        await room.snapshot("nobody")
    await connect(room, handler, "handler-1", "handler")
    with pytest.raises(NoVideoError):
        await room.snapshot("handler-1")
    await connect(room, caller, "caller-1", "caller")
    await until(lambda: room.leg("caller-1").keyframes.keyframes_seen >= 1, what="a keyframe")
    assert jpeg_size(await room.snapshot("caller-1")) == (640, 480)


async def test_snapshot_after_a_long_gop_asks_for_a_fresh_keyframe(
    clients: list[Client],
) -> None:
    room = Room("small-buffer", RoomConfig(allow_loopback=True, snapshot_max_frames=5))
    try:
        caller = Client("caller")
        clients.append(caller)
        plis = count_pli(caller.video_sender)
        await connect(room, caller, "caller-1", "caller")
        await until(lambda: room.leg("caller-1").keyframes.stale, what="buffer overflow")
        before = plis()
        assert jpeg_size(await room.snapshot("caller-1")) == (640, 480)
        assert plis() > before
        assert not room.leg("caller-1").keyframes.stale
    finally:
        await room.close()
