"""Load generator: N two-way calls through a running appliance's real signalling.

Each call is made the way people make it: the CAD API creates the incident (API key),
the bench handler takes it, answers the eligibility checklist and makes a video link
(signed-in form posts with CSRF), a caller opens the link and agrees (device cookie),
then both open their WebSockets and join with aiortc peers. Peers send pre-encoded
VP8 640x480 + Opus replayed from a WebM file made once with PyAV (no encoding), and
count the frames they receive without decoding (media.passthrough's receiver tap), so
a call costs this process much less than it costs the server. Both sides send video
and audio: a two-way call, recorded if the server records.

    .venv/bin/python bench/loadgen.py --url https://127.0.0.1:8443 --api-key KEY \\
        --password "a long passphrase for load tests" --calls 8 --ramp 8 --hold 30 --cpus 1

``--cpus`` pins this process (os.sched_setaffinity) away from the server. The last
line printed is a JSON summary.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import fractions
import json
import math
import os
import re
import statistics
import struct
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import av
import uvloop
from aiortc import (
    MediaStreamTrack,
    RTCBundlePolicy,
    RTCConfiguration,
    RTCPeerConnection,
    RTCSessionDescription,
)
from aiortc.mediastreams import MediaStreamError

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from media import passthrough
from tests.support.http import FormClient

WIDTH, HEIGHT, FPS = 640, 480, 20
VIDEO_BITRATE = 700_000
MEDIA_FILE = Path(__file__).resolve().parent / ".cache" / f"call-{WIDTH}x{HEIGHT}-{FPS}fps.webm"


# -- the media, made once ------------------------------------------------------------


def make_media_file(path: Path = MEDIA_FILE, seconds: int = 6) -> Path:
    """A WebM of VP8 640x480 (a keyframe every 2 s) and Opus, encoded once with PyAV."""
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.webm")
    rows = HEIGHT + 256
    luma = b"".join(
        bytes((c + r * 3 + (c * r) // 97) % 256 for c in range(WIDTH)) for r in range(rows)
    )
    chroma = bytes([128]) * (WIDTH * HEIGHT // 4)
    pcm = struct.pack(
        "<960h", *(int(8000 * math.sin(2 * math.pi * 400 * i / 48000)) for i in range(960))
    )
    with av.open(str(tmp), "w", format="webm") as container:
        video = container.add_stream("libvpx", rate=FPS)
        video.width, video.height, video.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        video.bit_rate = VIDEO_BITRATE
        video.codec_context.gop_size = FPS * 2
        video.codec_context.options = {
            "deadline": "realtime",
            "cpu-used": "8",
            "lag-in-frames": "0",
        }
        audio = container.add_stream("libopus", rate=48000)
        audio.bit_rate = 32000
        audio.layout = "mono"
        for n in range(FPS * seconds):
            frame = av.VideoFrame(WIDTH, HEIGHT, "yuv420p")
            offset = (n * 4) % 256 * WIDTH
            frame.planes[0].update(luma[offset : offset + WIDTH * HEIGHT])
            frame.planes[1].update(chroma)
            frame.planes[2].update(chroma)
            frame.pts = n
            container.mux(video.encode(frame))
        container.mux(video.encode(None))
        for n in range(50 * seconds):
            frame = av.AudioFrame(format="s16", layout="mono", samples=960)
            frame.planes[0].update(pcm)
            frame.sample_rate = 48000
            frame.pts = n * 960
            container.mux(audio.encode(frame))
        container.mux(audio.encode(None))
    tmp.rename(path)
    return path


@dataclass
class Packets:
    """The file's encoded packets by kind, and which video packets are keyframes."""

    video: list[bytes]
    audio: list[bytes]
    keyframes: list[int]


def load_packets(path: Path) -> Packets:
    """Demuxed once; the file starts with a keyframe."""
    video: list[bytes] = []
    audio: list[bytes] = []
    keyframes: list[int] = []
    with av.open(str(path)) as container:
        for packet in container.demux():
            if not packet.size:
                continue
            if packet.stream.type == "video":
                if packet.is_keyframe:
                    keyframes.append(len(video))
                video.append(bytes(packet))
            else:
                audio.append(bytes(packet))
    return Packets(video, audio, keyframes)


