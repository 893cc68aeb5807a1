"""Bad offers raise SdpError and leave the room and its legs unharmed."""

import asyncio
import gc
import re

import pytest
from aiortc import RTCPeerConnection

from media import LegExistsError, Room, SdpError
from tests.support.peers import Client, connect, until


def open_peer_connections() -> int:
    gc.collect()
    return sum(
        1
        for o in gc.get_objects()
        if isinstance(o, RTCPeerConnection) and o.connectionState != "closed"
    )


def without(sdp: str, *prefixes: str) -> str:
    return "".join(line for line in sdp.splitlines(keepends=True) if not line.startswith(prefixes))


async def test_bad_offers_are_refused_while_the_call_goes_on(
    room: Room, clients: list[Client]
) -> None:
    caller, handler = Client("caller"), Client("handler", video=False)
    clients += [caller, handler]
    await connect(room, caller, "caller-1", "caller")
    await connect(room, handler, "handler-1", "handler")
    await until(lambda: handler.video_frames >= 5, what="handler video")

    probe = Client("probe")
    clients.append(probe)
    good = await probe.offer()
    bad_offers = {
        "garbage": "this is not SDP at all \x00\xff",
        "empty": "",
        "not a string": 42,
        "truncated": good[: len(good) // 3],
        "no ICE": without(good, "a=ice-ufrag", "a=ice-pwd"),
        "no DTLS": without(good, "a=fingerprint", "a=setup"),
        "no rtcp-mux": without(good, "a=rtcp-mux"),
        "not bundled": without(good, "a=group:BUNDLE"),
        "plain RTP": good.replace("UDP/TLS/RTP/SAVPF", "RTP/AVP"),
        "no common codec": re.sub(r"VP8/90000|H264/90000", "VP9/90000", good).replace(
            "opus/48000", "speex/48000"
        ),
    }
    open_before = open_peer_connections()
    frames_before = handler.video_frames
    for name, offer in bad_offers.items():
        with pytest.raises(SdpError) as raised:
            await room.join(leg_id=f"bad-{name}", role="guest", offer_sdp=offer)  # type: ignore[arg-type]
        assert isinstance(raised.value, ValueError)
        assert str(raised.value), name
        with pytest.raises(SdpError):
            await room.renegotiate("caller-1", offer)  # type: ignore[arg-type]
    with pytest.raises(LegExistsError):
        await room.join(leg_id="caller-1", role="caller", offer_sdp=good)
    with pytest.raises(ValueError):
        await room.join(leg_id="x", role="superuser", offer_sdp=good)

    assert room.leg_ids == ["caller-1", "handler-1"]
    assert open_peer_connections() == open_before, "a refused offer left a connection open"
    await until(lambda: handler.video_frames >= frames_before + 15, what="video still flowing")
    seen = caller.audio_frames
    await asyncio.sleep(0.5)
    assert caller.audio_frames > seen
