"""Hostile floods against a running appliance, and what they do to a page staff use.

    .venv/bin/python bench/hostile.py [--seconds 8] [--clients 16] [--json out.json]
        [--flood chat ...] [--profile server.txt]

Starts the appliance as the other benches do (bench/serve.py in its own process, pinned
to the first CPU; this script and the attacker's process on the second), signs a
handler in, and measures the latency of a database-touching page (the handler's
incident list, `/incidents`) one request after another: first with no flood, then
under each flood in turn, each run by ``--clients`` hostile clients for ``--seconds``:

* ``sign-in``: sign-ins for usernames nobody has;
* ``chat``: each client a caller on a call of its own, sending 2000-character chat
  messages as fast as the socket takes them, and reconnecting when the box closes it;
* ``bad API keys``: CAD API requests with forged Bearer keys;
* ``image posts``: each client posting a PNG that declares 16000×16000 pixels to an
  upload link of its own.

It prints p50 and p99 of the page per flood next to the no-flood figures of the same
run (and their ratios), with what the hostile clients were answered. The target is
p99 ≤ 250 ms under every flood. Numbers, not a test: nothing passes or fails.
``--flood`` runs only the floods named; ``--profile`` samples the server with py-spy
(the dev extra) while the floods run, collapsed stacks into that file.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import os
import platform
import re
import signal
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
from aiortc import RTCConfiguration, RTCPeerConnection

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import loadgen
from bench.capacity import Server
from bench.serve import BENCH_PASSWORD, BENCH_USER
from media import passthrough
from tests.support.hostile import png_declaring
from tests.support.http import FormClient

PAGE = "/incidents"
TARGET_P99_MS = 250.0
BOMB = png_declaring(16000, 16000, rows=8)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


async def measure(handler: FormClient, until: float) -> list[float]:
    """The page's latency in ms, one request after another, until ``until``."""
    samples = []
    while time.monotonic() < until:
        started = time.perf_counter()
        async with handler.session.get(handler.base_url + PAGE) as response:
            await response.read()
            if response.status != 200:
                raise RuntimeError(f"{PAGE} answered {response.status}")
        samples.append((time.perf_counter() - started) * 1000)
        await asyncio.sleep(0.02)
    return samples


Flood = Callable[[int, float, collections.Counter[str]], Awaitable[None]]


async def sign_in_flood(url: str, clients: int) -> Flood:
    async def one(n: int, until: float, answers: collections.Counter[str]) -> None:
        client = FormClient(url)
        try:
            await client.get("/login")
            i = 0
            while time.monotonic() < until:
                i += 1
                response, _ = await client.post(
                    "/login", {"username": f"nobody{n}x{i}", "password": "guess"}
                )
                answers[str(response.status)] += 1
        finally:
            await client.close()

    return one


async def api_key_flood(url: str, clients: int) -> Flood:
    async def one(n: int, until: float, answers: collections.Counter[str]) -> None:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=False)) as http:
            i = 0
            while time.monotonic() < until:
                i += 1
                headers = {"Authorization": f"Bearer evr_forged-{n}-{i}"}
                async with http.get(f"{url}/api/v1/incidents", headers=headers) as response:
                    await response.read()
                    answers[str(response.status)] += 1

    return one


async def _caller_joined(appliance: loadgen.Appliance) -> tuple[FormClient, str, Any]:
    """A call whose caller has joined (an aiortc offer on loopback): chat is live."""
    invited = await appliance.invite()
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    pc.addTransceiver("audio")
    pc.addTransceiver("video")
    passthrough.gather_loopback(pc, only=True)
    await pc.setLocalDescription(await pc.createOffer())
    ws = await invited.phone.session.ws_connect(appliance.ws_url(f"/ws/v/{invited.token}"))
    await ws.send_json({"type": "join", "sdp": pc.localDescription.sdp})
    while (await ws.receive_json(timeout=30))["type"] != "answer":
        pass
    return invited.phone, invited.token, (ws, pc)


async def chat_flood(appliance: loadgen.Appliance, clients: int) -> tuple[Flood, list[Any]]:
    joined = [await _caller_joined(appliance) for _ in range(clients)]

    async def one(n: int, until: float, answers: collections.Counter[str]) -> None:
        phone, token, (ws, _) = joined[n]
        while time.monotonic() < until:
            if ws.closed:  # cut off for flooding: come back, as an attacker would
                answers[f"closed {ws.close_code}"] += 1
                ws = await phone.session.ws_connect(appliance.ws_url(f"/ws/v/{token}"))
            reader = asyncio.ensure_future(_count_replies(ws, answers))
            try:
                while time.monotonic() < until and not ws.closed:
                    await ws.send_json({"type": "chat", "text": "x" * 2000})
                    await asyncio.sleep(0)
            except (ConnectionError, RuntimeError):
                pass
            await asyncio.sleep(0.1)
            reader.cancel()
        await ws.close()

    return one, joined


