"""`evr serve` as a real process in a fresh data dir, for the browser tests and the benchmarks."""

from __future__ import annotations

import contextlib
import itertools
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.live import free_port
from tests.support.process import OutputDrain, start_serve, stop, wait_healthy


@dataclass
class Appliance:
    base_url: str
    data_dir: Path
    admin_password: str
    process: subprocess.Popen[str]
    env: dict[str, str]
    metrics_url: str = ""  # the monitoring listener: /metrics and /readyz
    output: OutputDrain | None = None
    accounts: set[str] = field(default_factory=set)  # made by signed_in_handler

    def log_tail(self, lines: int = 60) -> str:
        """The server's last output lines, for an assertion message."""
        return "".join(self.output.lines[-lines:]) if self.output else ""


STALLS = Path(__file__).resolve().parents[2] / "test-artifacts" / "loop-stalls"
STALL_LINE = "the event loop has not turned for"
_kept = itertools.count()


def stalls_in(lines: list[str]) -> list[str]:
    """Each event-loop stall the server logged (appliance/watchdog.py): its line and the
    last frames of the stack it stood on."""
    stalls: list[list[str]] = []
    current: list[str] | None = None
    for line in lines:
        if STALL_LINE in line:
            current = [line.rstrip()]
            stalls.append(current)
        elif current is not None and line.startswith((" ", "\t")):
            current.append(line.rstrip())
        else:
            current = None
    return ["\n".join(stall[:1] + stall[1:][-8:]) for stall in stalls]


def keep_stalls(lines: list[str], label: str) -> None:
    """Kept for the run's summary (tests/conftest.py prints them): a stall under load is
    no failure, but where the loop stood says what to move off it."""
    found = stalls_in(lines)
    if not found:
        return
    STALLS.mkdir(parents=True, exist_ok=True)
    name = f"{label}-{os.getpid()}-{next(_kept)}.txt"
    (STALLS / name).write_text("\n\n".join(found) + "\n")


@contextlib.contextmanager
def running_appliance(public_host: str = "127.0.0.1", **extra_env: str) -> Iterator[Appliance]:
    """`evr serve` in a fresh data dir, on its own port, with the printed admin password.
    ``public_host`` names it in its public URL and the tests' (``localhost`` where a test
    needs a domain: WebAuthn refuses an IP address as its relying party)."""
    root = Path(tempfile.mkdtemp(prefix="evr-e2e-"))
    # The test module that started it, to name its stalls in the run's summary.
    label = Path(os.environ.get("PYTEST_CURRENT_TEST", "serve").split("::")[0]).stem
    port, metrics_port = free_port(), free_port()
    env = {
        "EVR_DATA_DIR": str(root / "var"),
        "EVR_PORT": str(port),
        "EVR_METRICS_PORT": str(metrics_port),
        "EVR_HOST": "127.0.0.1",
        "EVR_FORCE_NAME": "Wessex Police",
        "EVR_MIN_FREE_BYTES": "0",
        "EVR_MEDIA_ALLOW_LOOPBACK": "true",
        # Staff pages ask every second, not five: a test waits for what a handler sees.
        "EVR_STAFF_REFRESH_SECONDS": "1",
        # An admin signs in by password alone here; the second factor box admins must
        # enrol by default has tests of its own (tests/security/test_second_factor.py).
        "EVR_LOCAL_ADMIN_TOTP_REQUIRED": "false",
        "EVR_PUBLIC_URL": f"https://{public_host}:{port}",
        **extra_env,
    }
    appliance = Appliance(
        f"https://{public_host}:{port}",
        root / "var",
        "",
        start_serve(root, **env),
        env,
        metrics_url=f"https://127.0.0.1:{env['EVR_METRICS_PORT']}",
    )
    try:
        appliance.output = OutputDrain(appliance.process)
        # A first start imports, migrates and hashes before it prints: on a busy 2-core
        # box that took over 30 s.
        printed = appliance.output.wait_for(r"password\s+(\S{20})\s*$", timeout=90)
        appliance.admin_password = printed.group(1)
        wait_healthy(appliance.base_url, appliance.process, timeout=60)
        yield appliance
    finally:
        stop(appliance.process, appliance.output)
        if appliance.output is not None:
            keep_stalls(appliance.output.lines, label)
        shutil.rmtree(root, ignore_errors=True)
