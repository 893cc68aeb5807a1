"""What the metrics sampling costs: server CPU per call-second with and without it.

The same calls as bench/relay_cpu.py (caller VP8 640x480 15 fps + Opus, handler Opus)
through the passthrough relay in a child process, measured three ways in one run:
no sampling, the appliance's sampling at its real period (2 s), and at 0.1 s (20x as
often, to make a cost per sample visible at all). Rounds alternate, and the medians
are compared.

    .venv/bin/python bench/metrics_sampling.py [--calls 2] [--seconds 10] [--rounds 3]

The last line is machine-readable.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from relay_cpu import encode_audio_loop, encode_video_loop, run_mode

MODES = ("passthrough", "sampled-2.0", "sampled-0.1")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    video, audio = encode_video_loop(), encode_audio_loop()
    results: dict[str, list[float]] = {mode: [] for mode in MODES}
    for round_ in range(args.rounds):
        for mode in MODES:
            r = await run_mode(mode, args.calls, args.seconds, video, audio)
            results[mode].append(r["cpu_s_per_call_s"])
            print(
                f"round {round_ + 1} {mode:>12}: {r['cpu_s_per_call_s']:.4f} CPU s per call-s",
                flush=True,
            )
    base, real, fast = (statistics.median(results[m]) for m in MODES)
    print(f"median: none {base:.4f}, every 2 s {real:.4f}, every 0.1 s {fast:.4f}")
    print(
        f"sampling_none_s_per_call_s={base:.4f} sampling_2s_s_per_call_s={real:.4f} "
        f"sampling_0_1s_s_per_call_s={fast:.4f} ratio_2s={real / base:.3f} "
        f"ratio_0_1s={fast / base:.3f} calls={args.calls}"
    )


if __name__ == "__main__":
    asyncio.run(main())
