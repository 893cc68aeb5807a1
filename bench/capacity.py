"""Capacity: our media plane vs aiortc's default pipeline, same box, same run.

For each pipeline it starts the appliance (bench/serve.py: the real web app, hub,
database and one media worker) pinned to one core, and drives it from this process,
pinned to another core, with bench/loadgen.py's peers: two-way calls (both sides send
VP8 640x480 20 fps + Opus), recorded, made through the CAD API, the handler's forms
and the signalling WebSockets. Calls are added in steps; each step is held and
measured: the server's CPU (web process + worker, from /proc), its memory, and the
share of sent video frames that reached the far end. The step before delivery falls
under 95% (or the server's core is full, or the load generator's is) is the
pipeline's maximum. Prints a table and writes bench/results/latest.json.

    make bench            # or: .venv/bin/python bench/capacity.py [--quick]

Needs two cores. See bench/README.md for how to read the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import uvloop

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import loadgen
from bench.serve import BENCH_PASSWORD, BENCH_USER

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "latest.json"
TICKS = os.sysconf("SC_CLK_TCK")
DELIVERY_FLOOR = 0.95
# Below this the load generator could not keep its peers at 20 fps: the step measured
# less load than it claims, so it does not count and the run stops there.
OFFERED_FLOOR = 0.95
SCHEDULES = {
    "ours": [1, 2, 4, 6, 8, 10, 12, 16, 20, 24, 28, 32, 36, 40],
    "baseline": [1, 2, 3, 4, 5, 6, 8],
}


@dataclass
class Step:
    calls: int
    server_cpu: float  # cores used by web process + workers over the window
    loadgen_cpu: float
    server_wait: float  # seconds per second its threads waited for a CPU (starved if high)
    offered: float  # video frames the peers sent ÷ what 20 fps each way would be
    delivered: float
    rss_mb: float
    errors: int
    ok: bool


@dataclass
class Result:
    pipeline: str
    idle_cpu: float = 0.0
    idle_rss_mb: float = 0.0
    steps: list[Step] = field(default_factory=list)
    setups: list[float] = field(default_factory=list)
    answers: list[float] = field(default_factory=list)
    limited_by: str = "schedule"

    def best(self) -> Step | None:
        passing = [s for s in self.steps if s.ok]
        return passing[-1] if passing else None

    def summary(self) -> dict[str, Any]:
        best = self.best()
        first = self.steps[0] if self.steps else None
        # With no step at >= 95% (a busy machine), the first step still says what a call
        # costs; "cpu_from_failed_step" says so.
        measured = best or first
        per_call_cpu = per_call_mb = None
        if measured is not None:
            per_call_cpu = max(0.0, measured.server_cpu - self.idle_cpu) / measured.calls
            if first is not None and measured.calls > first.calls:
                per_call_mb = (measured.rss_mb - first.rss_mb) / (measured.calls - first.calls)
            else:
                per_call_mb = measured.rss_mb - self.idle_rss_mb
        return {
            "max_calls": best.calls if best else 0,
            "limited_by": self.limited_by,
            "cpu_from_failed_step": best is None and first is not None,
            "cpu_core_fraction_per_call": _round(per_call_cpu),
            "cpu_s_per_call_minute": _round(per_call_cpu * 60 if per_call_cpu else None),
            "memory_mb_per_call": _round(per_call_mb),
            "setup_p50_s": _round(loadgen.percentile(self.setups, 50)),
            "setup_p95_s": _round(loadgen.percentile(self.setups, 95)),
            "answer_p50_s": _round(loadgen.percentile(self.answers, 50)),
            "answer_p95_s": _round(loadgen.percentile(self.answers, 95)),
            "idle_cpu_cores": _round(self.idle_cpu),
            "steps": [asdict(s) for s in self.steps],
        }


def _round(value: float | None, digits: int = 4) -> float | None:
    return None if value is None else round(value, digits)


def _tree(pid: int) -> list[int]:
    """``pid`` and its descendants (the media workers)."""
    pids, todo = [], [pid]
    while todo:
        current = todo.pop()
        pids.append(current)
        with contextlib.suppress(OSError):
            children = Path(f"/proc/{current}/task/{current}/children").read_text().split()
            todo += [int(c) for c in children]
    return pids


def tree_cpu_seconds(pid: int) -> float:
    total = 0
    for p in _tree(pid):
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
    return total / TICKS


def tree_wait_seconds(pid: int) -> float:
    """Time the server's threads spent runnable but waiting for a CPU (schedstat)."""
    total = 0
    for p in _tree(pid):
        with contextlib.suppress(OSError):
            for task in Path(f"/proc/{p}/task").iterdir():
                total += int((task / "schedstat").read_text().split()[1])
    return total / 1e9


