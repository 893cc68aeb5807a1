"""Commit latency on a busy disk: SQLite checkpointing inside commits (its default, the
baseline) against the web process's way (no commit checkpoints; a thread does, every
5 s), side by side in one run.

Both databases take the same stream of small commits (a chat line, an audit row: about
3 KB each, every 5 ms) from a thread of their own, as the event loop makes them, while
a third thread keeps the disk busy the way recordings and a backup do (1 MiB writes,
an fsync every 64 MiB). A commit that crosses SQLite's 1,000-page mark copies the WAL
into the database and syncs both to disk; on a busy disk the sync waits behind the
other writer's pages, and on `evr serve` the loop, and every page and socket, waits
with it.

    .venv/bin/python bench/checkpoint.py [--seconds 30] [--disk-writes-mib 6000]

Prints each way's p50, p99, p99.9 and worst commit, and baseline / ours for each.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from appliance.db import Database

CHECKPOINT_EVERY_S = 5.0


def commits(db: Database, until: float, out: list[float]) -> None:
    with db.session() as session:
        session.connection().exec_driver_sql("CREATE TABLE rows (body BLOB)")
    while time.monotonic() < until:
        started = time.perf_counter()
        with db.session() as session:
            session.connection().exec_driver_sql("INSERT INTO rows VALUES (randomblob(3000))")
        out.append(time.perf_counter() - started)
        time.sleep(0.005)


def checkpoints(db: Database, stop: threading.Event) -> None:
    while not stop.wait(CHECKPOINT_EVERY_S):
        db.checkpoint()


def busy_disk(path: Path, until: float, limit_mib: int) -> None:
    block = os.urandom(1 << 20)
    written = 0
    with path.open("wb") as file:
        while time.monotonic() < until:
            file.write(block)
            written += 1
            if written % 64 == 0:
                file.flush()
                os.fsync(file.fileno())
            if written % limit_mib == 0:
                file.seek(0)


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--disk-writes-mib", type=int, default=6000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="evr-bench-checkpoint-", dir="/var/tmp") as root:
        base = Database(f"sqlite:///{root}/baseline.db")
        ours = Database(f"sqlite:///{root}/ours.db", checkpoint_on_commit=False)
        until = time.monotonic() + args.seconds
        latencies: dict[str, list[float]] = {"baseline": [], "ours": []}
        stop = threading.Event()
        threads = [
            threading.Thread(target=commits, args=(base, until, latencies["baseline"])),
            threading.Thread(target=commits, args=(ours, until, latencies["ours"])),
            threading.Thread(target=checkpoints, args=(ours, stop)),
            threading.Thread(
                target=busy_disk, args=(Path(root) / "disk", until + 1, args.disk_writes_mib)
            ),
        ]
        for thread in threads:
            thread.start()
        for thread in threads[:2]:
            thread.join()
        stop.set()
        for thread in threads[2:]:
            thread.join()
        base.engine.dispose()
        ours.engine.dispose()
    print(f"{args.seconds:.0f} s of commits every 5 ms on a busy disk (ms)")
    print(f"{'':10} {'commits':>8} {'p50':>8} {'p99':>8} {'p99.9':>8} {'worst':>8}")
    rows = {}
    for name, values in latencies.items():
        rows[name] = [
            statistics.median(values),
            quantile(values, 0.99),
            quantile(values, 0.999),
            max(values),
        ]
        cells = " ".join(f"{v * 1000:8.2f}" for v in rows[name])
        print(f"{name:10} {len(values):8d} {cells}")
    ratios = " ".join(f"{b / o:8.1f}" for b, o in zip(rows["baseline"], rows["ours"], strict=True))
    print(f"{'base/ours':10} {'':8} {ratios}")


if __name__ == "__main__":
    main()
