"""A network outage for a browser call: nftables drops UDP on loopback, then stops.

This kernel has no ``tc netem``; nftables does the job inside the suite's own network
namespace (``unshare -n``, loopback only), never in a host's ruleset. Only UDP goes:
the signalling socket (TCP) stays up, as it does when a phone's Wi-Fi fades and its 4G
takes over while the page's WebSocket reconnects, so what is tested is the media's
own way back (ICE restart on the caller's page, consent on the others).
"""

from __future__ import annotations

import json
import socket
import subprocess
from dataclasses import dataclass

TABLE = "evr_test_udp_outage"
RULES = f"""
table inet {TABLE} {{
    chain input {{
        type filter hook input priority 0; policy accept;
        iif "lo" meta l4proto udp counter drop
    }}
}}
"""


@dataclass
class UdpOutage:
    """Drops every UDP packet on loopback from :meth:`start` until :meth:`stop`."""

    on: bool = False

    def start(self) -> None:
        interfaces = [name for _, name in socket.if_nameindex()]
        assert interfaces == ["lo"], f"run inside the suite's network namespace, not {interfaces}"
        subprocess.run(["nft", "-f", "-"], input=RULES, text=True, check=True)
        self.on = True

    def dropped(self) -> int:
        """Packets the rule has dropped so far (a test of the test: the outage was real)."""
        listed = subprocess.run(
            ["nft", "-j", "list", "table", "inet", TABLE],
            capture_output=True,
            text=True,
            check=True,
        )
        for item in json.loads(listed.stdout)["nftables"]:
            for expr in item.get("rule", {}).get("expr", []):
                if "counter" in expr:
                    return int(expr["counter"]["packets"])
        raise AssertionError("the outage rule has no counter")

    def stop(self) -> None:
        if self.on:
            subprocess.run(["nft", "delete", "table", "inet", TABLE], check=True)
            self.on = False
