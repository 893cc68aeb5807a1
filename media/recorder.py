"""The room's recording: encoded caller video and both parties' Opus, remuxed to WebM.

(Matroska ``.mkv`` when the caller sends H264, which WebM cannot hold.)

Not aiortc's MediaRecorder (which decodes and re-encodes, and lost video when audio
came first): frames arrive already encoded and are written as they are, by PyAV
in a writer thread, so the event loop only ever appends to a list: the list goes to
the writer every ``HANDOFF_S`` (one wake-up of the writer thread per batch, not per
packet: waking it per packet had the loop thread fighting it for the GIL, which
profiling found was most of a loaded worker's time).

Crash behaviour: Matroska clusters are closed every second and every packet is
flushed to the kernel, so a process killed with SIGKILL leaves a file that plays
up to about a second before the kill; a clean stop also writes cues and the
duration. The file is fsynced every few seconds against power loss.
"""

import asyncio
import fractions
import hashlib
import io
import logging
import os
import queue
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import av

from media import codecs
from media.errors import RecordingError
from media.relay import EncodedFrame, Source
from media.sealed import SealedWriter

logger = logging.getLogger(__name__)

MS = fractions.Fraction(1, 1000)
CLUSTER_MS = 1000
FSYNC_EVERY_S = 2.0
VIDEO_WAIT_S = 5.0
MAX_PENDING = 2000
HANDOFF_S = 0.25


