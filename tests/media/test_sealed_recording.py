"""A sealed recording: nothing in clear on disk, plays through the reader, survives SIGKILL."""

import asyncio
import hashlib
from pathlib import Path

import av

from media import Room
from media.sealed import PlainView, SealedReader, new_data_key
from tests.support.peers import Client, connect, until
from tests.support.recordings import decode_file
from tests.support.sigkill_call import record_until_killed

ROOT = Path(__file__).resolve().parents[2]


def _plain(path: Path, key: bytes, tmp_path: Path, unfinished: bool = False) -> Path:
    out = tmp_path / f"plain-{path.name}"
    with SealedReader(path, key, allow_unfinished=unfinished) as reader:
        out.write_bytes(b"".join(reader))
    return out


async def test_sealed_recording_plays_and_hides_its_frames(
    room: Room, clients: list[Client], tmp_path: Path
) -> None:
    caller, handler = Client("caller"), Client("handler", video=False)
    clients += [caller, handler]
    await connect(room, caller, "caller-1", "caller")
    await connect(room, handler, "handler-1", "handler")
    await until(lambda: handler.video_frames >= 5 and caller.audio_frames >= 5, what="media")
    key = new_data_key()
    path = tmp_path / "call.webm"
    assert caller.video_track is not None
    sent_before = caller.video_track.frames_sent
    await room.start_recording(path, key)
    await asyncio.sleep(3.0)
    info = await room.stop_recording()
    # The bar is what the caller sent: a starved box encodes fewer than 15 a second.
    sent = caller.video_track.frames_sent - sent_before
    assert sent >= 10, sent
    least = min(0.8 * sent - 3, 0.6 * 15 * 3)

    plain = _plain(path, key, tmp_path)
    assert info.sha256 == hashlib.sha256(plain.read_bytes()).hexdigest()
    assert info.size_bytes == plain.stat().st_size > 10_000
    raw = path.read_bytes()
    for marker in (b"\x1a\x45\xdf\xa3", b"webm", b"EVR call recording", b"caller video"):
        assert marker in plain.read_bytes()
        assert marker not in raw, marker
    with SealedReader(path, key) as reader:
        assert reader.finished and reader.chunks >= 3, "a chunk sealed at each cluster"
        with PlainView(reader) as view, av.open(view) as container:
            assert [s.codec_context.name for s in container.streams.video] == ["vp8"]
            assert sum(1 for _ in container.demux(video=0)) >= least
    decoded = decode_file(str(plain))
    assert decoded.video_codecs == ["vp8"]
    assert decoded.video_frames >= least


def test_sealed_sigkill_leaves_a_readable_file(tmp_path: Path) -> None:
    path = tmp_path / "killed.webm"
    key = new_data_key()
    started, killed = record_until_killed(path, "--data-key", key.hex())
    recorded = killed - started
    with SealedReader(path, key, allow_unfinished=True) as reader:
        assert not reader.finished
    decoded = decode_file(str(_plain(path, key, tmp_path, unfinished=True)))
    print(f"sealed: recorded {recorded:.2f}s, decoded video to {decoded.last_video_s:.2f}s")
    assert decoded.first_video_keyframe
    assert decoded.last_video_s >= recorded - 3.0, (decoded.last_video_s, recorded)
    assert decoded.last_audio_s >= recorded - 3.0, (decoded.last_audio_s, recorded)
