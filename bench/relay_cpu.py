"""Server CPU per call-second: encoded passthrough relay vs aiortc's decode/re-encode.

Runs N two-party calls (caller: VP8 640x480 15 fps + Opus; handler: Opus) through a
server in a child process, first with ``media.Room`` (passthrough), then with plain
aiortc relaying decoded tracks (MediaRelay -> re-encode), and reads the child's own
CPU time (getrusage, all threads) over a steady window. Clients replay pre-encoded
packets and count received frames without decoding, so the client process stays
light and the server is what is measured. Everything runs over 127.0.0.1.

    .venv/bin/python bench/relay_cpu.py [--calls 2] [--seconds 15]

The last line is machine-readable.
"""

import argparse
import asyncio
import contextlib
import fractions
import json
import math
import resource
import struct
import sys
import time
from typing import Any

import av
from aiortc import MediaStreamTrack, RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.contrib.media import MediaRelay
from aiortc.mediastreams import MediaStreamError

from media import Room, RoomConfig, passthrough

WIDTH, HEIGHT, FPS = 640, 480, 15
VIDEO_BITRATE = 800_000


def encode_video_loop(seconds: int = 2) -> list[bytes]:
    """VP8 packets of a scrolling pattern; the loop starts with a keyframe."""
    encoder = av.CodecContext.create("libvpx", "w")
    encoder.width, encoder.height, encoder.pix_fmt = WIDTH, HEIGHT, "yuv420p"
    encoder.bit_rate = VIDEO_BITRATE
    encoder.time_base = fractions.Fraction(1, 90000)
    encoder.gop_size = FPS * seconds
    encoder.options = {"deadline": "realtime", "cpu-used": "8", "lag-in-frames": "0"}
    rows = HEIGHT + 256
    luma = b"".join(
        bytes((c + r * 3 + (c * r) // 97) % 256 for c in range(WIDTH)) for r in range(rows)
    )
    chroma = bytes([128]) * (WIDTH * HEIGHT // 4)
    packets: list[bytes] = []
    for n in range(FPS * seconds):
        frame = av.VideoFrame(WIDTH, HEIGHT, "yuv420p")
        offset = (n * 4) % 256 * WIDTH
        frame.planes[0].update(luma[offset : offset + WIDTH * HEIGHT])
        frame.planes[1].update(chroma)
        frame.planes[2].update(chroma)
        frame.pts = n * 90000 // FPS
        frame.time_base = fractions.Fraction(1, 90000)
        if n == 0:
            frame.pict_type = av.video.frame.PictureType.I
        packets += [bytes(p) for p in encoder.encode(frame)]
    return packets


def encode_audio_loop() -> list[bytes]:
    """One second of Opus packets (20 ms) of a 400 Hz tone."""
    encoder = av.CodecContext.create("libopus", "w")
    encoder.sample_rate, encoder.format, encoder.layout = 48000, "s16", "mono"
    encoder.bit_rate = 32000
    encoder.time_base = fractions.Fraction(1, 48000)
    pcm = struct.pack(
        "<960h", *(int(8000 * math.sin(2 * math.pi * 400 * i / 48000)) for i in range(960))
    )
    packets: list[bytes] = []
    for n in range(50):
        frame = av.AudioFrame(format="s16", layout="mono", samples=960)
        frame.planes[0].update(pcm)
        frame.sample_rate = 48000
        frame.pts = n * 960
        frame.time_base = fractions.Fraction(1, 48000)
        packets += [bytes(p) for p in encoder.encode(frame)]
    return packets


class ReplayTrack(MediaStreamTrack):
    """Sends pre-encoded packets at their real-time pace (the sender packs them)."""

    def __init__(self, kind: str, packets: list[bytes], rate: float, clock: int) -> None:
        super().__init__()
        self.kind = kind
        self._packets = packets
        self._rate = rate
        self._clock = clock
        self._n = 0
        self._start: float | None = None

    async def recv(self) -> av.Packet:
        if self.readyState != "live":
            raise MediaStreamError
        self._start = self._start or time.monotonic()
        await asyncio.sleep(max(0.0, self._start + self._n / self._rate - time.monotonic()))
        packet = av.Packet(self._packets[self._n % len(self._packets)])
        packet.pts = round(self._n * self._clock / self._rate)
        packet.time_base = fractions.Fraction(1, self._clock)
        self._n += 1
        return packet


class BenchClient:
    """A caller (video + audio) or handler (audio) that counts frames it receives."""

    def __init__(self, video: list[bytes] | None, audio: list[bytes]) -> None:
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.frames = {"audio": 0, "video": 0}
        self.pc.addTrack(ReplayTrack("audio", audio, 50, 48000))
        if video is not None:
            self.pc.addTrack(ReplayTrack("video", video, FPS, 90000))
        else:
            self.pc.addTransceiver("video", direction="recvonly")

    async def offer(self) -> str:
        for transceiver in self.pc.getTransceivers():
            kind = transceiver.kind

            def count(codec: Any, frame: Any, kind: str = kind) -> None:
                self.frames[kind] += 1

            passthrough.tap_receiver(transceiver.receiver, count)
        passthrough.gather_loopback(self.pc, only=True)
        await self.pc.setLocalDescription(await self.pc.createOffer())
        return self.pc.localDescription.sdp

    async def accept(self, sdp: str) -> None:
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp, "answer"))


class FrameProxy(MediaStreamTrack):
    """Baseline server: an outgoing track fed later by another leg's decoded track."""

    def __init__(self, kind: str) -> None:
        super().__init__()
        self.kind = kind
        self.source: MediaStreamTrack | None = None
        self.ready = asyncio.Event()

    def attach(self, track: MediaStreamTrack) -> None:
        self.source = track
        self.ready.set()

    async def recv(self) -> Any:
        await self.ready.wait()
        assert self.source is not None
        return await self.source.recv()


class TranscodeServer:
    """aiortc's default relay: remote tracks decode, outgoing senders re-encode."""

    def __init__(self) -> None:
        self.relay = MediaRelay()
        self.calls: dict[int, dict[str, Any]] = {}

    async def join(self, call: int, leg: str, offer: str) -> str:
        state = self.calls.setdefault(call, {"tracks": {}, "proxies": []})
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        state[leg] = pc

        @pc.on("track")
        def on_track(track: MediaStreamTrack) -> None:
            state["tracks"][(leg, track.kind)] = track
            for want_leg, kind, proxy in state["proxies"]:
                if want_leg == leg and kind == track.kind:
                    proxy.attach(self.relay.subscribe(track))

        await pc.setRemoteDescription(RTCSessionDescription(offer, "offer"))
        other = "handler" if leg == "caller" else "caller"
        for transceiver in pc.getTransceivers():
            proxy = FrameProxy(transceiver.kind)
            transceiver.sender.replaceTrack(proxy)
            transceiver.direction = "sendrecv"
            state["proxies"].append((other, transceiver.kind, proxy))
            if (other, transceiver.kind) in state["tracks"]:
                proxy.attach(self.relay.subscribe(state["tracks"][(other, transceiver.kind)]))
        passthrough.gather_loopback(pc)
        await pc.setLocalDescription(await pc.createAnswer())
        return pc.localDescription.sdp

    async def close(self) -> None:
        for state in self.calls.values():
            for leg in ("caller", "handler"):
                if leg in state:
                    await state[leg].close()


class PassthroughServer:
    def __init__(self) -> None:
        self.rooms: dict[int, Room] = {}

    async def join(self, call: int, leg: str, offer: str) -> str:
        room = self.rooms.setdefault(call, Room(f"bench-{call}", RoomConfig(allow_loopback=True)))
        return await room.join(leg_id=leg, role=leg, offer_sdp=offer)

    async def close(self) -> None:
        for room in self.rooms.values():
            await room.close()


class SampledServer(PassthroughServer):
    """Passthrough plus the appliance's quality sampling (bench/metrics_sampling.py)."""

    def __init__(self, period_s: float) -> None:
        super().__init__()
        from appliance.live.quality import QualityMeter

        self.meter = QualityMeter()
        self.period_s = period_s
        self.samples = 0
        self.task = asyncio.ensure_future(self._sample())

    async def _sample(self) -> None:
        while True:
            await asyncio.sleep(self.period_s)
            batch = []
            for call, room in list(self.rooms.items()):
                batch.extend((str(call), leg) for leg in (await room.stats()).values())
            self.meter.record(batch)
            self.samples += 1

    async def close(self) -> None:
        self.task.cancel()
        await super().close()


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def serve(mode: str) -> None:
    """The child process: answer offers, measure own CPU on request."""
    server: PassthroughServer | TranscodeServer
    if mode.startswith("sampled-"):
        server = SampledServer(float(mode.removeprefix("sampled-")))
    elif mode == "passthrough":
        server = PassthroughServer()
    else:
        server = TranscodeServer()
    while True:
        line = await asyncio.to_thread(sys.stdin.readline)
        if not line:
            break
        request = json.loads(line)
        if request["op"] == "join":
            reply: dict[str, Any] = {
                "answer": await server.join(request["call"], request["leg"], request["offer"])
            }
        elif request["op"] == "measure":
            cpu0, wall0 = cpu_seconds(), time.monotonic()
            await asyncio.sleep(request["seconds"])
            reply = {"cpu_s": cpu_seconds() - cpu0, "wall_s": time.monotonic() - wall0}
        else:
            await server.close()
            print(json.dumps({"bye": True}), flush=True)
            break
        print(json.dumps(reply), flush=True)


class ServerProcess:
    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.proc: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable,
            __file__,
            "--serve",
            self.mode,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )

    async def ask(self, **request: Any) -> dict[str, Any]:
        assert self.proc is not None and self.proc.stdin and self.proc.stdout
        self.proc.stdin.write((json.dumps(request) + "\n").encode())
        await self.proc.stdin.drain()
        return json.loads(await self.proc.stdout.readline())

    async def stop(self) -> None:
        if self.proc is None:
            return
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.ask(op="quit"), 10)
        with contextlib.suppress(ProcessLookupError):
            self.proc.kill()
        await self.proc.wait()


