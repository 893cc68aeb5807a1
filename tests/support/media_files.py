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
