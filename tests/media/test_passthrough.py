"""The relay forwards encoded frames: no decode, no encode, keyframe requests carried."""

import asyncio
import threading

import pytest
from aiortc.codecs import vpx

from media import Room, passthrough
from tests.support.peers import Client, connect, count_pli, until


def server_video_sender(room: Room, leg_id: str):  # type: ignore[no-untyped-def]
    peer = room.leg(leg_id).peer
    return next(t.sender for t in peer.pc.getTransceivers() if t.kind == "video")


async def test_video_is_forwarded_without_decoding(
    room: Room, clients: list[Client], monkeypatch: pytest.MonkeyPatch
) -> None:
    decoder_threads: set[threading.Thread] = set()
    real_init = vpx.Vp8Decoder.__init__

    def spy_init(self: vpx.Vp8Decoder) -> None:
        decoder_threads.add(threading.current_thread())
        real_init(self)

    monkeypatch.setattr(vpx.Vp8Decoder, "__init__", spy_init)
    caller, handler = Client("caller"), Client("handler", video=False)
    clients += [caller, handler]
    await connect(room, caller, "caller-1", "caller")
    await connect(room, handler, "handler-1", "handler")
    await until(lambda: handler.video_frames >= 30, what="handler decoding caller video")

    source = room.leg("caller-1").video_source()
    assert source is not None
    tap = passthrough.receiver_tap(source.receiver)
    assert tap is not None and tap.frames_tapped >= 30
    server_decoder = source.receiver._RTCRtpReceiver__decoder_thread
    assert server_decoder is not None and server_decoder.is_alive()
    assert server_decoder not in decoder_threads, "the server built a VP8 decoder"
    client_decoder = handler.video_transceiver.receiver._RTCRtpReceiver__decoder_thread
    assert client_decoder in decoder_threads, "the spy must see the handler's own decoder"

    track = room.leg("handler-1").outputs("video")[0]
    assert track.frames_forwarded >= 30
    assert track.frames_transcoded == 0
    assert not passthrough.encoder_used(server_video_sender(room, "handler-1"))


async def test_keyframe_requests_reach_the_sending_leg(room: Room, clients: list[Client]) -> None:
    caller, handler = Client("caller"), Client("handler", video=False)
    clients += [caller, handler]
    plis = count_pli(caller.video_sender)
    await connect(room, caller, "caller-1", "caller")
    await until(lambda: room.leg("caller-1").video_source().frames > 10, what="caller video")
    before_handler = plis()
    await connect(room, handler, "handler-1", "handler")
    await until(lambda: plis() > before_handler, what="a keyframe request when the handler joins")
    await until(lambda: handler.video_frames >= 10, what="handler video")

    await asyncio.sleep(1.0)
    quiet = plis()
    await asyncio.sleep(1.0)
    assert plis() == quiet, "no keyframe requests while nothing asks for one"

    receiver = handler.video_transceiver.receiver
    ssrc = receiver.getSynchronizationSources()[0].source
    await receiver._send_rtcp_pli(ssrc)
    await until(lambda: plis() > quiet, timeout=3, what="the handler's PLI at the caller")
    assert room.leg("handler-1").outputs("video")[0].keyframe_requests >= 1


async def test_mismatched_codec_falls_back_to_transcoding(
    room: Room, clients: list[Client]
) -> None:
    caller = Client("caller")
    handler = Client("handler", video=False, video_codec="video/H264")
    clients += [caller, handler]
    await connect(room, caller, "caller-1", "caller")
    await connect(room, handler, "handler-1", "handler")
    await until(lambda: handler.video_frames >= 10, timeout=15, what="H264 video at the handler")
    assert handler.video_size == (640, 480)
    track = room.leg("handler-1").outputs("video")[0]
    assert track.target_codec is not None and track.target_codec.mimeType == "video/H264"
    assert track.frames_transcoded >= 10
    assert passthrough.encoder_used(server_video_sender(room, "handler-1"))
