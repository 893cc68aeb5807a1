"""A real coturn (Debian's ``/usr/bin/turnserver``) on an address of its own, with the
call-scoped credentials the appliance mints (``use-auth-secret``), for as long as a
``with`` lasts."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

TURNSERVER = "/usr/bin/turnserver"


def listening(address: str, port: int, timeout: float) -> bool:
    """Whether something accepts TCP on ``address:port`` within ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as probe:
            probe.settimeout(0.2)
            if probe.connect_ex((address, port)) == 0:
                return True
        time.sleep(0.05)
    return False


@dataclass
class TurnServer:
    log: Path
    process: subprocess.Popen[bytes]

    def stop(self) -> None:
        """Gone, as behind a firewall that lets nothing reach it: its ports closed."""
        self.process.terminate()
        self.process.wait(timeout=10)


@contextlib.contextmanager
def running_coturn(
    folder: Path,
    address: str,
    secret: str,
    listeners: list[str],
    probe_port: int,
    relay_ports: tuple[int, int],
) -> Iterator[TurnServer]:
    """coturn on ``address`` with ``listeners`` (its listener options), relaying from
    ``relay_ports``; waits until TCP ``probe_port`` answers."""
    log = folder / "coturn.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                TURNSERVER,
                "-n",
                f"--listening-ip={address}",
                f"--relay-ip={address}",
                *listeners,
                f"--min-port={relay_ports[0]}",
                f"--max-port={relay_ports[1]}",
                "--use-auth-secret",
                f"--static-auth-secret={secret}",
                "--realm=evr.test",
                "--fingerprint",
                "--allow-loopback-peers",
                "--no-cli",
                f"--pidfile={folder / 'turnserver.pid'}",
                f"--userdb={folder / 'turndb'}",
                "--log-file=stdout",
                "--simple-log",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        assert listening(address, probe_port, 10), log.read_text()
        yield TurnServer(log, proc)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
