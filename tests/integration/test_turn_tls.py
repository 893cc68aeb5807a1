"""A caller whose firewall opens nothing but TCP 443 reaches the box through TURN over TLS.

A real coturn (Debian's ``/usr/bin/turnserver``) on an address of its own,
127.0.4.43:443, TLS only, with a certificate from a CA the test makes; the appliance
mints the call's credentials (``use-auth-secret``) and hands ``turns:`` in ``hello``. The
caller is an aiortc peer in a process of its own user id (``nobody``), and nftables in
the suite's network namespace drops every UDP packet and every TCP port but 443 from that
user: the firewall of a workplace. Chromium would be the truer caller; it needs the
``evr serve`` subprocess and a browser (about 10 s here), while the firewall and the relay
are the same for an aiortc peer. The signalling socket is the test's own (on the box it
is the appliance's HTTPS, on 443 too).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import hashlib
import ipaddress
import json
import os
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import aiohttp
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from pydantic import SecretStr

from appliance.config import Settings
from appliance.models import Role
from appliance.services.audit import Actor
from appliance.services.calls import invites
from appliance.services.calls.invites import Consent
from appliance.services.identity import accounts
from appliance.services.intake import incidents
from tests.support.coturn import running_coturn
from tests.support.hostile import caller_http
from tests.support.live import LiveServer

pytestmark = pytest.mark.sqlite_only(
    reason="the network path of the media is under test, not the database"
)

TURN_ADDRESS = "127.0.4.43"
TURN_SECRET = "turn-over-tls-test-secret-0123456789"
CALLER_UID = 65534  # nobody
DEVICE = "turn-caller-device"
REPO = Path(__file__).resolve().parents[2]
FIREWALL = f"""
table inet evr_test_caller_firewall {{
    chain output {{
        type filter hook output priority filter; policy accept;
        meta skuid {CALLER_UID} meta l4proto udp counter drop
        meta skuid {CALLER_UID} tcp dport != 443 counter drop
        meta skuid {CALLER_UID} ip daddr {TURN_ADDRESS} tcp dport 443 counter accept
    }}
}}
"""


@dataclass
class Coturn:
    ca_file: Path
    log: Path


def _certificates(folder: Path) -> tuple[Path, Path, Path]:
    """A CA and coturn's certificate for its address, as a force's PKI would issue."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "EVR test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, TURN_ADDRESS)]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(TURN_ADDRESS))]),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    paths = folder / "ca.pem", folder / "cert.pem", folder / "key.pem"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return paths


@pytest.fixture
def coturn(tmp_path: Path) -> Iterator[Coturn]:
    """coturn as the evr_coturn role runs it with TLS on 443, TLS its only listener here."""
    ca_file, cert, key = _certificates(tmp_path)
    listeners = ["--tls-listening-port=443", "--no-udp", "--no-tcp", "--no-dtls"]
    tls = [f"--cert={cert}", f"--pkey={key}", "--no-tlsv1", "--no-tlsv1_1"]
    with running_coturn(
        tmp_path, TURN_ADDRESS, TURN_SECRET, listeners + tls, 443, (40300, 40399)
    ) as server:
        yield Coturn(ca_file, server.log)


@pytest.fixture
def caller_firewall() -> Iterator[None]:
    """The caller's firewall, in the suite's own network namespace (loopback only): never
    loaded into a host's own ruleset."""
    interfaces = [name for _, name in socket.if_nameindex()]
    assert interfaces == ["lo"], f"run inside the suite's network namespace, not on {interfaces}"
    subprocess.run(["nft", "-f", "-"], input=FIREWALL, text=True, check=True)
    try:
        yield
    finally:
        subprocess.run(["nft", "delete", "table", "inet", "evr_test_caller_firewall"], check=True)


def _counters() -> list[int]:
    listed = subprocess.run(
        ["nft", "-j", "list", "table", "inet", "evr_test_caller_firewall"],
        capture_output=True,
        text=True,
        check=True,
    )
    packets = []
    for item in json.loads(listed.stdout)["nftables"]:
        for expr in item.get("rule", {}).get("expr", []):
            if "counter" in expr:
                packets.append(int(expr["counter"]["packets"]))
    return packets