async def _count_replies(
    ws: aiohttp.ClientWebSocketResponse, answers: collections.Counter[str]
) -> None:
    async for message in ws:
        if message.type == aiohttp.WSMsgType.TEXT:
            data = json.loads(message.data)
            if data["type"] in ("chat", "error"):
                answers[data.get("code", "stored")] += 1


async def _upload_link(appliance: loadgen.Appliance) -> tuple[FormClient, str]:
    response = await appliance.handler.session.post(
        f"{appliance.url}/api/v1/incidents",
        json={
            "cad_reference": f"HOSTILE/{time.time_ns()}",
            "grade": 3,
            "category": "Theft",
            "caller_name": "Load Caller",
            "caller_phone": "07700 900123",
        },
        headers={"Authorization": f"Bearer {appliance.api_key}"},
    )
    incident_id = (await response.json())["id"]
    page = f"/incidents/{incident_id}"
    await appliance._post(f"{page}/take", {})
    _, html = await appliance.handler.get(page)
    questions = sorted(set(re.findall(r'name="(q\d+)"', html)))
    await appliance._post(f"{page}/eligibility", {q: "yes" for q in questions})
    html = await appliance.make_link(page, "upload")
    token = re.findall(r"/v/([A-Za-z0-9_\-]+)", html)[-1]
    phone = FormClient(appliance.url)
    await phone.get(f"/v/{token}")
    await phone.post(f"/v/{token}", {"consent": "yes"})
    await phone.get(f"/v/{token}/upload")
    return phone, token


async def image_flood(appliance: loadgen.Appliance, clients: int) -> tuple[Flood, list[Any]]:
    links = [await _upload_link(appliance) for _ in range(clients)]

    async def one(n: int, until: float, answers: collections.Counter[str]) -> None:
        phone, token = links[n]
        while time.monotonic() < until:
            form = aiohttp.FormData()
            form.add_field("csrf_token", phone.csrf)
            form.add_field("files", BOMB, filename="bomb.png", content_type="image/png")
            async with phone.session.post(
                f"{phone.base_url}/v/{token}/upload", data=form, allow_redirects=False
            ) as response:
                await response.read()
                answers[str(response.status)] += 1

    return one, [phone for phone, _ in links]


ORDER = ("chat", "image posts", "bad API keys", "sign-in")  # sign-in last: its throttle


async def attack(
    url: str, api_key: str, clients: int, seconds: float, names: tuple[str, ...] = ORDER
) -> None:
    """The attacker's process: set up, say ``ready``, then run one flood per ``go`` line
    on stdin and print what the box answered as one JSON line."""
    appliance = loadgen.Appliance(url, api_key, BENCH_USER, BENCH_PASSWORD)
    await appliance.sign_in()
    chat, joined = await chat_flood(appliance, clients)
    images, phones = await image_flood(appliance, clients)
    floods: dict[str, Flood] = {
        "chat": chat,
        "image posts": images,
        "bad API keys": await api_key_flood(url, clients),
        "sign-in": await sign_in_flood(url, clients),
    }
    loop = asyncio.get_running_loop()
    print("ready", flush=True)
    for name in names:
        await loop.run_in_executor(None, sys.stdin.readline)
        answers: collections.Counter[str] = collections.Counter()
        until = time.monotonic() + seconds
        outcomes = await asyncio.gather(
            *(floods[name](n, until, answers) for n in range(clients)), return_exceptions=True
        )
        failures = [repr(o) for o in outcomes if isinstance(o, BaseException)][:3]
        print(json.dumps({"answers": dict(answers), "failures": failures}), flush=True)
    for phone, _, (ws, pc) in joined:
        await ws.close()
        await pc.close()
        await phone.close()
    for phone in phones:
        await phone.close()
    await appliance.close()


