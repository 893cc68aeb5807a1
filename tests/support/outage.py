"""Network trouble for a call: nftables drops its UDP on loopback (all of it for a while,
an outage, or a random share of one peer's, a weak line), then stops.

This kernel has no ``tc netem``; nftables does the job inside the suite's own network
namespace (``unshare -n``, loopback only), never in a host's ruleset. The rule drops only
what goes to or from the ports of one call's box (read from the browsers' remote
descriptions): the other pytest worker shares the namespace, and its calls must not
lose their media to this test's outage. Only UDP goes:
the signalling socket (TCP) stays up, as it does when a phone's Wi-Fi fades and its 4G
takes over while the page's WebSocket reconnects, so what is tested is the media's
own way back (ICE restart on the caller's page, consent on the others).
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
from dataclasses import dataclass

TABLE = "evr_test_udp_outage"
CANDIDATE = re.compile(r"^a=candidate:\S+ \d+ udp \d+ \S+ (\d+) typ host", re.M | re.I)


def box_ports(*remote_descriptions: str) -> frozenset[int]:
    """The UDP ports the box offered in its answers (its host candidates)."""
    return frozenset(int(port) for sdp in remote_descriptions for port in CANDIDATE.findall(sdp))


def _rules(ports: frozenset[int]) -> str:
    listed = ", ".join(str(port) for port in sorted(ports))
    return f"""
table inet {TABLE} {{
    chain input {{
        type filter hook input priority 0; policy accept;
        iif "lo" udp sport {{ {listed} }} counter drop
        iif "lo" udp dport {{ {listed} }} counter drop
    }}
}}
"""


@dataclass
class UdpOutage:
    """Drops the UDP to and from ``ports`` on loopback from :meth:`start` until :meth:`stop`."""

    ports: frozenset[int]
    on: bool = False

    def start(self) -> None:
        interfaces = [name for _, name in socket.if_nameindex()]
        assert interfaces == ["lo"], f"run inside the suite's network namespace, not {interfaces}"
        assert self.ports, "no port of the box to cut off"
        subprocess.run(["nft", "-f", "-"], input=_rules(self.ports), text=True, check=True)
        self.on = True

    def dropped(self) -> int:
        """Packets the rule has dropped so far (a test of the test: the outage was real)."""
        listed = subprocess.run(
            ["nft", "-j", "list", "table", "inet", TABLE],
            capture_output=True,
            text=True,
            check=True,
        )
        counters = [
            int(expr["counter"]["packets"])
            for item in json.loads(listed.stdout)["nftables"]
            for expr in item.get("rule", {}).get("expr", [])
            if "counter" in expr
        ]
        assert counters, "the outage rules have no counter"
        return sum(counters)

    def stop(self) -> None:
        if self.on:
            subprocess.run(["nft", "delete", "table", "inet", TABLE], check=True)
            self.on = False


@dataclass
class UdpLoss:
    """Drops ``percent``% of the UDP sent from ``ports`` (one peer's sockets), chosen at
    random per packet (nftables ``numgen random``), from :meth:`start` until :meth:`stop`:
    a weak line on that peer's way in to the box, not an outage."""

    ports: frozenset[int]
    percent: int
    on: bool = False

    @property
    def table(self) -> str:
        return f"evr_test_udp_loss_{os.getpid()}"

    def start(self) -> None:
        interfaces = [name for _, name in socket.if_nameindex()]
        assert interfaces == ["lo"], f"run inside the suite's network namespace, not {interfaces}"
        assert self.ports and 0 < self.percent < 100
        listed = ", ".join(str(port) for port in sorted(self.ports))
        rules = f"""
table inet {self.table} {{
    chain input {{
        type filter hook input priority 0; policy accept;
        iif "lo" udp sport {{ {listed} }} numgen random mod 100 < {self.percent} counter drop
    }}
}}
"""
        subprocess.run(["nft", "-f", "-"], input=rules, text=True, check=True)
        self.on = True

    def stop(self) -> None:
        if self.on:
            subprocess.run(["nft", "delete", "table", "inet", self.table], check=True)
            self.on = False