@dataclass(frozen=True)
class RecordingInfo:
    """What was written, for the evidence record."""

    path: str
    duration_s: float
    video_codec: str | None
    audio_codecs: list[str]
    size_bytes: int
    sha256: str
    started_at: float = 0.0
    stopped_at: float = 0.0
    tracks: list[str] = field(default_factory=list)
    # Whose media each track held, in order: track → the room's leg ids (a guest's track
    # passes to a later guest only once the first has left, and says so here).
    track_legs: dict[str, list[str]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class _Item:
    key: str
    data: bytes
    pts_ms: int
    keyframe: bool
    codec_mime: str


class RecorderInput:
    """One track of the recording, fed by whichever source the room attaches.

    Places frames on the recording's timeline: the first frame after an attach is
    anchored at its arrival time, later ones follow its RTP timestamps, and the
    result never goes backwards. Video starts at a keyframe.
    """

    def __init__(self, recorder: "Recorder", key: str, kind: str) -> None:
        self.recorder = recorder
        self.key = key
        self.kind = kind
        self.source: Source | None = None
        self._anchor_s: float | None = None
        self._last_ms = -1
        self._need_keyframe = kind == "video"

    def attach(self, source: Source | None) -> None:
        if source is self.source:
            return
        if self.source is not None:
            self.source.unsubscribe(self)
        self.source = source
        self._anchor_s = None
        self._need_keyframe = self.kind == "video"
        if source is not None:
            self.recorder.held_by(self.key, source.leg_id)
            source.subscribe(self)
            source.request_keyframe()

    def push(self, frame: EncodedFrame) -> None:
        if self._need_keyframe:
            if not frame.keyframe:
                if self.source is not None:
                    self.source.request_keyframe()
                return
            self._need_keyframe = False
        clock = frame.codec.clockRate
        if self._anchor_s is None:
            self._anchor_s = (frame.arrival - self.recorder.started_monotonic) - (
                frame.timestamp / clock
            )
        pts_ms = round((self._anchor_s + frame.timestamp / clock) * 1000)
        pts_ms = max(pts_ms, self._last_ms + 1, 0)
        self._last_ms = pts_ms
        self.recorder.enqueue(_Item(self.key, frame.data, pts_ms, frame.keyframe, frame.mime))


class Recorder:
    """Writes a room's media to ``path`` until :meth:`stop`.

    Tracks: ``video`` (the caller's camera), ``caller_audio``, ``handler_audio``, and
    ``guest_audio_1`` … ``guest_audio_N`` when ``guest_tracks`` is N: declared when the
    file opens (Matroska fixes its tracks then), filled as guests join
    (:meth:`assign_guests`). ``track_legs`` says whose media each track held.
    The file is opened when the first video keyframe arrives (its size goes in the
    header), or at once when no video is expected, or after ``VIDEO_WAIT_S``
    without one; audio that came first is kept and written then. ``on_opened(path,
    video_codec)`` is called on the event loop then: the path is only known at that
    moment (an H264 caller's file is ``.mkv``), and whoever keeps records of the file
    should not wait for ``stop`` to learn it.
    """

    AUDIO_TRACKS = ("caller_audio", "handler_audio")

    def __init__(
        self,
        path: str | os.PathLike[str],
        expect_video: bool,
        on_failure: Callable[[str], None],
        data_key: bytes | None = None,
        on_opened: Callable[[str, str | None], None] | None = None,
        guest_tracks: int = 0,
    ) -> None:
        self.path = Path(path)
        self.data_key = data_key
        if self.path.suffix.lower() != ".webm":
            raise RecordingError(f"recording path must end in .webm: {self.path}")
        if self.path.exists():
            raise RecordingError(f"refusing to overwrite {self.path}")
        if not self.path.parent.is_dir():
            raise RecordingError(f"recording directory does not exist: {self.path.parent}")
        self.expect_video = expect_video
        self.started_at = time.time()
        self.started_monotonic = time.monotonic()
        self.guest_keys = tuple(f"guest_audio_{n}" for n in range(1, guest_tracks + 1))
        self.audio_keys = self.AUDIO_TRACKS + self.guest_keys
        self.track_legs: dict[str, list[str]] = {}
        self._guest_holders: dict[str, str] = {}
        self.video = RecorderInput(self, "video", "video")
        self.audio = {key: RecorderInput(self, key, "audio") for key in self.audio_keys}
        self.failed: str | None = None
        self.video_codec: str | None = None
        self.packets_written = 0
        self._on_failure = on_failure
        self._on_opened = on_opened
        self._loop = asyncio.get_running_loop()
        self._queue: queue.SimpleQueue[list[_Item] | None] = queue.SimpleQueue()
        self._batch: list[_Item] = []
        self._handoff: asyncio.TimerHandle | None = None
        self._received: deque[_Item] = deque()
        self._first_ms: int | None = None
        self._end_ms = 0
        self._plain: tuple[str, int] | None = None
        self._thread = threading.Thread(target=self._run, name=f"recorder {self.path.name}")
        self._thread.start()

    def inputs(self) -> list[RecorderInput]:
        return [self.video, *self.audio.values()]

    def held_by(self, key: str, leg_id: str) -> None:
        """Note that track ``key`` carries ``leg_id``'s media from now on."""
        legs = self.track_legs.setdefault(key, [])
        if not legs or legs[-1] != leg_id:
            legs.append(leg_id)

    def assign_guests(self, sources: dict[str, Source]) -> None:
        """Give each guest leg's audio (``leg_id → source``) a guest track of its own.

        A guest keeps its track while it is on the call; a track is freed when its guest
        leaves and goes to a later guest only if no track is still unused (a guest who
        comes back takes their old track again if it is free). A guest beyond the
        tracks is not recorded (logged).
        """
        for key in self.guest_keys:
            leg = self._guest_holders.get(key)
            if leg is not None and leg not in sources:
                del self._guest_holders[key]
                self.audio[key].attach(None)
        for leg_id, source in sources.items():
            track = next((k for k, held in self._guest_holders.items() if held == leg_id), None)
            if track is None:
                free = [k for k in self.guest_keys if k not in self._guest_holders]
                unused = [k for k in free if not self.track_legs.get(k)]
                again = [k for k in free if leg_id in self.track_legs.get(k, [])]
                track = next(iter(again + unused + free), None)
                if track is None:
                    logger.warning("%s: no guest track left for %s", self.path, leg_id)
                    continue
                self._guest_holders[track] = leg_id
            self.audio[track].attach(source)

    def enqueue(self, item: _Item) -> None:
        if self.failed is None:
            self._batch.append(item)
            if self._handoff is None:
                self._handoff = self._loop.call_later(HANDOFF_S, self._hand_off)

    def _hand_off(self) -> None:
        self._handoff = None
        batch, self._batch = self._batch, []
        if batch:
            self._queue.put(batch)

    def _next(self, timeout: float) -> _Item | None:
        """The writer thread's next item (``None``: stop); ``queue.Empty`` after ``timeout``."""
        if not self._received:
            batch = self._queue.get(timeout=timeout)
            if batch is None:
                return None
            self._received.extend(batch)
        return self._received.popleft()

    async def stop(self) -> RecordingInfo:
        """Finish the file and describe it (hashing runs off the event loop)."""
        for recorder_input in self.inputs():
            recorder_input.attach(None)
        if self._handoff is not None:
            self._handoff.cancel()
        self._hand_off()
        self._queue.put(None)
        await asyncio.to_thread(self._thread.join)
        if not self.path.exists():
            raise RecordingError(f"nothing was recorded: {self.failed or 'no media arrived'}")
        if self.failed is not None:
            raise RecordingError(f"the recording was cut short: {self.failed}")
        if self._plain is not None:
            digest, size = self._plain
        else:
            digest, size = await asyncio.to_thread(_sha256, self.path)
        duration_ms = self._end_ms - (self._first_ms or 0)
        return RecordingInfo(
            path=str(self.path),
            duration_s=round(max(duration_ms, 0) / 1000, 3),
            video_codec=self.video_codec,
            audio_codecs=["opus"] * len(self.audio_keys),
            size_bytes=size,
            sha256=digest,
            started_at=self.started_at,
            stopped_at=time.time(),
            tracks=(["video"] if self.video_codec else []) + list(self.audio_keys),
            track_legs={k: list(v) for k, v in self.track_legs.items()},
        )

    def _run(self) -> None:
        writer: _Writer | None = None
        pending: list[_Item] = []
        deadline = time.monotonic() + VIDEO_WAIT_S
        try:
            while True:
                try:
                    item = self._next(timeout=0.5)
                except queue.Empty:
                    item = _Item("", b"", 0, False, "")
                if item is None:
                    break
                if writer is None:
                    if item.key:
                        pending.append(item)
                        del pending[:-MAX_PENDING]
                    first_video = next(
                        (p for p in pending if p.key == "video" and p.keyframe), None
                    )
                    if first_video is None and self.expect_video:
                        if time.monotonic() < deadline:
                            continue
                        logger.warning("%s: no video keyframe; recording audio only", self.path)
                    if first_video is None and not any(p.key for p in pending):
                        continue
                    writer = _Writer(self.path, first_video, self.data_key, self.audio_keys)
                    self.path = writer.path
                    self.video_codec = writer.video_codec
                    if self._on_opened is not None:
                        self._loop.call_soon_threadsafe(
                            self._on_opened, str(writer.path), writer.video_codec
                        )
                    for queued in pending:
                        self._write(writer, queued)
                    pending.clear()
                elif item.key:
                    self._write(writer, item)
                writer.maybe_fsync()
        except Exception as exc:
            logger.exception("recording %s failed", self.path)
            self.failed = f"{type(exc).__name__}: {exc}"
            self._loop.call_soon_threadsafe(self._on_failure, self.failed)
        finally:
            if writer is not None:
                try:
                    writer.close()
                    self._plain = writer.plain_digest()
                except Exception as exc:
                    logger.exception("closing recording %s failed", self.path)
                    if self.failed is None:
                        self.failed = f"{type(exc).__name__}: {exc}"
                        self._loop.call_soon_threadsafe(self._on_failure, self.failed)

    def _write(self, writer: "_Writer", item: _Item) -> None:
        if writer.write(item):
            self.packets_written += 1
            if self._first_ms is None or item.pts_ms < self._first_ms:
                self._first_ms = item.pts_ms
            step = 20 if item.key != "video" else 0
            self._end_ms = max(self._end_ms, item.pts_ms + step)


class _Writer:
    """The PyAV side: one open container and its streams (writer thread only).

    WebM for VP8. WebM cannot hold H264, so an H264 caller is written as Matroska
    next to the requested name (``.mkv``); the stream parameters (size, SPS/PPS as
    ``avcC``) come from PyAV's raw-H264 demuxer reading the first keyframe.

    With a data key the container goes into a :class:`SealedWriter` instead of a
    file: PyAV sees a pipe (so Matroska writes live-style, sizes unknown, no cues)
    and a chunk is sealed after every packet that closed a cluster.
    """

    def __init__(
        self,
        path: Path,
        first_video: _Item | None,
        data_key: bytes | None,
        audio_keys: tuple[str, ...] = ("caller_audio", "handler_audio"),
    ) -> None:
        h264 = first_video is not None and first_video.codec_mime == codecs.H264
        self.path = path.with_suffix(".mkv") if h264 else path
        self.video_codec: str | None = None
        self.sealed: SealedWriter | None = None
        if data_key is not None:
            self.sealed = SealedWriter(self.path, data_key)
            self._fd = -1
        else:
            self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o640)
        try:
            self.container = av.open(
                self.sealed if self.sealed is not None else str(self.path),
                "w",
                format="matroska" if h264 else "webm",
                options={
                    "cluster_time_limit": str(CLUSTER_MS),
                    "cluster_size_limit": str(4 << 20),
                    "max_interleave_delta": "100000",
                },
                container_options={"flush_packets": "1"},
            )
        except BaseException:
            if self.sealed is not None:
                self.sealed.abandon()
            else:
                os.close(self._fd)
            raise
        self.container.metadata["title"] = "EVR call recording"
        self.streams: dict[str, av.stream.Stream] = {}
        if first_video is not None:
            stream = self._video_stream(first_video)
            stream.time_base = MS
            stream.metadata["title"] = "caller video"
            self.streams["video"] = stream
        for key in audio_keys:
            stream = self.container.add_stream("libopus", rate=48000, layout="stereo")
            stream.time_base = MS
            stream.metadata["title"] = key.replace("_", " ")
            self.streams[key] = stream
        self._last_fsync = time.monotonic()

    def _video_stream(self, keyframe: _Item) -> av.stream.Stream:
        if keyframe.codec_mime == codecs.VP8:
            size = codecs.vp8_size(keyframe.data)
            if size is None:
                raise RecordingError("the first video frame is not a VP8 keyframe")
            self.video_codec = "vp8"
            return self.container.add_mux_stream("vp8", width=size[0], height=size[1])
        if keyframe.codec_mime == codecs.H264:
            with av.open(io.BytesIO(keyframe.data), format="h264") as probe:
                template = probe.streams.video[0]
                if not template.codec_context.width or not template.codec_context.extradata:
                    raise RecordingError("the first H264 keyframe carries no SPS/PPS")
                self.video_codec = "h264"
                return self.container.add_stream_from_template(template)
        raise RecordingError(f"cannot record {keyframe.codec_mime}")

    def write(self, item: _Item) -> bool:
        stream = self.streams.get(item.key)
        if stream is None or not item.data:
            return False
        packet = av.Packet(item.data)
        packet.pts = item.pts_ms
        packet.dts = item.pts_ms
        packet.time_base = MS
        packet.stream = stream
        packet.is_keyframe = item.keyframe
        self.container.mux(packet)
        if self.sealed is not None:
            self.sealed.flush()
        return True

    def maybe_fsync(self) -> None:
        if time.monotonic() - self._last_fsync >= FSYNC_EVERY_S:
            if self.sealed is not None:
                self.sealed.sync()
            else:
                os.fsync(self._fd)
            self._last_fsync = time.monotonic()

    def close(self) -> None:
        if self.sealed is not None:
            try:
                self.container.close()
            except BaseException:
                self.sealed.abandon()
                raise
            self.sealed.close()
            return
        try:
            self.container.close()
        finally:
            os.fsync(self._fd)
            os.close(self._fd)

    def plain_digest(self) -> tuple[str, int] | None:
        """The SHA-256 and size of the plaintext, taken as written (sealed files only)."""
        if self.sealed is None:
            return None
        return self.sealed.sha256.hexdigest(), self.sealed.size


def _sha256(path: Path) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size
