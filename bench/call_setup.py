"""Call setup time through the real browser: caller presses Join → handler's first decoded frame.

Not a test: it prints numbers. It starts `evr serve` in a temp dir, Debian's chromium
with a fake camera for both sides, and runs N calls one after another. The handler sits
on the call console and admits as soon as the caller is waiting, so the time covers
both legs' negotiation, ICE, DTLS and the first keyframe through the relay.

    .venv/bin/python bench/call_setup.py --calls 10

Last line: call_setup_p50_s=<x> call_setup_p95_s=<y> calls=<n>
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

from playwright.sync_api import Browser, Page, expect, sync_playwright

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support.appliance import Appliance, running_appliance
from tests.support.browser import (
    CHROMIUM,
    CHROMIUM_ARGS,
    frames_shown,
    media_context,
    new_link,
    signed_in_handler,
)


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(share * (len(ordered) - 1))))
    return ordered[index]


def one_call(browser: Browser, handler: Page, appliance: Appliance, n: int) -> float:
    reference = f"CAD/BENCH/{n}"
    link = new_link(handler, appliance, reference)
    phone = media_context(browser, mobile=True)
    try:
        caller = phone.new_page()
        caller.goto(link)
        caller.get_by_label("I agree to a video call with the police").check()
        caller.get_by_role("button", name="Continue").click()
        join = caller.get_by_role("button", name="Join video call")
        expect(join).to_be_enabled()
        handler.get_by_role("link", name="Open call").click()
        admit = handler.get_by_role("button", name="Admit caller")
        expect(admit).to_be_disabled()
        started = time.monotonic()
        join.click()
        admit.click()
        while frames_shown(handler, "#remote-video") < 1:
            time.sleep(0.02)
        elapsed = time.monotonic() - started
        handler.get_by_role("button", name="End call").click()
        expect(caller.get_by_role("heading", name="The call has ended")).to_be_visible()
        return elapsed
    finally:
        phone.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=5)
    args = parser.parse_args()
    timings: list[float] = []
    with running_appliance() as appliance, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context = media_context(browser)
        handler = signed_in_handler(context, appliance, "bench1")
        for n in range(1, args.calls + 1):
            timings.append(one_call(browser, handler, appliance, n))
            print(f"call {n}: {timings[-1]:.2f} s", flush=True)
        browser.close()
    print(f"median {statistics.median(timings):.2f} s, p95 {percentile(timings, 0.95):.2f} s")
    print(
        f"call_setup_p50_s={statistics.median(timings):.3f} "
        f"call_setup_p95_s={percentile(timings, 0.95):.3f} calls={len(timings)}"
    )


if __name__ == "__main__":
    main()