async def run_mode(
    mode: str, calls: int, seconds: float, video: list[bytes], audio: list[bytes]
) -> dict[str, float]:
    server = ServerProcess(mode)
    await server.start()
    callers: list[BenchClient] = []
    handlers: list[BenchClient] = []
    try:
        for call in range(calls):
            caller, handler = BenchClient(video, audio), BenchClient(None, audio)
            for leg, client in (("caller", caller), ("handler", handler)):
                reply = await server.ask(op="join", call=call, leg=leg, offer=await client.offer())
                await client.accept(reply["answer"])
            callers.append(caller)
            handlers.append(handler)
        await asyncio.sleep(4.0)
        video0 = sum(h.frames["video"] for h in handlers)
        measured = await server.ask(op="measure", seconds=seconds)
        fps = (sum(h.frames["video"] for h in handlers) - video0) / measured["wall_s"] / calls
    finally:
        for client in callers + handlers:
            await client.pc.close()
        await server.stop()
    per_call = measured["cpu_s"] / (measured["wall_s"] * calls)
    return {"cpu_s_per_call_s": per_call, "handler_fps": fps, **measured}


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--serve", help="passthrough, transcode or sampled-<period s>")
    args = parser.parse_args()
    if args.serve:
        await serve(args.serve)
        return
    video, audio = encode_video_loop(), encode_audio_loop()
    kbps = sum(map(len, video)) * 8 / 2 / 1000
    print(f"{args.calls} calls, caller VP8 {WIDTH}x{HEIGHT} {FPS} fps ~{kbps:.0f} kbps + Opus")
    results = {}
    for mode in ("passthrough", "transcode"):
        results[mode] = await run_mode(mode, args.calls, args.seconds, video, audio)
        r = results[mode]
        print(
            f"{mode:>11}: {r['cpu_s']:.2f} CPU s over {r['wall_s']:.1f} s = "
            f"{r['cpu_s_per_call_s']:.3f} CPU s per call-second; "
            f"handler sees {r['handler_fps']:.1f} fps"
        )
    x = results["passthrough"]["cpu_s_per_call_s"]
    y = results["transcode"]["cpu_s_per_call_s"]
    print(
        f"relay_cpu_passthrough_s_per_call_s={x:.4f} relay_cpu_transcode_s_per_call_s={y:.4f} "
        f"ratio={y / x:.2f} calls={args.calls}"
    )


if __name__ == "__main__":
    asyncio.run(main())