class ReplayTrack(MediaStreamTrack):
    """Pre-encoded packets at their real-time pace; aiortc's sender packs them as they are.

    A keyframe request (PLI from the server) jumps to the file's first keyframe, as a
    browser's encoder would send one at once, so setup is not a wait for the loop.
    """

    def __init__(
        self, kind: str, packets: list[bytes], rate: float, clock: int, keyframes: list[int]
    ) -> None:
        super().__init__()
        self.kind = kind
        self._packets = packets
        self._rate = rate
        self._clock = clock
        self._keyframes = keyframes
        self._position = 0
        self.keyframe_requests = 0
        self.sent = 0
        self._start: float | None = None

    def keyframe_requested(self) -> None:
        self.keyframe_requests += 1
        if self._keyframes:
            self._position = self._keyframes[0]

    async def recv(self) -> av.Packet:
        if self.readyState != "live":
            raise MediaStreamError
        self._start = self._start or time.monotonic()
        await asyncio.sleep(max(0.0, self._start + self.sent / self._rate - time.monotonic()))
        packet = av.Packet(self._packets[self._position % len(self._packets)])
        self._position += 1
        packet.pts = round(self.sent * self._clock / self._rate)
        packet.time_base = fractions.Fraction(1, self._clock)
        self.sent += 1
        return packet


class Peer:
    """A phone or a handler's browser: sends video and audio, counts what arrives."""

    def __init__(self, packets: Packets) -> None:
        self.pc = RTCPeerConnection(
            RTCConfiguration(iceServers=[], bundlePolicy=RTCBundlePolicy.MAX_BUNDLE)
        )
        self.audio = ReplayTrack("audio", packets.audio, 50, 48000, [])
        self.video = ReplayTrack("video", packets.video, FPS, 90000, packets.keyframes)
        self.pc.addTrack(self.audio)
        passthrough.on_keyframe_request(self.pc.addTrack(self.video), self.video.keyframe_requested)
        self.received = {"audio": 0, "video": 0}
        self.first_video_at: float | None = None
        self.first_video = asyncio.Event()

    async def offer(self) -> str:
        for transceiver in self.pc.getTransceivers():
            passthrough.tap_receiver(transceiver.receiver, self._counter(transceiver.kind))
            # No bandwidth estimate (replayed media cannot follow one): aiortc's REMB
            # estimator is per-packet Python, and the generator must stay cheaper than
            # the server. The server's own receivers keep theirs.
            transceiver.receiver._RTCRtpReceiver__remote_bitrate_estimator = None  # type: ignore[attr-defined]
        passthrough.gather_loopback(self.pc, only=True)
        await self.pc.setLocalDescription(await self.pc.createOffer())
        return self.pc.localDescription.sdp

    def _counter(self, kind: str) -> Any:
        def count(codec: Any, frame: Any) -> None:
            self.received[kind] += 1
            if kind == "video" and self.first_video_at is None:
                self.first_video_at = time.monotonic()
                self.first_video.set()

        return count

    async def accept(self, sdp: str) -> None:
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp, "answer"))

    async def close(self) -> None:
        await self.pc.close()


# -- the appliance, as its users reach it ----------------------------------------------


@dataclass
class Invited:
    incident_id: int
    public_id: str
    token: str
    phone: FormClient


@dataclass
class CallResult:
    public_id: str
    answer_s: float | None = None  # handler's join → its answer (signalling + hand-off)
    setup_s: float | None = None  # handler's join → first caller video frame at the handler
    error: str | None = None
    peers: list[Peer] = field(default_factory=list)
    server_stats: dict[str, Any] = field(default_factory=dict)  # the last per-leg stats
    tasks: list[asyncio.Future[None]] = field(default_factory=list)
    sockets: list[aiohttp.ClientWebSocketResponse] = field(default_factory=list)


