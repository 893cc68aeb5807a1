"""Small real media files, made with PyAV, for upload tests."""

from __future__ import annotations

import io
from pathlib import Path

import av


def jpeg(width: int = 32, height: int = 32) -> bytes:
    codec = av.CodecContext.create("mjpeg", "w")
    codec.width, codec.height, codec.pix_fmt = width, height, "yuvj420p"
    frame = av.VideoFrame(width, height, "yuvj420p")
    for plane in frame.planes:
        plane.update(bytes([128]) * plane.buffer_size)
    data = b"".join(bytes(p) for p in codec.encode(frame) + codec.encode(None))
    return data


def mp4(path: Path, frames: int = 10) -> bytes:
    with av.open(str(path), "w", format="mp4") as container:
        stream = container.add_stream("mpeg4", rate=10)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for n in range(frames):
            frame = av.VideoFrame(64, 48, "yuv420p")
            for plane in frame.planes:
                plane.update(bytes([(n * 20) % 256]) * plane.buffer_size)
            frame.pts = n
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return path.read_bytes()


def check_jpeg(data: bytes) -> tuple[int, int]:
    with av.open(io.BytesIO(data), format="mjpeg") as container:
        frame = next(container.decode(video=0))
        return frame.width, frame.height


def webm(path: Path, seconds: int = 20, fps: int = 10) -> bytes:
    """A VP8 WebM with cues (so a player can seek), a keyframe every second; each
    frame a flat grey that changes with time."""
    with av.open(str(path), "w", format="webm") as container:
        stream = container.add_stream("libvpx", rate=fps)
        stream.width, stream.height, stream.pix_fmt = 160, 120, "yuv420p"
        stream.codec_context.gop_size = fps
        for n in range(seconds * fps):
            frame = av.VideoFrame(160, 120, "yuv420p")
            for plane in frame.planes:
                plane.update(bytes([(n * 3) % 256]) * plane.buffer_size)
            frame.pts = n
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return path.read_bytes()
