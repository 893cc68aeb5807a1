"""Codec choice and the few bitstream facts the relay needs (keyframes, VP8 size).

VP8 first: every browser we meet speaks it and WebM records it without
transcoding. Constrained-baseline H264 (packetization-mode 1, 42e01f) second for
Safari builds that prefer it. Opus for audio.
"""

import struct

from aiortc import RTCRtpSender
from aiortc.rtcrtpparameters import RTCRtpCodecCapability, RTCRtpCodecParameters

VP8 = "video/vp8"
H264 = "video/h264"
OPUS = "audio/opus"
H264_PROFILE = "42e01f"


def _matches(cap: RTCRtpCodecCapability, mime: str) -> bool:
    if cap.mimeType.lower() != mime:
        return False
    if mime == H264:
        return (
            cap.parameters.get("profile-level-id") == H264_PROFILE
            and str(cap.parameters.get("packetization-mode")) == "1"
        )
    return True


def preferences(kind: str, first: str | None = None) -> list[RTCRtpCodecCapability]:
    """Codec preferences for a server transceiver, most wanted first.

    ``first`` is the codec the room already uses for that kind, so a leg that
    joins later agrees with the legs already there and media is forwarded as is.
    """
    caps = RTCRtpSender.getCapabilities(kind).codecs
    order = [VP8, H264] if kind == "video" else [OPUS]
    if first is not None and first in order:
        order.remove(first)
        order.insert(0, first)
    chosen = [c for mime in order for c in caps if _matches(c, mime)]
    chosen += [c for c in caps if c.mimeType.lower() == f"{kind}/rtx"]
    return chosen


def mime(codec: RTCRtpCodecParameters | RTCRtpCodecCapability) -> str:
    """Lower-case MIME type, the form codecs are compared in."""
    return codec.mimeType.lower()


def same_codec(a: RTCRtpCodecParameters | None, b: RTCRtpCodecParameters | None) -> bool:
    """True when frames encoded as ``a`` can be sent as ``b`` without transcoding."""
    if a is None or b is None or mime(a) != mime(b) or a.clockRate != b.clockRate:
        return False
    if mime(a) == H264:
        return str(a.parameters.get("packetization-mode", "0")) == str(
            b.parameters.get("packetization-mode", "0")
        )
    return True


def is_keyframe(codec_mime: str, data: bytes) -> bool:
    """Whether an encoded frame can be decoded on its own.

    VP8: the frame tag's lowest bit is 0 on key frames (RFC 6386 9.1). H264: the
    access unit (Annex B, as aiortc depacketises it) holds an IDR slice (NAL 5).
    Audio frames always are.
    """
    if not data:
        return False
    if codec_mime == VP8:
        return data[0] & 1 == 0
    if codec_mime == H264:
        return 5 in h264_nal_types(data)
    return True


def h264_nal_types(data: bytes) -> set[int]:
    """NAL unit types found after Annex B start codes."""
    types: set[int] = set()
    start = data.find(b"\x00\x00\x01")
    while start != -1 and start + 3 < len(data):
        types.add(data[start + 3] & 0x1F)
        start = data.find(b"\x00\x00\x01", start + 3)
    return types


def vp8_size(data: bytes) -> tuple[int, int] | None:
    """Width and height from a VP8 key frame header, or ``None`` for other frames."""
    if len(data) < 10 or data[0] & 1 or data[3:6] != b"\x9d\x01\x2a":
        return None
    width, height = struct.unpack_from("<HH", data, 6)
    return width & 0x3FFF, height & 0x3FFF