class Appliance:
    def __init__(self, url: str, api_key: str, username: str, password: str) -> None:
        self.url = url.rstrip("/")
        self.api_key = api_key
        self.username = username
        self.password = password
        self.handler = FormClient(self.url)
        self.n = 0

    async def sign_in(self) -> None:
        response = await self.handler.sign_in(self.username, self.password)
        if response.status not in (302, 303):
            raise RuntimeError(f"handler sign-in refused ({response.status})")

    async def invite(self) -> Invited:
        self.n += 1
        reference = f"LOAD/{os.getpid()}/{time.time_ns() % 10**9}/{self.n}"
        async with self.handler.session.post(
            f"{self.url}/api/v1/incidents",
            json={
                "cad_reference": reference,
                "grade": 3,
                "category": "Theft",
                "caller_name": "Load Caller",
                "caller_phone": "07700 900123",
            },
            headers={"Authorization": f"Bearer {self.api_key}"},
        ) as response:
            body = await response.json()
            if response.status != 201:
                raise RuntimeError(f"CAD API refused the incident: {body}")
        incident_id = body["id"]
        page = f"/incidents/{incident_id}"
        await self._post(f"{page}/take", {})
        _, html = await self.handler.get(page)
        questions = sorted(set(re.findall(r'name="(q\d+)"', html)))
        await self._post(f"{page}/eligibility", {q: "yes" for q in questions})
        html = await self.make_link(page, "video")
        token = re.search(r"/v/([A-Za-z0-9_\-]+)", html)
        public_id = re.search(r'href="/calls/([A-Za-z0-9_\-]+)"', html)
        if token is None or public_id is None:
            raise RuntimeError("no video link on the incident page")
        phone = FormClient(self.url)
        await phone.get(f"/v/{token.group(1)}")
        response, _ = await phone.post(
            f"/v/{token.group(1)}", {"consent_video": "yes", "consent_recording": "yes"}
        )
        if response.status != 303:
            raise RuntimeError(f"consent refused ({response.status})")
        return Invited(incident_id, public_id.group(1), token.group(1), phone)

    async def make_link(self, page: str, kind: str) -> str:
        """Make a link as the handler does (the form redirects to the incident page, which
        shows the new link) and return that page."""
        response, html = await self.handler.post(
            f"{page}/invites", {"channel": "link", "kind": kind}
        )
        if response.status == 303:
            _, html = await self.handler.get(response.headers["Location"])
        return html

    async def _post(self, path: str, data: dict[str, str]) -> None:
        await self.handler.get(path.rsplit("/", 1)[0] if path.count("/") > 2 else path)
        response, _ = await self.handler.post(path, data)
        if response.status >= 400:
            raise RuntimeError(f"{path} refused ({response.status})")

    def ws_url(self, path: str) -> str:
        return self.url.replace("https://", "wss://") + path

    async def close(self) -> None:
        await self.handler.close()


async def _receive(ws: aiohttp.ClientWebSocketResponse, wanted: str) -> Any:
    async with asyncio.timeout(30):
        while True:
            message = await ws.receive()
            if message.type != aiohttp.WSMsgType.TEXT:
                raise RuntimeError(f"socket closed waiting for {wanted}")
            data = json.loads(message.data)
            if data["type"] == wanted:
                return data
            if data["type"] == "error":
                raise RuntimeError(f"{data['code']}: {data['message']}")


async def start_call(appliance: Appliance, invited: Invited, packets: Packets) -> CallResult:
    """Caller joins, then the handler admits; returns with media flowing (or an error)."""
    result = CallResult(invited.public_id)
    try:
        caller_ws = await invited.phone.session.ws_connect(
            appliance.ws_url(f"/ws/v/{invited.token}")
        )
        result.sockets.append(caller_ws)
        caller = Peer(packets)
        result.peers.append(caller)
        await _receive(caller_ws, "hello")
        await caller_ws.send_json({"type": "join", "sdp": await caller.offer()})
        await caller.accept((await _receive(caller_ws, "answer"))["sdp"])

        handler_ws = await appliance.handler.session.ws_connect(
            appliance.ws_url(f"/ws/calls/{invited.public_id}")
        )
        result.sockets.append(handler_ws)
        handler = Peer(packets)
        result.peers.append(handler)
        await _receive(handler_ws, "hello")
        offer = await handler.offer()
        started = time.monotonic()
        await handler_ws.send_json({"type": "join", "sdp": offer})
        answer = await _receive(handler_ws, "answer")
        result.answer_s = time.monotonic() - started
        await handler.accept(answer["sdp"])
        try:
            await asyncio.wait_for(handler.first_video.wait(), 20)
        except TimeoutError:
            raise RuntimeError("no caller video reached the handler in 20 s") from None
        assert handler.first_video_at is not None
        result.setup_s = handler.first_video_at - started
        result.tasks += [asyncio.ensure_future(_drain(ws, result)) for ws in result.sockets]
    except Exception as exc:  # a failed call is a figure, not a crash
        result.error = f"{type(exc).__name__}: {exc}"
    return result


