"""Interop check with Debian's Chromium (manual, not part of the test suite).

A Chromium page (fake camera and microphone) joins a room as the caller, an aiortc
peer joins as the handler, and the script checks what the aiortc-only tests cannot:
that Chromium's own VP8 is forwarded untouched, that a recording of it decodes, and
that ``pc.restartIce()`` on Chromium's existing connection, answered by
``Room.renegotiate`` from a fresh server connection, keeps media flowing. Serves the
page on 127.0.0.1 only. Re-run it after any aiortc or Chromium upgrade:

    PYTHONPATH=. .venv/bin/python bench/chromium_check.py

Exit status 0 when every check passed; the last line is machine-readable.
"""

import asyncio
import sys
import tempfile
import time
from pathlib import Path

import av
from aiohttp import web
from playwright.async_api import async_playwright

from media import Room, RoomConfig, RoomEvent
from tests.support.peers import Client, connect, until

PAGE = """<!doctype html><html><body><script>
let pc = null;
async function gathered() {
  if (pc.iceGatheringState === 'complete') return;
  await new Promise(r => pc.addEventListener('icegatheringstatechange',
    () => { if (pc.iceGatheringState === 'complete') r(); }));
}
window.makeOffer = async () => {
  const stream = await navigator.mediaDevices.getUserMedia(
    {video: {width: 640, height: 480}, audio: true});
  pc = new RTCPeerConnection({iceServers: []});
  stream.getTracks().forEach(t => pc.addTrack(t, stream));
  await pc.setLocalDescription(await pc.createOffer());
  await gathered();
  return pc.localDescription.sdp;
};
window.accept = async (sdp) => { await pc.setRemoteDescription({type: 'answer', sdp}); };
window.restart = async () => {
  pc.restartIce();
  await pc.setLocalDescription(await pc.createOffer());
  await gathered();
  return pc.localDescription.sdp;
};
window.state = async () => {
  const out = {};
  (await pc.getStats()).forEach(r => {
    const key = r.type === 'outbound-rtp' ? r.kind : 'in_' + r.kind;
    if (r.type === 'outbound-rtp' || r.type === 'inbound-rtp')
      out[key] = (out[key] || 0) + (r.packetsSent || r.packetsReceived || 0);
  });
  return {connection: pc.connectionState, ...out};
};
</script></body></html>"""

CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--use-fake-device-for-media-stream",
    "--use-fake-ui-for-media-stream",
    "--allow-loopback-in-peer-connection",
    "--autoplay-policy=no-user-gesture-required",
]


async def main() -> int:
    app = web.Application()
    app.router.add_get("/", lambda _: web.Response(text=PAGE, content_type="text/html"))
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    events: list[RoomEvent] = []
    room = Room("chromium", RoomConfig(allow_loopback=True), on_event=events.append)
    handler = Client("handler", video=False)
    results: dict[str, bool] = {}
    try:
        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(
                executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS
            )
            context = await browser.new_context(permissions=["camera", "microphone"])
            page = await context.new_page()
            await page.goto(f"http://127.0.0.1:{port}/")
            offer = await page.evaluate("makeOffer()")
            await page.evaluate("accept", await room.join("caller-1", "caller", offer))
            await connect(room, handler, "handler-1", "handler")
            await until(lambda: handler.video_frames >= 30, timeout=20, what="video")
            track = room.leg("handler-1").outputs("video")[0]
            results["chromium video forwarded untouched"] = (
                handler.video_size == (640, 480) and track.frames_transcoded == 0
            )
            print("handler decodes", handler.video_size, "stats:", (await room.stats())["caller-1"])

            with tempfile.TemporaryDirectory() as tmp:
                await room.start_recording(Path(tmp) / "chromium.webm")
                await asyncio.sleep(3)
                info = await room.stop_recording()
                with av.open(info.path) as container:
                    frames = sum(1 for _ in container.decode(video=0))
                print(f"recording: {info.size_bytes} bytes, {info.duration_s}s, {frames} frames")
                results["recording decodes"] = frames >= 30 and info.video_codec == "vp8"

            answer = await room.renegotiate("caller-1", await page.evaluate("restart()"))
            await page.evaluate("accept", answer)
            await asyncio.sleep(1)
            before = await page.evaluate("state()")
            frames, started = handler.video_frames, time.monotonic()
            await asyncio.sleep(4)
            after = await page.evaluate("state()")
            rate = (handler.video_frames - frames) / (time.monotonic() - started)
            print(f"after restartIce: browser {before} -> {after}; handler {rate:.1f} fps")
            results["restartIce keeps media flowing"] = (
                after["connection"] == "connected"
                and after["video"] > before["video"] + 40
                and after["in_audio"] > before["in_audio"] + 150
                and rate > 5
            )
            await browser.close()
    finally:
        await handler.close()
        await room.close()
        await runner.cleanup()
    for name, ok in results.items():
        print(f"{'ok  ' if ok else 'FAIL'} {name}")
    print(" ".join(f"{name.replace(' ', '_')}={int(ok)}" for name, ok in results.items()))
    return 0 if results and all(results.values()) else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