def tree_rss_mb(pid: int) -> float:
    total = 0
    for p in _tree(pid):
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
    return total / 1024


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, pipeline: str, cpus: set[int]) -> None:
        self.pipeline = pipeline
        self.cpus = cpus
        self.dir = Path(tempfile.mkdtemp(prefix=f"evr-bench-{pipeline}-"))
        self.port = free_port()
        self.url = f"https://127.0.0.1:{self.port}"
        self.log = open(self.dir / "server.log", "w")  # noqa: SIM115
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        env = {
            **os.environ,
            "EVR_DATA_DIR": str(self.dir / "var"),
            "EVR_PORT": str(self.port),
            "EVR_HOST": "127.0.0.1",
            "EVR_PUBLIC_URL": self.url,
            "EVR_MEDIA_ALLOW_LOOPBACK": "true",
            "EVR_MEDIA_WORKERS": "1",
            "EVR_MIN_FREE_BYTES": "0",
            "EVR_LOG_LEVEL": "WARNING",
        }
        cpus = self.cpus
        self.process = subprocess.Popen(
            [sys.executable, str(ROOT / "bench" / "serve.py"), "--pipeline", self.pipeline],
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            preexec_fn=lambda: os.sched_setaffinity(0, cpus),
        )
        deadline = time.monotonic() + 60
        key = self.dir / "var" / "bench-api-key"
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited: {(self.dir / 'server.log').read_text()}")
            if key.exists():
                with (
                    contextlib.suppress(OSError),
                    socket.create_connection(("127.0.0.1", self.port), 0.2),
                ):
                    self.api_key = key.read_text().strip()
                    return
            time.sleep(0.1)
        raise RuntimeError("server did not start in 60 s")

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                for p in reversed(_tree(self.process.pid)):
                    with contextlib.suppress(OSError):
                        os.kill(p, signal.SIGKILL)
                self.process.wait()
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)


async def measure(
    pipeline: str,
    schedule: list[int],
    server_cpus: set[int],
    settle_s: float,
    window_s: float,
    deadline: float,
) -> Result:
    result = Result(pipeline)
    server = Server(pipeline, server_cpus)
    server.start()
    packets = loadgen.load_packets(loadgen.make_media_file())
    appliance = loadgen.Appliance(server.url, server.api_key, BENCH_USER, BENCH_PASSWORD)
    live: list[tuple[loadgen.CallResult, loadgen.Invited]] = []
    invited: list[loadgen.Invited] = []
    try:
        await appliance.sign_in()
        for _ in range(schedule[-1] + 1):
            invited.append(await appliance.invite())
        # One call made and ended first: the worker process is started (workers start on
        # first use) and warm, so idle figures include it and per-call ones do not.
        warm_up = invited.pop()
        await loadgen.end_call(await loadgen.start_call(appliance, warm_up, packets), warm_up.phone)
        await asyncio.sleep(2.0)
        cpu0, t0 = tree_cpu_seconds(server.pid), time.monotonic()
        await asyncio.sleep(3.0)
        result.idle_cpu = (tree_cpu_seconds(server.pid) - cpu0) / (time.monotonic() - t0)
        result.idle_rss_mb = tree_rss_mb(server.pid)
        for target in schedule:
            if time.monotonic() > deadline:
                result.limited_by = "time budget"
                break
            added: list[loadgen.CallResult] = []
            while len(live) < target:
                item = invited[len(live)]
                call = await loadgen.start_call(appliance, item, packets)
                live.append((call, item))
                added.append(call)
            await asyncio.sleep(settle_s)
            up = [c for c, _ in live if c.error is None]
            before = loadgen.video_counts(up)
            cpu_s, lg_s = tree_cpu_seconds(server.pid), loadgen.cpu_seconds()
            wait_s, t0 = tree_wait_seconds(server.pid), time.monotonic()
            await asyncio.sleep(window_s)
            elapsed = time.monotonic() - t0
            after = loadgen.video_counts(up)
            window = loadgen.Counts(after.sent - before.sent, after.received - before.received)
            errors = sum(1 for c, _ in live if c.error is not None)
            offered = window.sent / (len(up) * 2 * loadgen.FPS * elapsed) if up else 0.0
            step = Step(
                calls=target,
                server_cpu=round((tree_cpu_seconds(server.pid) - cpu_s) / elapsed, 4),
                loadgen_cpu=round((loadgen.cpu_seconds() - lg_s) / elapsed, 4),
                server_wait=round((tree_wait_seconds(server.pid) - wait_s) / elapsed, 4),
                offered=round(offered, 4),
                delivered=round(window.ratio, 4),
                rss_mb=round(tree_rss_mb(server.pid), 1),
                errors=errors,
                ok=errors == 0 and window.ratio >= DELIVERY_FLOOR and offered >= OFFERED_FLOOR,
            )
            result.steps.append(step)
            print(
                f"  {pipeline:8} {target:3} calls: server {step.server_cpu:5.2f} cores, "
                f"waiting for a CPU {step.server_wait:4.2f}, loadgen {step.loadgen_cpu:4.2f}, "
                f"video sent {step.offered:6.1%} of 20 fps, delivered {step.delivered:6.1%}, "
                f"RSS {step.rss_mb:6.0f} MB, errors {errors}",
                flush=True,
            )
            if step.ok:
                result.setups += [c.setup_s for c in added if c.setup_s is not None]
                result.answers += [c.answer_s for c in added if c.answer_s is not None]
            if not step.ok:
                result.limited_by = "delivery" if not errors else "call errors"
                if offered < OFFERED_FLOOR and not errors:
                    result.limited_by = "load generator core full"
                if errors:
                    print("   ", [c.error for c, _ in live if c.error][:3])
                break
            if step.server_cpu >= 0.97:
                result.limited_by = "server core full"
                break
            if step.loadgen_cpu >= 0.9 or step.offered < OFFERED_FLOOR:
                result.limited_by = "load generator core full"
                break
    finally:
        for call, item in live:
            await loadgen.end_call(call, item.phone)
        for item in invited[len(live) :]:
            await item.phone.close()
        await appliance.close()
        server.stop()
    return result