async def _drain(ws: aiohttp.ClientWebSocketResponse, result: CallResult) -> None:
    """Read stats and events, as a browser does, so the server never blocks; keep stats."""
    with contextlib.suppress(Exception):
        async for message in ws:
            if message.type == aiohttp.WSMsgType.TEXT and '"stats"' in message.data[:20]:
                result.server_stats = json.loads(message.data)["legs"]


async def end_call(result: CallResult, phone: FormClient | None = None) -> None:
    if len(result.sockets) > 1 and not result.sockets[1].closed:
        with contextlib.suppress(Exception):
            await result.sockets[1].send_json({"type": "end"})
            await asyncio.sleep(0.05)
    for ws in result.sockets:
        with contextlib.suppress(Exception):
            await ws.close()
    for peer in result.peers:
        with contextlib.suppress(Exception):
            await peer.close()
    if phone is not None:
        await phone.close()


@dataclass
class Counts:
    sent: int
    received: int

    @property
    def ratio(self) -> float:
        return self.received / self.sent if self.sent else 1.0


def video_counts(calls: list[CallResult]) -> Counts:
    """Video frames the peers sent and the frames their far ends received, summed."""
    sent = received = 0
    for call in calls:
        if len(call.peers) == 2:
            caller, handler = call.peers
            sent += caller.video.sent + handler.video.sent
            received += handler.received["video"] + caller.received["video"]
    return Counts(sent, received)


def describe(call: CallResult) -> str:
    """One call's frames each way, the keyframe requests its senders got, the server's view."""
    caller, handler = call.peers
    server = {
        leg: f"{s['fps_received']} fps in, loss {s['packet_loss_ratio']}/{s['remote_loss_ratio']}"
        for leg, s in call.server_stats.items()
    }
    return (
        f"{call.public_id}: caller→handler {caller.video.sent}/{handler.received['video']}, "
        f"handler→caller {handler.video.sent}/{caller.received['video']} frames; "
        f"PLI to caller {caller.video.keyframe_requests}, to handler "
        f"{handler.video.keyframe_requests}; server {server}"
    )


def cpu_seconds() -> float:
    usage = os.times()
    return usage.user + usage.system


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


async def run(args: argparse.Namespace) -> dict[str, Any]:
    packets = load_packets(make_media_file())
    appliance = Appliance(args.url, args.api_key, args.username, args.password)
    await appliance.sign_in()
    invited = [await appliance.invite() for _ in range(args.calls)]
    results: list[CallResult] = []
    gap = args.ramp / max(1, args.calls)
    for item in invited:
        results.append(await start_call(appliance, item, packets))
        await asyncio.sleep(gap)
    up = [r for r in results if r.error is None]
    before, cpu_before, t0 = video_counts(up), cpu_seconds(), time.monotonic()
    await asyncio.sleep(args.hold)
    after, cpu_after, elapsed = video_counts(up), cpu_seconds(), time.monotonic() - t0
    window = Counts(after.sent - before.sent, after.received - before.received)
    if args.verbose:
        for call in up:
            print(describe(call), file=sys.stderr)
    for result, item in zip(results, invited, strict=True):
        await end_call(result, item.phone)
    await appliance.close()
    setups = [r.setup_s for r in up if r.setup_s is not None]
    return {
        "calls": args.calls,
        "calls_up": len(up),
        "errors": [r.error for r in results if r.error],
        "video_delivered_ratio": round(window.ratio, 4),
        "setup_p50_s": percentile(setups, 50),
        "setup_p95_s": percentile(setups, 95),
        "answer_p50_s": percentile([r.answer_s for r in up if r.answer_s is not None], 50),
        "loadgen_cpu_core_fraction": round((cpu_after - cpu_before) / elapsed, 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--api-key", required=True)
    parser.add_argument("--username", default="loadhandler")
    parser.add_argument("--password", required=True)
    parser.add_argument("--calls", type=int, default=4)
    parser.add_argument("--ramp", type=float, default=4.0, help="seconds over which calls start")
    parser.add_argument("--hold", type=float, default=20.0, help="seconds measured with all up")
    parser.add_argument("--verbose", action="store_true", help="print each call's counts")
    parser.add_argument("--cpus", default="", help="pin to these CPUs, e.g. '1' or '2,3'")
    args = parser.parse_args()
    if args.cpus:
        os.sched_setaffinity(0, {int(c) for c in args.cpus.split(",")})
    print(json.dumps(uvloop.run(run(args))))


if __name__ == "__main__":
    main()
