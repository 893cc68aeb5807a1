"""A caller's media endpoint behind a firewall: run by test_turn_tls as a subprocess under
its own user id, so that nftables rules matching that id (``meta skuid``) stand for the
caller's network and touch nothing else on the test's loopback.

Reads one JSON line ``{"iceServers": [...]}`` (the ``hello``'s, as a browser gets them),
prints ``{"sdp": <offer>}``, reads ``{"sdp": <answer>}``, waits for ICE and prints the
selected candidate pair: the local candidate's type and how it reaches the TURN server.
The line also carries ``ca``, the PEM of the CA the caller trusts for ``turns:``: written
to a file of this process's own and named by ``SSL_CERT_FILE``, as for any OpenSSL client
(aiortc asks asyncio for a default TLS context; the test's own files are not readable by
this user).
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import tempfile
from typing import Any

from aiortc import (
    RTCBundlePolicy,
    RTCConfiguration,
    RTCIceServer,
    RTCPeerConnection,
    RTCSessionDescription,
)
from aiortc.mediastreams import AudioStreamTrack, VideoStreamTrack


def _selected_pair(pc: RTCPeerConnection) -> dict[str, Any]:
    """aiortc has no candidate-pair statistics; aioice's nominated pair is the one in use.
    A relay candidate's protocol sends through a TurnTransport whose inner protocol holds
    the connection to the TURN server (aioice 0.10 internals, pinned with aiortc)."""
    ice = pc.getTransceivers()[0].sender.transport.transport
    pair = ice._connection._nominated[1]
    local = pair.local_candidate
    to_turn = "none"
    if local.type == "relay":
        inner = pair.protocol.transport._TurnTransport__inner_protocol
        link = inner.transport
        if link.get_extra_info("ssl_object") is not None:
            to_turn = "tls"
        else:
            to_turn = "tcp" if link.get_extra_info("peername") else "udp"
        to_turn_peer = list(link.get_extra_info("peername") or ())
    else:
        to_turn_peer = []
    return {
        "local_type": local.type,
        "local_address": [local.host, local.port],
        "remote_type": pair.remote_candidate.type,
        "to_turn": to_turn,
        "turn_peer": to_turn_peer,
    }


async def main() -> None:
    reader = asyncio.StreamReader()
    loop = asyncio.get_running_loop()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    hello = json.loads(await reader.readline())
    with tempfile.NamedTemporaryFile("w", suffix=".pem", delete=False) as ca:
        ca.write(hello["ca"])
    os.environ["SSL_CERT_FILE"] = ca.name
    servers = [
        RTCIceServer(urls=s["urls"], username=s.get("username"), credential=s.get("credential"))
        for s in hello["iceServers"]
    ]
    pc = RTCPeerConnection(
        RTCConfiguration(iceServers=servers, bundlePolicy=RTCBundlePolicy.MAX_BUNDLE)
    )
    pc.addTrack(AudioStreamTrack())
    pc.addTrack(VideoStreamTrack())
    connected = asyncio.Event()

    @pc.on("iceconnectionstatechange")
    def _changed() -> None:
        if pc.iceConnectionState in ("completed", "connected"):
            connected.set()

    await pc.setLocalDescription(await pc.createOffer())
    print(json.dumps({"sdp": pc.localDescription.sdp}), flush=True)
    answer = json.loads(await reader.readline())
    await pc.setRemoteDescription(RTCSessionDescription(answer["sdp"], "answer"))
    try:
        await asyncio.wait_for(connected.wait(), timeout=20)
        print(json.dumps({"connected": True, **_selected_pair(pc)}), flush=True)
    except TimeoutError:
        print(json.dumps({"connected": False, "state": pc.iceConnectionState}), flush=True)
    await reader.readline()
    await pc.close()
    os.unlink(ca.name)


if __name__ == "__main__":
    asyncio.run(main())