def _invite(server: LiveServer) -> str:
    with server.db.session() as session:
        user, _ = accounts.create_user(
            session, Actor("t"), "pc1", "Pat", {Role.HANDLER}, password="a long passphrase"
        )
        incident = incidents.create(
            session,
            Actor("pc1"),
            user,
            cad_reference="CAD/T/443",
            grade=3,
            category="Theft",
            caller_name="Jane Marple",
            caller_phone="07700900123",
        )
        _, call, token = invites.create_invite(
            session, Actor("pc1"), incident, user, timedelta(hours=1)
        )
        invites.record_consent(
            session,
            call,
            Consent(True, False, False),
            hashlib.sha256(DEVICE.encode()).hexdigest(),
            "",
        )
    return token


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """Media in the web process (a worker would start and import aiortc for this one call),
    loopback candidates (the box's media is on 127.0.0.1 here), TURN over TLS on 443 only."""
    settings.media_workers = 0
    settings.media_allow_loopback = True
    settings.turn_urls = [f"turns:{TURN_ADDRESS}:443?transport=tcp"]
    settings.turn_secret = SecretStr(TURN_SECRET)
    return settings


@pytest.fixture
async def http(live_server: LiveServer) -> AsyncIterator[aiohttp.ClientSession]:
    async with caller_http(live_server, DEVICE) as session:
        yield session


async def _receive(ws: aiohttp.ClientWebSocketResponse, wanted: str) -> dict:
    while True:
        message = json.loads((await ws.receive(timeout=20)).data)
        if message["type"] == wanted:
            return message


async def test_a_caller_behind_a_443_only_firewall_connects_by_turn_over_tls(
    live_server: LiveServer,
    http: aiohttp.ClientSession,
    coturn: Coturn,
    caller_firewall: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The box's own leg allocates on the same coturn: it trusts the same CA.
    monkeypatch.setenv("SSL_CERT_FILE", str(coturn.ca_file))
    # Started first: importing aiortc takes it a few seconds, meanwhile the call is made.
    caller = subprocess.Popen(
        [
            "/usr/bin/setpriv",
            f"--reuid={CALLER_UID}",
            f"--regid={CALLER_UID}",
            "--clear-groups",
            sys.executable,
            "-B",
            "-m",
            "tests.support.turn_caller",
        ],
        cwd=REPO,
        env={**os.environ, "HOME": "/nonexistent"},
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert caller.stdin is not None and caller.stdout is not None
    try:
        token = _invite(live_server)
        url = live_server.base_url.replace("https://", "wss://") + f"/ws/v/{token}"
        async with http.ws_connect(url) as ws:
            hello = await _receive(ws, "hello")
            (turn,) = hello["iceServers"]
            assert turn["urls"] == [f"turns:{TURN_ADDRESS}:443?transport=tcp"]
            ca = coturn.ca_file.read_text()
            caller.stdin.write(json.dumps({"iceServers": hello["iceServers"], "ca": ca}) + "\n")
            caller.stdin.flush()
            offer = json.loads(await asyncio.to_thread(caller.stdout.readline) or "{}")
            assert "sdp" in offer, caller.stderr.read()
            # The caller's only candidate: the relay it allocated over TLS on 443.
            assert " typ relay " in offer["sdp"] and " typ host " not in offer["sdp"]
            await ws.send_json({"type": "join", "sdp": offer["sdp"]})
            answer = await _receive(ws, "answer")
            caller.stdin.write(json.dumps({"sdp": answer["sdp"]}) + "\n")
            caller.stdin.flush()
            # The box answers ICE checks meanwhile: read off the event loop.
            selected = json.loads(await asyncio.to_thread(caller.stdout.readline) or "{}")
    finally:
        with contextlib.suppress(BrokenPipeError):
            caller.stdin.write("\n")
            caller.stdin.close()
        try:
            caller.wait(timeout=10)
        except subprocess.TimeoutExpired:
            caller.kill()
    assert selected.get("connected"), (selected, caller.stderr.read(), coturn.log.read_text())
    assert selected["local_type"] == "relay"
    assert selected["to_turn"] == "tls" and selected["turn_peer"] == [TURN_ADDRESS, 443]
    _, _, through_443 = _counters()
    assert through_443 > 0, "the caller's packets went to coturn on 443"
