"""A caller's video on a bad line: through the box against browser to browser, measured.

Two Debian Chromium pages make the call the product makes: the caller's camera is a
frame-numbered clip (each frame carries its number in a strip of black and white
blocks), the console shows what arrives. Each page reads the number off every frame it
paints (``requestVideoFrameCallback``, the frame drawn to a canvas and the blocks read
back): the caller off its own preview (the moment the camera's frame is on its screen),
the console off the remote video. Glass to glass is the time between the two paints of
one frame, on one machine's clock; a freeze, the longest gap between two paints on the
console. Delivery is counted on frames, not paints (a screen refreshing at 60 Hz skips a
30 fps frame now and then, on a direct call too): each page also reads every frame its
track gives out (``MediaStreamTrackProcessor``: the camera's, and the console's
decoder's), and delivery is the share of the camera's frames the console decoded.
Nothing is read from the product's statistics.

* **box**: caller → ``media.Room`` (the box's relay, in a media worker process as
  ``evr serve`` runs it, with the appliance's defaults) → console; both hops are UDP on
  loopback.
* **direct**: the same two pages connected to each other, one hop.

Loss is an nftables rule inside this network namespace (``numgen random``; this kernel
has no ``tc netem``, so no added jitter) that drops that share of every UDP packet on
loopback: each hop loses it, so the box's two hops lose about twice what the direct
call's one does. Per loss level and path it reports the share of the caller's painted
frames the console painted, glass-to-glass median and 95th percentile, and the longest
freeze (gap between two paints on the console). Results: ``bench/results/impairment.json``.

    make bench-impairment        # as root: in a network namespace of its own
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from aiohttp import web
from playwright.async_api import Browser, Page, async_playwright

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from media import RoomConfig
from media.workers import RoomProxy, WorkerPool
from tests.support.browser import CHROMIUM_ARGS

WIDTH, HEIGHT, FPS, CLIP_FRAMES = 640, 480, 30, 300
BITS, BLOCK, STRIP_Y = 12, 48, 8
TABLE = "evr_bench_loss"
RESULTS = Path(__file__).parent / "results" / "impairment.json"

# What #18 asks of the box on this 2-core machine (bench/README.md).
TARGETS = {
    "10": {"delivery_min": 0.95, "g2g_median_ms_max": 250, "g2g_p95_ms_max": 500},
    "3": {"g2g_p95_ms_max": 200, "longest_freeze_ms_max": 500},
    "0": {"median_within_ms_of_direct": 40},
}


PAGE = """<!doctype html><html><body>
<video id="local" autoplay muted playsinline></video>
<video id="remote" autoplay muted playsinline></video>
<script>
const BITS = @BITS@, BLOCK = @BLOCK@, STRIP_Y = @STRIP_Y@;
let pc = null, stream = null;
window.paints = [];
window.frames = [];
const canvas = new OffscreenCanvas(BITS * BLOCK, BLOCK);
const ctx = canvas.getContext('2d', {willReadFrequently: true});
function readNumber(video, w, h) {
  if (!w || !h) return null;
  // The strip as sent is BITS blocks of BLOCK px across the top of a 640x480 frame; a
  // smaller picture (the encoder scaled it down) is read at the same proportions.
  const sx = w / @WIDTH@, sy = h / @HEIGHT@;
  ctx.drawImage(video, 0, STRIP_Y * sy, BITS * BLOCK * sx, BLOCK * sy, 0, 0, BITS * BLOCK, BLOCK);
  const row = ctx.getImageData(0, BLOCK / 2, BITS * BLOCK, 1).data;
  let n = 0;
  for (let b = 0; b < BITS; b++) {
    const i = (b * BLOCK + BLOCK / 2) * 4;
    n = (n << 1) | (row[i] > 128 ? 1 : 0);
  }
  return n;
}
// Every frame the track delivers (the camera's, or the decoder's), painted or not.
async function count(track) {
  const reader = new MediaStreamTrackProcessor({track}).readable.getReader();
  for (;;) {
    const {value: frame, done} = await reader.read();
    if (done) return;
    const at = performance.timeOrigin + performance.now();
    const n = readNumber(frame, frame.displayWidth, frame.displayHeight);
    frame.close();
    if (n !== null) window.frames.push([n, at]);
  }
}
// Every frame painted on the screen, when it is.
function watch(video) {
  const step = (now, meta) => {
    const n = readNumber(video, video.videoWidth, video.videoHeight);
    if (n !== null) window.paints.push([n, performance.timeOrigin + meta.expectedDisplayTime]);
    video.requestVideoFrameCallback(step);
  };
  video.requestVideoFrameCallback(step);
}
async function gathered() {
  if (pc.iceGatheringState === 'complete') return;
  await new Promise(r => pc.addEventListener('icegatheringstatechange',
    () => { if (pc.iceGatheringState === 'complete') r(); }));
}
window.start = async (watchLocal) => {
  stream = await navigator.mediaDevices.getUserMedia(
    {video: {width: @WIDTH@, height: @HEIGHT@, frameRate: @FPS@}, audio: true});
  const local = document.getElementById('local');
  local.srcObject = stream;
  if (watchLocal) { watch(local); count(stream.getVideoTracks()[0]); }
  pc = new RTCPeerConnection({iceServers: []});
  stream.getTracks().forEach(t => pc.addTrack(t, stream));
  pc.ontrack = (e) => {
    const remote = document.getElementById('remote');
    if (e.track.kind === 'video' && !watchLocal && !window.counting) {
      window.counting = true;
      count(e.track);
    }
    if (remote.srcObject !== e.streams[0]) {
      remote.srcObject = e.streams[0];
      if (!watchLocal) watch(remote);
    }
  };
};
window.offer = async () => {
  await pc.setLocalDescription(await pc.createOffer());
  await gathered();
  return pc.localDescription.sdp;
};
window.answer = async (sdp) => {
  await pc.setRemoteDescription({type: 'offer', sdp});
  await pc.setLocalDescription(await pc.createAnswer());
  await gathered();
  return pc.localDescription.sdp;
};
window.accept = async (sdp) => { await pc.setRemoteDescription({type: 'answer', sdp}); };
window.take = () => {
  const taken = {paints: window.paints, frames: window.frames};
  window.paints = [];
  window.frames = [];
  return taken;
};
window.connected = () => pc && pc.connectionState === 'connected';
window.stop = () => { if (pc) pc.close(); stream.getTracks().forEach(t => t.stop()); };
</script></body></html>"""
for _name, _value in {
    "BITS": BITS,
    "BLOCK": BLOCK,
    "STRIP_Y": STRIP_Y,
    "WIDTH": WIDTH,
    "HEIGHT": HEIGHT,
    "FPS": FPS,
}.items():
    PAGE = PAGE.replace(f"@{_name}@", str(_value))


@dataclass
class Measured:
    delivery: float
    g2g_median_ms: float | None
    g2g_p95_ms: float | None
    longest_freeze_ms: float | None
    caller_frames: int
    console_frames: int
    dropped_packets: int


def numbered_clip(directory: Path) -> Path:
    """A looping Y4M clip: each frame's number in a strip of blocks (white = 1), above a
    moving gradient so the encoder has a picture's work to do."""
    import numpy as np

    path = directory / f"numbered-{WIDTH}x{HEIGHT}-{FPS}.y4m"
    if path.exists():
        return path
    rows = np.arange(HEIGHT, dtype=np.int32)[:, None]
    cols = np.arange(WIDTH, dtype=np.int32)[None, :]
    chroma = np.full(WIDTH * HEIGHT // 2, 128, dtype=np.uint8).tobytes()
    with path.open("wb") as out:
        out.write(f"YUV4MPEG2 W{WIDTH} H{HEIGHT} F{FPS}:1 Ip A1:1 C420jpeg\n".encode())
        for n in range(CLIP_FRAMES):
            luma = ((cols + rows * 3 + n * 6 + (cols * rows) // 97) % 200 + 28).astype(np.uint8)
            luma[STRIP_Y - 4 : STRIP_Y + BLOCK + 4, : BITS * BLOCK + 4] = 128
            for bit in range(BITS):
                on = (n >> (BITS - 1 - bit)) & 1
                luma[STRIP_Y : STRIP_Y + BLOCK, bit * BLOCK : (bit + 1) * BLOCK] = 235 if on else 16
            out.write(b"FRAME\n" + luma.tobytes() + chroma)
    return path


def set_loss(percent: int) -> None:
    """Drop ``percent``% of all UDP on loopback (each hop), or none."""
    subprocess.run(["nft", "delete", "table", "inet", TABLE], capture_output=True)
    if percent <= 0:
        return
    rules = f"""
table inet {TABLE} {{
    chain input {{
        type filter hook input priority 0; policy accept;
        iif "lo" meta l4proto udp numgen random mod 100 < {percent} counter drop
    }}
}}
"""
    subprocess.run(["nft", "-f", "-"], input=rules, text=True, check=True)


def dropped() -> int:
    listed = subprocess.run(
        ["nft", "-j", "list", "table", "inet", TABLE], capture_output=True, text=True
    )
    if listed.returncode != 0:
        return 0
    total = 0
    for item in json.loads(listed.stdout)["nftables"]:
        for expr in item.get("rule", {}).get("expr", []):
            if "counter" in expr:
                total += expr["counter"]["packets"]
    return total


def summarise(
    sent: list[list[float]], shown: list[list[float]], window: tuple[float, float]
) -> tuple[float, list[float], float | None, int]:
    """Match each console paint to the caller's latest earlier paint of that number (the
    clip loops every 10 s; glass to glass is far shorter). Returns delivery, the
    glass-to-glass delays in ms, the longest freeze in ms, and the caller's frame count."""
    start, end = window
    by_number: dict[int, list[float]] = {}
    for number, at in sent:
        by_number.setdefault(int(number), []).append(at)
    first_shown: dict[tuple[int, float], float] = {}
    for number, at in shown:
        earlier = [t for t in by_number.get(int(number), []) if 0 <= at - t < 5000]
        if earlier:
            key = (int(number), max(earlier))
            first_shown.setdefault(key, at)
    counted = [(int(n), t) for n, t in sent if start <= t <= end - 2000]
    if not counted:
        return 0.0, [], None, 0
    delays = [first_shown[key] - key[1] for key in counted if key in first_shown]
    painted = sorted(t for _, t in shown if start <= t <= end)
    gaps = [b - a for a, b in itertools.pairwise(painted)]
    freeze = max(gaps) if gaps else None
    return len(delays) / len(counted), delays, freeze, len(counted)


async def measure(caller: Page, console: Page, seconds: float, loss: int) -> Measured:
    set_loss(loss)
    await asyncio.sleep(3)  # the jitter buffers and the encoders settle at this loss
    await caller.evaluate("take()")
    await console.evaluate("take()")
    start = time.time() * 1000
    await asyncio.sleep(seconds)
    end = time.time() * 1000
    sent = await caller.evaluate("take()")
    await asyncio.sleep(2)  # what was on its way arrives
    shown = await console.evaluate("take()")
    count = dropped()
    set_loss(0)
    # Delivery: of the camera's frames, those the console's decoder gave out. Latency and
    # freezes: as painted on the two screens.
    delivery, _, _, frames = summarise(sent["frames"], shown["frames"], (start, end))
    _, delays, freeze, _ = summarise(sent["paints"], shown["paints"], (start, end))
    return Measured(
        delivery=round(delivery, 4),
        g2g_median_ms=round(statistics.median(delays), 1) if delays else None,
        g2g_p95_ms=round(statistics.quantiles(delays, n=20)[18], 1) if len(delays) > 20 else None,
        longest_freeze_ms=round(freeze, 1) if freeze is not None else None,
        caller_frames=frames,
        console_frames=len([1 for _, t in shown["frames"] if start <= t <= end]),
        dropped_packets=count,
    )


async def connected(*pages: Page) -> None:
    deadline = time.monotonic() + 30
    while not all([await page.evaluate("connected()") for page in pages]):
        if time.monotonic() > deadline:
            raise RuntimeError("the call did not connect")
        await asyncio.sleep(0.2)


async def sample(room: RoomProxy) -> None:
    """Read the room's stats every 2 s, as the appliance's sampler does (the legs' round
    trips pace the box's repeated NACKs)."""
    while True:
        await asyncio.sleep(2)
        await room.stats()


async def run_path(
    pool: WorkerPool, browser: Browser, url: str, path: str, levels: list[int], seconds: float
) -> dict[int, Measured]:
    caller_context = await browser.new_context(permissions=["camera", "microphone"])
    console_context = await browser.new_context(permissions=["camera", "microphone"])
    caller, console = await caller_context.new_page(), await console_context.new_page()
    await caller.goto(url)
    await console.goto(url)
    await caller.evaluate("start(true)")
    await console.evaluate("start(false)")
    room = pool.room(f"bench-{path}", RoomConfig(allow_loopback=True)) if path == "box" else None
    results: dict[int, Measured] = {}
    sampler: asyncio.Future[None] | None = None
    try:
        if room is not None:
            await caller.evaluate(
                "accept", await room.join("caller-1", "caller", await caller.evaluate("offer()"))
            )
            await console.evaluate(
                "accept", await room.join("handler-1", "handler", await console.evaluate("offer()"))
            )
        else:
            answer = await console.evaluate("answer", await caller.evaluate("offer()"))
            await caller.evaluate("accept", answer)
        await connected(caller, console)
        if room is not None:
            sampler = asyncio.ensure_future(sample(room))
        await asyncio.sleep(3)
        for loss in levels:
            results[loss] = await measure(caller, console, seconds, loss)
            print(f"{path:6} {loss:3}% {asdict(results[loss])}", flush=True)
    finally:
        set_loss(0)
        if sampler is not None:
            sampler.cancel()
        await caller.evaluate("stop()")
        await console.evaluate("stop()")
        if room is not None:
            await room.close()
        await caller_context.close()
        await console_context.close()
    return results


def judged(levels: dict[str, dict[str, Any]]) -> dict[str, dict[str, bool]]:
    """Each target of #18 against the box's figures: met or not."""
    verdicts: dict[str, dict[str, bool]] = {}
    for level, target in TARGETS.items():
        if level not in levels:
            continue
        box, direct = levels[level]["box"], levels[level]["direct"]
        checks: dict[str, bool] = {}
        if "delivery_min" in target:
            checks["delivery"] = box["delivery"] >= target["delivery_min"]
        for name in ("g2g_median_ms", "g2g_p95_ms", "longest_freeze_ms"):
            limit = target.get(f"{name}_max")
            if limit is not None:
                checks[name] = box[name] is not None and box[name] <= limit
        if "median_within_ms_of_direct" in target:
            checks["median_vs_direct"] = (
                box["g2g_median_ms"] is not None
                and direct["g2g_median_ms"] is not None
                and box["g2g_median_ms"] - direct["g2g_median_ms"]
                <= target["median_within_ms_of_direct"]
            )
        verdicts[level] = checks
    return verdicts


async def main(levels: list[int], seconds: float) -> int:
    interfaces = [name for _, name in socket.if_nameindex()]
    if interfaces != ["lo"]:
        print(
            f"run inside a network namespace of its own (make bench-impairment), not {interfaces}"
        )
        return 2
    scratch = Path(tempfile.gettempdir())
    clip = numbered_clip(scratch)
    app = web.Application()
    app.router.add_get("/", lambda _: web.Response(text=PAGE, content_type="text/html"))
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    url = f"http://127.0.0.1:{runner.addresses[0][1]}/"
    by_path: dict[str, dict[int, Measured]] = {}
    # The box's relay in a media worker process of its own, as `evr serve` runs it (in
    # this process it would share a loop with the Playwright driver).
    pool = WorkerPool(1)
    try:
        async with async_playwright() as playwright:
            # The desktop chromium, not the suite's headless shell: the paint times are
            # those of the browser a person runs (bench/results/impairment.json's were).
            browser = await playwright.chromium.launch(
                executable_path="/usr/bin/chromium",
                args=[
                    *CHROMIUM_ARGS,
                    "--disable-background-timer-throttling",
                    f"--use-file-for-fake-video-capture={clip}",
                ],
            )
            for path in ("direct", "box"):
                by_path[path] = await run_path(pool, browser, url, path, levels, seconds)
            await browser.close()
    finally:
        await pool.stop()
        await runner.cleanup()
    table = {
        str(loss): {path: asdict(by_path[path][loss]) for path in ("box", "direct")}
        for loss in levels
    }
    report = {
        "what": "caller's video through the box and browser to browser, per UDP loss per hop",
        "machine": {
            "cpus": len(os.sched_getaffinity(0)),
            "python": platform.python_version(),
        },
        "clip": {"width": WIDTH, "height": HEIGHT, "fps": FPS},
        "seconds_per_level": seconds,
        "loss_percent_per_hop": table,
        "targets": TARGETS,
        "met": judged(table),
    }
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report["met"]))
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--loss", type=int, nargs="+", default=[0, 3, 10])
    parser.add_argument("--seconds", type=float, default=20.0)
    args = parser.parse_args()
    sys.exit(asyncio.run(main(args.loss, args.seconds)))
