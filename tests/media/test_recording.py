"""Recording: remuxed WebM that plays, hashes and survives SIGKILL."""

import asyncio
import hashlib
import io
import time
from pathlib import Path

import av
import pytest

from media import RecordingError, Room
from tests.support.peers import Client, Events, connect, until
from tests.support.recordings import decode_file
from tests.support.sigkill_call import record_until_killed

ROOT = Path(__file__).resolve().parents[2]


async def test_recording_remuxes_the_call(
    room: Room, clients: list[Client], events: Events, tmp_path: Path
) -> None:
    caller, handler = Client("caller"), Client("handler", video=False)
    clients += [caller, handler]
    await connect(room, caller, "caller-1", "caller")
    await connect(room, handler, "handler-1", "handler")
    await until(lambda: handler.video_frames >= 5 and caller.audio_frames >= 5, what="media")

    path = tmp_path / "call.webm"
    assert caller.video_track is not None
    sent_before = caller.video_track.frames_sent
    started = time.monotonic()
    await room.start_recording(path)
    with pytest.raises(RecordingError):
        await room.start_recording(tmp_path / "second.webm")
    await asyncio.sleep(4.0)
    info = await room.stop_recording()
    wall = time.monotonic() - started
    sent = caller.video_track.frames_sent - sent_before

    assert info.path == str(path)
    assert info.video_codec == "vp8"
    assert info.audio_codecs == ["opus", "opus"]
    assert info.size_bytes == path.stat().st_size > 10_000
    assert info.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert abs(info.duration_s - wall) <= 0.2 * wall, (info.duration_s, wall)

    decoded = decode_file(str(path))
    assert decoded.video_codecs == ["vp8"]
    assert decoded.audio_codecs == ["opus", "opus"]
    assert decoded.first_video_keyframe
    assert decoded.video_size == (640, 480)
    # The bar is what the caller sent: a starved box encodes fewer than 15 a second.
    assert decoded.video_frames >= min(0.8 * sent - 3, 0.6 * 15 * 4), (decoded, sent)
    assert sent >= 10, sent
    assert decoded.audio_frames >= 0.6 * 50 * 4 * 2, "both parties' audio, 50 frames/s each"
    media_span = max(decoded.last_video_s, decoded.last_audio_s) - decoded.first_s
    assert abs(media_span - wall) <= 0.2 * wall, (media_span, wall)
    assert [e.kind for e in events if e.leg_id is None][:3] == [
        "recording_started",
        "recording_opened",
        "recording_stopped",
    ]


async def test_recording_refuses_bad_paths(room: Room, tmp_path: Path) -> None:
    with pytest.raises(RecordingError):
        await room.start_recording(tmp_path / "call.mp4")
    with pytest.raises(RecordingError):
        await room.start_recording(tmp_path / "missing-dir" / "call.webm")
    existing = tmp_path / "exists.webm"
    existing.write_bytes(b"evidence")
    with pytest.raises(RecordingError):
        await room.start_recording(existing)
    with pytest.raises(RecordingError):
        await room.stop_recording()


@pytest.mark.parametrize("who", ["both parties", "caller only"])
def test_sigkill_leaves_a_playable_file(tmp_path: Path, who: str) -> None:
    path = tmp_path / "killed.webm"
    extra = ["--caller-only"] if who == "caller only" else []
    started, killed = record_until_killed(path, *extra)
    print(f"recorded {killed - started:.2f}s before SIGKILL")

    decoded = decode_file(str(path))
    recorded = killed - started
    print(f"decoded video to {decoded.last_video_s:.2f}s, audio to {decoded.last_audio_s:.2f}s")
    assert decoded.video_codecs == ["vp8"]
    assert decoded.first_video_keyframe
    assert decoded.video_frames >= 15 * (recorded - 3.0) * 0.6
    assert decoded.last_video_s >= recorded - 3.0, (decoded.last_video_s, recorded)
    assert decoded.last_audio_s >= recorded - 3.0, (decoded.last_audio_s, recorded)
    assert decoded.last_video_s <= recorded + 0.5


async def test_h264_caller_is_recorded_as_matroska(
    room: Room, clients: list[Client], tmp_path: Path, events: Events
) -> None:
    """Also: the room says where the file really is as soon as the recorder opens it."""
    caller = Client("caller", video_codec="video/H264")
    handler = Client("handler", video=False)
    clients += [caller, handler]
    await connect(room, caller, "caller-1", "caller")
    await connect(room, handler, "handler-1", "handler")
    await until(lambda: handler.video_frames >= 5, timeout=15, what="H264 call")
    assert room.leg("handler-1").outputs("video")[0].frames_transcoded == 0

    await room.start_recording(tmp_path / "call.webm")
    await until(lambda: "recording_opened" in events.kinds(), what="the file opened")
    [opened] = [e for e in events if e.kind == "recording_opened"]
    assert opened.detail == {"path": str(tmp_path / "call.mkv"), "video_codec": "h264"}
    assert caller.video_track is not None
    sent_before = caller.video_track.frames_sent
    await asyncio.sleep(2.5)
    info = await room.stop_recording()
    sent = caller.video_track.frames_sent - sent_before
    still = await room.snapshot("caller-1")
    with av.open(io.BytesIO(still), format="image2pipe") as container:
        assert next(container.decode(video=0)).width == 640

    assert info.path == str(tmp_path / "call.mkv")
    assert not (tmp_path / "call.webm").exists()
    assert info.video_codec == "h264"
    assert info.sha256 == hashlib.sha256(Path(info.path).read_bytes()).hexdigest()
    decoded = decode_file(info.path)
    assert decoded.video_codecs == ["h264"]
    assert decoded.first_video_keyframe
    assert decoded.video_size == (640, 480)
    # A starved box encodes fewer frames than 15 a second: what the caller sent is the bar.
    assert decoded.video_frames >= min(0.8 * sent - 3, 0.5 * 15 * 2.5), (decoded, sent)
    assert sent >= 10, sent
