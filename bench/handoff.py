"""Signalling latency through the hand-off to a media worker, side by side with in-process.

Times the calls the hub makes on a room: ``join`` (offer in, whole answer out: ICE
gathering, DTLS set-up and the SDP included) and ``stats``, first on a
:class:`media.Room` in this process, then on a :class:`media.workers.RoomProxy` whose
room lives in a worker process. The difference is what the socketpair, pickling and
the worker's event loop add. Loopback only; each join is a fresh aiortc client.

    .venv/bin/python bench/handoff.py [--joins 30]

The last line is machine-readable.
"""

import argparse
import asyncio
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from media import Room, RoomConfig
from media.workers import WorkerPool
from tests.support.peers import Client

CONFIG = RoomConfig(ice_servers=[], allow_loopback=True)


def summary(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {
        "p50_ms": round(statistics.median(ordered) * 1000, 2),
        "p95_ms": round(ordered[max(0, round(0.95 * len(ordered)) - 1)] * 1000, 2),
    }


async def measure(make_room: Any, joins: int) -> dict[str, dict[str, float]]:
    join_times: list[float] = []
    stats_times: list[float] = []
    for n in range(joins):
        room = make_room(f"room-{n}")
        client = Client("caller")
        try:
            offer = await client.offer()
            started = time.perf_counter()
            answer = await room.join("caller", "caller", offer)
            join_times.append(time.perf_counter() - started)
            await client.accept(answer)
            for _ in range(100):  # closing mid-handshake makes aiortc log noise
                if client.pc.connectionState == "connected":
                    break
                await asyncio.sleep(0.02)
            for _ in range(5):
                started = time.perf_counter()
                await room.stats()
                stats_times.append(time.perf_counter() - started)
        finally:
            await room.close()
            await client.close()
    return {"join": summary(join_times), "stats": summary(stats_times)}


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--joins", type=int, default=30)
    args = parser.parse_args()
    in_process = await measure(lambda name: Room(name, CONFIG), args.joins)
    pool = WorkerPool(1)
    try:
        warm = pool.room("warm-up", CONFIG)
        await warm.stats()
        await warm.close()
        worker = await measure(lambda name: pool.room(name, CONFIG), args.joins)
    finally:
        await pool.stop()
    for name, figures in (("in-process", in_process), ("worker", worker)):
        print(
            f"{name:10}  join p50 {figures['join']['p50_ms']:7.2f} ms  p95 "
            f"{figures['join']['p95_ms']:7.2f} ms   stats p50 {figures['stats']['p50_ms']:6.2f} ms"
            f"  p95 {figures['stats']['p95_ms']:6.2f} ms"
        )
    print(json.dumps({"in_process": in_process, "worker": worker, "joins": args.joins}))


if __name__ == "__main__":
    asyncio.run(main())
