"""`evr serve` as a real process, the way an operator starts it."""

from __future__ import annotations

import os
import re
import signal
import ssl
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path


def insecure_context() -> ssl.SSLContext:
    """Trust the appliance's self-signed certificate, as a test client must."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def https_get(url: str) -> tuple[int, str]:
    with urllib.request.urlopen(url, context=insecure_context(), timeout=5) as response:  # noqa: S310
        return response.status, response.read().decode()


def start_serve(cwd: Path, **env_overrides: str) -> subprocess.Popen[str]:
    """`python -m appliance serve` with no EVR_* from the test's environment but these."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("EVR_")}
    env["EVR_FORCE_NAME"] = "Test Constabulary"  # `evr serve` needs one
    env.update(env_overrides)
    return subprocess.Popen(
        [sys.executable, "-m", "appliance", "serve"],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


class OutputDrain:
    """Reads a process's output on a thread, so a chatty server never blocks on a full pipe."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.lines: list[str] = []
        self._thread = threading.Thread(target=self._read, args=(process,), daemon=True)
        self._thread.start()

    def _read(self, process: subprocess.Popen[str]) -> None:
        assert process.stdout is not None
        for line in process.stdout:
            self.lines.append(line)

    def join(self) -> None:
        self._thread.join(timeout=5)

    def wait_for(self, pattern: str, timeout: float = 30) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in list(self.lines):
                match = re.search(pattern, line)
                if match:
                    return match
            time.sleep(0.1)
        raise AssertionError(f"no output line matched {pattern!r}: {''.join(self.lines)[-2000:]}")


def wait_healthy(base_url: str, process: subprocess.Popen[str], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            output = process.stdout.read() if process.stdout else ""
            raise AssertionError(f"evr serve exited with {process.returncode}: {output}")
        try:
            if https_get(base_url + "/healthz")[0] == 200:
                return
        except OSError:
            time.sleep(0.2)
    raise AssertionError(f"evr serve did not answer /healthz within {timeout} s")


def stop(process: subprocess.Popen[str], drain: OutputDrain | None = None) -> str:
    """SIGTERM, as systemd stops it; returns what it printed."""
    process.send_signal(signal.SIGTERM)
    if drain is not None:
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        drain.join()
        return "".join(drain.lines)
    try:
        output, _ = process.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        output, _ = process.communicate()
    return output
