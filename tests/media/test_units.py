"""Pure pieces: TURN credentials, codec facts, configuration, offer checks."""

import base64
import hashlib
import hmac

import pytest
from aiortc import RTCIceServer

from media import IceServer, RoomConfig, SdpError
from media import codecs as media_codecs
from media.ice import turn_credentials, turn_server
from media.sdp import parse_offer


def test_turn_credentials_follow_coturn_rest() -> None:
    username, credential = turn_credentials("s3cret", "caller-7", ttl_s=600, now=1_700_000_000)
    assert username == "1700000600:caller-7"
    expected = hmac.new(b"s3cret", username.encode(), hashlib.sha1).digest()
    assert base64.b64decode(credential) == expected
    server = turn_server(["turn:box.example:3478"], "s3cret", "caller-7", now=1_700_000_000)
    assert server.username == "1700003600:caller-7"
    with pytest.raises(ValueError):
        turn_credentials("s", "a:b")
    with pytest.raises(ValueError):
        turn_credentials("s", "a", ttl_s=0)


def test_config_never_uses_default_stun() -> None:
    assert RoomConfig().rtc_configuration().iceServers == []
    config = RoomConfig(ice_servers=[IceServer(["turn:10.0.0.1:3478"], "u", "p")])
    assert config.rtc_configuration().iceServers == [
        RTCIceServer(urls=["turn:10.0.0.1:3478"], username="u", credential="p")
    ]
    with pytest.raises(ValueError):
        IceServer(["http://not-ice"])
    with pytest.raises(TypeError):
        IceServer("stun:one-string")  # type: ignore[arg-type]


def test_codec_preferences_put_the_rooms_codec_first() -> None:
    names = [c.mimeType for c in media_codecs.preferences("video")]
    assert names == ["video/VP8", "video/H264", "video/rtx"]
    h264 = media_codecs.preferences("video")[1]
    assert h264.parameters["profile-level-id"] == "42e01f"
    assert h264.parameters["packetization-mode"] == "1"
    assert media_codecs.preferences("video", first="video/h264")[0].mimeType == "video/H264"
    assert [c.mimeType for c in media_codecs.preferences("audio")] == ["audio/opus"]


def test_keyframe_and_size_detection() -> None:
    key = bytes([0x50, 0x42, 0x00, 0x9D, 0x01, 0x2A, 0x80, 0x02, 0xE0, 0x01]) + b"\x00" * 8
    assert media_codecs.is_keyframe(media_codecs.VP8, key)
    assert media_codecs.vp8_size(key) == (640, 480)
    delta = bytes([0x51]) + key[1:]
    assert not media_codecs.is_keyframe(media_codecs.VP8, delta)
    assert media_codecs.vp8_size(delta) is None
    idr = b"\x00\x00\x00\x01\x67\x42" + b"\x00\x00\x00\x01\x68\xce" + b"\x00\x00\x01\x65\x88"
    assert media_codecs.is_keyframe(media_codecs.H264, idr)
    assert not media_codecs.is_keyframe(media_codecs.H264, b"\x00\x00\x00\x01\x41\x9a")
    assert media_codecs.is_keyframe(media_codecs.OPUS, b"\xfc")


@pytest.mark.parametrize(
    ("offer", "message"),
    [
        ("v=0\r\n", "no audio or video"),
        ("hello", "v=0"),
        ("v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:0\r\n", "ICE credentials"),
    ],
)
def test_offer_checks_say_what_is_wrong(offer: str, message: str) -> None:
    with pytest.raises(SdpError, match=message):
        parse_offer(offer)


def test_passthrough_refuses_another_aiortc(monkeypatch: pytest.MonkeyPatch) -> None:
    from media import passthrough

    passthrough._check_versions()
    monkeypatch.setitem(passthrough.SUPPORTED, "aiortc", "1.17.")
    with pytest.raises(ImportError, match="re-check every hook"):
        passthrough._check_versions()