def table(results: dict[str, dict[str, Any]], ratio: float | None) -> str:
    rows = [
        ("max two-way recorded calls (1 core)", "max_calls", "{}"),
        ("limited by", "limited_by", "{}"),
        ("server CPU per call (cores)", "cpu_core_fraction_per_call", "{:.3f}"),
        ("server CPU s per call-minute", "cpu_s_per_call_minute", "{:.1f}"),
        ("memory per call (MB)", "memory_mb_per_call", "{:.1f}"),
        ("setup p50 (s)", "setup_p50_s", "{:.2f}"),
        ("setup p95 (s)", "setup_p95_s", "{:.2f}"),
        ("answer p50 (s, signalling + hand-off)", "answer_p50_s", "{:.3f}"),
    ]
    lines = [f"{'':40} {'ours':>12} {'baseline':>12}"]
    for label, key, fmt in rows:
        cells = []
        for name in ("ours", "baseline"):
            value = results[name].get(key)
            cells.append("-" if value is None else fmt.format(value))
        lines.append(f"{label:40} {cells[0]:>12} {cells[1]:>12}")
    lines.append(
        f"{'calls per core, ours / baseline':40} {ratio if ratio is not None else '-':>12}"
    )
    return "\n".join(lines)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short steps (a smoke run)")
    parser.add_argument("--budget", type=float, default=540, help="seconds for the whole run")
    args = parser.parse_args()
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        raise SystemExit("capacity needs two cores: one for the server, one for the load")
    server_cpus, load_cpus = {cpus[0]}, {cpus[1]}
    os.sched_setaffinity(0, load_cpus)
    settle, window = (2.0, 4.0) if args.quick else (3.0, 8.0)
    started = time.monotonic()
    loadgen.make_media_file()
    load_before = os.getloadavg()
    results: dict[str, Result] = {}
    # The baseline first: it fills a core in a few calls, so its share of the budget is small.
    for pipeline, share in (("baseline", 0.35), ("ours", 1.0)):
        deadline = started + args.budget * share
        print(f"{pipeline}: server on CPU {server_cpus}, load generator on CPU {load_cpus}")
        schedule = SCHEDULES[pipeline][:4] if args.quick else SCHEDULES[pipeline]
        results[pipeline] = await measure(pipeline, schedule, server_cpus, settle, window, deadline)
    summaries = {name: r.summary() for name, r in results.items()}
    ours, base = summaries["ours"], summaries["baseline"]
    ratio = round(ours["max_calls"] / base["max_calls"], 2) if base["max_calls"] else None
    cpu_ratio = None
    if ours["cpu_core_fraction_per_call"] and base["cpu_core_fraction_per_call"]:
        cpu_ratio = round(
            base["cpu_core_fraction_per_call"] / ours["cpu_core_fraction_per_call"], 2
        )
    report = {
        "ours": ours,
        "baseline": base,
        "calls_per_core_ratio": ratio,
        "cpu_per_call_ratio": cpu_ratio,
        "machine": {
            "cpus": os.cpu_count(),
            "model": _cpu_model(),
            "python": platform.python_version(),
            "load_average_before": [round(x, 2) for x in load_before],
            "load_average_after": [round(x, 2) for x in os.getloadavg()],
        },
        "media": {"width": loadgen.WIDTH, "height": loadgen.HEIGHT, "fps": loadgen.FPS},
        "run_seconds": round(time.monotonic() - started, 1),
        "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    print()
    print(table(summaries, ratio))
    print(f"{'CPU per call, baseline / ours':40} {cpu_ratio if cpu_ratio is not None else '-':>12}")
    print(
        f"load average before/after: {report['machine']['load_average_before']} / "
        f"{report['machine']['load_average_after']}; {report['run_seconds']} s; "
        f"written to {RESULTS.relative_to(ROOT)}"
    )


def _cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor()


if __name__ == "__main__":
    uvloop.run(main())
