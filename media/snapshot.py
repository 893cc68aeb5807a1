"""Stills of a leg's video, decoded only when someone asks for one.

The relay never decodes, so a snapshot keeps the last keyframe and the frames
after it and decodes them on demand, in a worker thread, to a full-resolution JPEG
(PyAV's mjpeg encoder; no Pillow needed).
"""

import asyncio
import contextlib
import fractions
from typing import Literal

import av

from media import codecs
from media.relay import EncodedFrame

JPEG_QUALITY = 3
MAX_PIXELS = 4096 * 2160
_DECODERS: dict[str, Literal["libvpx", "h264"]] = {codecs.VP8: "libvpx", codecs.H264: "h264"}


class KeyframeBuffer:
    """The last keyframe of one video source and up to ``max_frames`` frames after it.

    When a long gap between keyframes overflows the buffer, the frames after the
    keyframe are let go and the buffer is marked ``stale``: a snapshot then asks for
    a fresh keyframe rather than making every call carry periodic keyframes.
    """

    def __init__(self, max_frames: int = 300) -> None:
        self.max_frames = max_frames
        self.stale = False
        self.keyframes_seen = 0
        self._frames: list[EncodedFrame] = []
        self._keyframe = asyncio.Event()

    def push(self, frame: EncodedFrame) -> None:
        if frame.keyframe:
            self._frames = [frame]
            self.stale = False
            self.keyframes_seen += 1
            self._keyframe.set()
            return
        if not self._frames or self.stale:
            return
        if len(self._frames) >= self.max_frames:
            del self._frames[1:]
            self.stale = True
            return
        self._frames.append(frame)

    async def wait_keyframe(self, timeout_s: float) -> bool:
        """Wait up to ``timeout_s`` for the next keyframe; True if one came."""
        self._keyframe.clear()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout_s):
                await self._keyframe.wait()
            return True
        return False

    def frames(self) -> list[EncodedFrame]:
        """A copy of the buffered frames, keyframe first (empty before any keyframe)."""
        return list(self._frames)


def decode_last(frames: list[EncodedFrame]) -> av.VideoFrame:
    """Decode ``frames`` (a keyframe and what follows) and return the last picture."""
    if not frames:
        raise ValueError("no frames to decode")
    name = _DECODERS.get(frames[0].mime)
    if name is None:
        raise ValueError(f"cannot decode {frames[0].mime} for a snapshot")
    size = codecs.vp8_size(frames[0].data) if frames[0].mime == codecs.VP8 else None
    if size is not None and size[0] * size[1] > MAX_PIXELS:
        raise ValueError(f"a {size[0]}×{size[1]} picture is larger than a snapshot may be")
    decoder = av.CodecContext.create(name, "r")
    # The size is the sender's to declare: refuse to allocate past 4K before decoding.
    decoder.options = {"max_pixels": str(MAX_PIXELS)}
    picture: av.VideoFrame | None = None
    for frame in frames:
        packet = av.Packet(frame.data)
        packet.pts = frame.timestamp
        packet.time_base = fractions.Fraction(1, frame.codec.clockRate)
        try:
            for decoded in decoder.decode(packet):
                picture = decoded
        except av.FFmpegError:
            if picture is not None:
                break
            raise
    for decoded in decoder.decode(None):
        picture = decoded
    if picture is None:
        raise ValueError("the buffered frames decoded to no picture")
    return picture


def to_jpeg(picture: av.VideoFrame, quality: int = JPEG_QUALITY) -> bytes:
    """Encode ``picture`` as a baseline JPEG at its own resolution."""
    encoder = av.CodecContext.create("mjpeg", "w")
    encoder.width = picture.width
    encoder.height = picture.height
    encoder.pix_fmt = "yuvj420p"
    encoder.time_base = fractions.Fraction(1, 1)
    encoder.qmin = quality
    encoder.qmax = quality
    image = picture.reformat(format="yuvj420p")
    image.pts = 0
    data = b"".join(bytes(p) for p in encoder.encode(image))
    data += b"".join(bytes(p) for p in encoder.encode(None))
    return data


def snapshot_jpeg(frames: list[EncodedFrame]) -> bytes:
    """Decode and encode in one call, for ``asyncio.to_thread``."""
    return to_jpeg(decode_last(frames))