async def run(args: argparse.Namespace) -> dict[str, Any]:
    cpus = sorted(os.sched_getaffinity(0))
    server_cpus, own_cpus = {cpus[0]}, set(cpus[1:] or cpus)
    os.sched_setaffinity(0, own_cpus)
    server = Server("ours", server_cpus)
    server.start()
    names = tuple(args.flood or ORDER)
    handler = loadgen.Appliance(server.url, server.api_key, BENCH_USER, BENCH_PASSWORD)
    results: dict[str, Any] = {
        "clients": args.clients,
        "seconds": args.seconds,
        "page": PAGE,
        "target_p99_ms": TARGET_P99_MS,
        "machine": {
            "cpu": platform.processor() or platform.machine(),
            "cpus": len(cpus),
            "load_average_before": os.getloadavg()[0],
        },
        "floods": {},
    }
    attacker: asyncio.subprocess.Process | None = None
    try:
        await handler.sign_in()
        for _ in range(5):  # a few incidents for the page to list
            await (await handler.invite()).phone.close()
        await measure(handler.handler, time.monotonic() + 1)  # warm
        results["no_flood"] = _summary(
            await measure(handler.handler, time.monotonic() + args.seconds)
        )
        attacker = await asyncio.create_subprocess_exec(
            sys.executable,
            __file__,
            "--attack",
            server.url,
            server.api_key,
            "--clients",
            str(args.clients),
            "--seconds",
            str(args.seconds),
            *(f"--flood={name}" for name in names),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        assert attacker.stdin is not None and attacker.stdout is not None
        ready = await asyncio.wait_for(attacker.stdout.readline(), 300)
        if ready.strip() != b"ready":
            raise RuntimeError(f"the attacker did not start: {ready!r}")
        profiler = await _profile(server, args.profile) if args.profile else None
        for name in names:
            attacker.stdin.write(b"go\n")
            await attacker.stdin.drain()
            started = time.monotonic()
            await asyncio.sleep(0.5)  # let the flood build
            samples = await measure(handler.handler, started + args.seconds)
            report = json.loads(await attacker.stdout.readline())
            summary = _summary(samples)
            summary["p50_ratio"] = round(summary["p50_ms"] / results["no_flood"]["p50_ms"], 2)
            summary["p99_ratio"] = round(summary["p99_ms"] / results["no_flood"]["p99_ms"], 2)
            summary["hostile_answers"] = report["answers"]
            summary["hostile_failures"] = report["failures"]
            results["floods"][name] = summary
        if profiler is not None:
            profiler.send_signal(signal.SIGINT)
            await profiler.wait()
        await attacker.wait()
        after = await measure(handler.handler, time.monotonic() + args.seconds / 2)
        results["no_flood_after"] = _summary(after)
    finally:
        if attacker is not None and attacker.returncode is None:
            attacker.kill()
            await attacker.wait()
        await handler.close()
        server.stop()
    results["machine"]["load_average_after"] = os.getloadavg()[0]
    return results


async def _profile(server: Server, out: Path) -> asyncio.subprocess.Process:
    assert server.process is not None
    return await asyncio.create_subprocess_exec(
        str(Path(sys.executable).parent / "py-spy"),
        "record",
        "--pid",
        str(server.process.pid),
        "--format",
        "raw",
        "--rate",
        "200",
        "--output",
        str(out),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )


def _summary(samples: list[float]) -> dict[str, Any]:
    return {
        "requests": len(samples),
        "p50_ms": round(percentile(samples, 50), 1),
        "p99_ms": round(percentile(samples, 99), 1),
        "max_ms": round(max(samples), 1),
    }


def table(results: dict[str, Any]) -> str:
    quiet = results["no_flood"]
    lines = [
        f"{PAGE} latency, {results['clients']} hostile clients, {results['seconds']} s each "
        f"(target p99 ≤ {TARGET_P99_MS:.0f} ms)",
        f"{'flood':<14}{'p50 ms':>8}{'p99 ms':>8}{'p50 ×':>7}{'p99 ×':>7}{'pages':>7}  "
        "hostile answers",
        f"{'none':<14}{quiet['p50_ms']:>8}{quiet['p99_ms']:>8}{1:>7}{1:>7}{quiet['requests']:>7}",
    ]
    for name, f in results["floods"].items():
        answers = ", ".join(f"{k}: {v}" for k, v in sorted(f["hostile_answers"].items()))
        mark = "" if f["p99_ms"] <= TARGET_P99_MS else "  (over target)"
        lines.append(
            f"{name:<14}{f['p50_ms']:>8}{f['p99_ms']:>8}{f['p50_ratio']:>7}{f['p99_ratio']:>7}"
            f"{f['requests']:>7}  {answers}{mark}"
        )
    after = results["no_flood_after"]
    lines.append(f"{'none (after)':<14}{after['p50_ms']:>8}{after['p99_ms']:>8}")
    machine = results["machine"]
    lines.append(
        f"load average {machine['load_average_before']:.2f} before, "
        f"{machine['load_average_after']:.2f} after"
    )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--flood", action="append", choices=ORDER, help="only this flood")
    parser.add_argument("--profile", type=Path, help="py-spy the server into this file")
    parser.add_argument("--attack", nargs=2, metavar=("URL", "API_KEY"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.attack:
        asyncio.run(attack(*args.attack, args.clients, args.seconds, tuple(args.flood or ORDER)))
        return
    results = asyncio.run(run(args))
    print(table(results))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
