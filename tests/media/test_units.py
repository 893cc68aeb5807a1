"""Pure pieces: TURN credentials, codec facts, configuration, offer checks."""

import base64
import hashlib
import hmac

import pytest
from aiortc import RTCIceServer
from aiortc.rtp import RtpPacket

from media import IceServer, RoomConfig, SdpError, passthrough
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


def _packet(seq: int, timestamp: int, marker: bool) -> RtpPacket:
    packet = RtpPacket(payload_type=96, sequence_number=seq, timestamp=timestamp, marker=marker)
    packet._data = bytes([seq % 256])  # type: ignore[attr-defined]  (what the receiver sets)
    return packet


def _frames(seq: int, count: int, per_frame: int = 3) -> list[RtpPacket]:
    """``count`` frames of ``per_frame`` packets from ``seq`` (timestamp = frame number)."""
    return [
        _packet(seq + i, (seq + i) // per_frame, i % per_frame == per_frame - 1)
        for i in range(count * per_frame)
    ]


def test_a_video_hole_no_retransmission_fills_is_stepped_over() -> None:
    """Packets 3..17 never arrive (an outage longer than the sender's NACK history):
    aiortc's buffer would wait for 512 more packets; this one waits ``wait_s``, drops the
    frame the hole cut, assembles the next whole frame and asks for a keyframe."""
    packets = _frames(0, 10)
    lost = {p.sequence_number for p in packets[3:17]}
    waiting = passthrough.HoleSkippingJitterBuffer(512, wait_s=60)
    skipping = passthrough.HoleSkippingJitterBuffer(512, wait_s=0)
    out: dict[str, list[int]] = {"waiting": [], "skipping": []}
    plis = 0
    for packet in packets:
        if packet.sequence_number in lost:
            continue
        for name, buffer in (("waiting", waiting), ("skipping", skipping)):
            pli, frame = buffer.add(packet)
            if frame is not None:
                out[name].append(frame.timestamp)
            plis += pli and name == "skipping"
    # Frame 0 is whole at its last packet (the marker), before the hole; frames 1..5
    # are lost or cut (17 belongs to frame 5). The skipping buffer gives frames 6..9.
    assert out["waiting"] == [0]
    assert out["skipping"] == [0, 6, 7, 8, 9]
    assert plis == 1 and skipping.holes_skipped == 1
    # Nothing is skipped while the frame the hole cut has not ended.
    early = passthrough.HoleSkippingJitterBuffer(512, wait_s=0)
    for packet in (_packet(0, 0, False), _packet(2, 0, False)):
        assert early.add(packet) == (False, None)
    assert early.holes_skipped == 0


def test_a_video_frame_goes_on_at_its_last_packet() -> None:
    """A frame is whole at its marker packet, not when the next frame's first packet
    comes (aiortc's rule, one frame interval at every hop, and more when that packet is
    lost); a sender that marks no frame end still gets its frames at the next frame."""
    buffer = passthrough.HoleSkippingJitterBuffer(512, wait_s=60)
    given = [buffer.add(p)[1] for p in _frames(0, 2)]
    assert [f.timestamp if f else None for f in given] == [None, None, 0, None, None, 1]
    assert given[2] is not None and given[2].data == bytes([0, 1, 2])
    unmarked = passthrough.HoleSkippingJitterBuffer(512, wait_s=60)
    given = [unmarked.add(_packet(seq, seq // 2, False))[1] for seq in range(5)]
    assert [f.timestamp if f else None for f in given] == [None, None, 0, None, 1]


def test_a_video_hole_is_asked_for_again_until_it_fills() -> None:
    """Packet 4 is lost, and its first NACK (aiortc's) or the retransmission with it: the
    buffer asks again for what is still missing every ``renack_s`` while packets keep
    coming, and stops once the retransmission fills the hole (the frames behind it then
    go on)."""
    asked: list[list[int]] = []
    buffer = passthrough.HoleSkippingJitterBuffer(
        512, wait_s=60, renack=lambda ssrc, seqs: asked.append(seqs), renack_s=0
    )
    packets = _frames(0, 4)
    for packet in packets[:4] + packets[5:9]:
        buffer.add(packet)
    assert asked == [[4]] * 4, "with renack_s 0: at each packet from the one that showed it"
    assert buffer.nacks_repeated == 4
    pli, frame = buffer.add(packets[4])
    assert frame is not None and frame.timestamp == 1 and not pli
    buffer.add(packets[9])
    assert len(asked) == 4
    late = passthrough.HoleSkippingJitterBuffer(
        512, wait_s=60, renack=lambda ssrc, seqs: asked.append(seqs), renack_s=60
    )
    for packet in packets[:4] + packets[5:9]:
        late.add(packet)
    assert late.nacks_repeated == 0, "not before renack_s"


def test_a_hole_is_asked_for_again_every_round_trip_and_a_half() -> None:
    """The leg's measured RTT paces the repeated NACKs, within 20–250 ms; until one is
    measured, every 40 ms."""
    buffer = passthrough.HoleSkippingJitterBuffer(512, wait_s=0.3)
    assert buffer.renack_s == 0.04
    buffer.follow_round_trip(None)
    assert buffer.renack_s == 0.04
    buffer.follow_round_trip(0.08)
    assert buffer.renack_s == pytest.approx(0.12)
    buffer.follow_round_trip(0.001)
    assert buffer.renack_s == 0.02
    buffer.follow_round_trip(2.0)
    assert buffer.renack_s == 0.25


def test_audio_goes_on_packet_by_packet_through_a_loss() -> None:
    """Each audio packet is passed on as it comes: one missing holds nothing up (aiortc's
    buffer held four frames first and waited sixteen packets at a gap); one that comes
    late or twice is dropped."""
    buffer = passthrough.PassingAudioBuffer()
    given = [buffer.add(_packet(seq, seq * 960, True))[1] for seq in (0, 1, 3, 4, 2, 4, 5)]
    assert [f.timestamp // 960 if f else None for f in given] == [0, 1, 3, 4, None, None, 5]
    restarted = buffer.add(_packet(60_000, 7 * 960, True))[1]  # a sender that started over
    assert restarted is not None and buffer.add(_packet(60_001, 8 * 960, True))[1] is not None
