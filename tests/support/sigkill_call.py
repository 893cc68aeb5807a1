"""A call that records until it is killed: run by test_recording as a subprocess.

Prints one JSON line once recording has started, then runs until SIGKILL. With
``--caller-only`` the handler's audio track stays empty, which is what makes the
muxer's interleaving wait. With ``--data-key HEX`` the recording is sealed. With
``--h264`` the caller offers only H.264 (the recorder then writes ``.mkv``).
"""

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from media import Room, RoomConfig
from tests.support.peers import Client, connect, until


async def main(path: str, with_handler: bool, data_key: bytes | None, h264: bool) -> None:
    room = Room("killed", RoomConfig(allow_loopback=True))
    caller = Client("caller", video_codec="video/H264" if h264 else None)
    await connect(room, caller, "caller-1", "caller")
    if with_handler:
        handler = Client("handler", video=False)
        await connect(room, handler, "handler-1", "handler")
        await until(lambda: handler.video_frames >= 3 and caller.audio_frames >= 3, timeout=20)
    else:
        await until(lambda: room.leg("caller-1").keyframes.keyframes_seen > 0, timeout=20)
    await room.start_recording(path, data_key)
    print(json.dumps({"recording_started": time.time()}), flush=True)
    await asyncio.sleep(3600)


def record_until_killed(path: Path, *flags: str, seconds: float = 4.0) -> tuple[float, float]:
    """Run this module as a process, SIGKILL it ``seconds`` into the recording; the
    wall-clock times the recording started and the kill was sent."""
    root = Path(__file__).resolve().parents[2]
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.support.sigkill_call", str(path), *flags],
        cwd=root,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(root)},
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line, "the call process exited before recording"
        started = json.loads(line)["recording_started"]
        time.sleep(max(0.0, started + seconds - time.time()))
        proc.send_signal(signal.SIGKILL)
        killed = time.time()
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == -signal.SIGKILL
    return started, killed


if __name__ == "__main__":
    flags = sys.argv[2:]
    key = bytes.fromhex(flags[flags.index("--data-key") + 1]) if "--data-key" in flags else None
    asyncio.run(
        main(
            sys.argv[1],
            with_handler="--caller-only" not in flags,
            data_key=key,
            h264="--h264" in flags,
        )
    )
