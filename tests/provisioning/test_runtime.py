"""What the roles put in the chroot works: the appliance serves, coturn grants TURN to the
appliance's credentials only, the unit is hardened and valid, the firewall ruleset parses,
and the backup timer's command makes a backup without the master key."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import json
import re
import socket
import ssl
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from aioice import stun, turn

from media.ice import turn_credentials
from tests.support.provisioning import BOX_TURN_ADDRESS, TURN_SECRET, Converged

# The session's two converges run in the setup of whichever test comes first; on a
# shared, loaded machine they outlast the suite's 120 s per-test limit.
pytestmark = pytest.mark.timeout(1800)

PR_SET_MDWE = 65
PR_MDWE_REFUSE_EXEC_GAIN = 1


def _deny_write_execute() -> None:
    """In the child before exec: the kernel's memory-deny-write-execute, the same refusal
    systemd's MemoryDenyWriteExecute= makes, inherited across exec."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_MDWE)")


def _free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _in_chroot(root: Path, user: str | None, *argv: str) -> list[str]:
    spec = [f"--userspec={user}:{user}"] if user else []
    return ["/usr/sbin/chroot", *spec, str(root), *argv]


def test_mdwe_has_teeth(mounted: Path) -> None:
    """The check below means something: a W+X mapping is refused under it."""
    code = (
        "import mmap; mmap.mmap(-1, 4096, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)"
    )
    proc = subprocess.run(
        _in_chroot(mounted, "evr", "/opt/evr/venv/bin/python", "-c", code),
        preexec_fn=_deny_write_execute,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode != 0 and "PermissionError" in proc.stderr, proc.stderr


def test_media_stack_runs_without_writable_executable_memory(mounted: Path) -> None:
    """MemoryDenyWriteExecute=yes holds against what the appliance really loads: aiortc
    gathers ICE (ctypes and rtnetlink for the addresses), PyAV encodes, argon2 hashes,
    cryptography signs."""
    code = """
import asyncio, fractions
import appliance.server, appliance.web.app, media
import av, argon2
from aiortc import RTCPeerConnection
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives import hashes

async def offer():
    pc = RTCPeerConnection()
    pc.addTransceiver("video"); pc.addTransceiver("audio")
    await pc.setLocalDescription(await pc.createOffer())
    sdp = pc.localDescription.sdp
    await pc.close()
    return sdp

sdp = asyncio.run(offer())
assert "m=video" in sdp
argon2.PasswordHasher().hash("correct horse battery staple")
ec.generate_private_key(ec.SECP256R1()).sign(b"x", ec.ECDSA(hashes.SHA256()))
codec = av.CodecContext.create("libvpx", "w")
codec.width, codec.height, codec.pix_fmt = 64, 48, "yuv420p"
codec.time_base = fractions.Fraction(1, 30)
frame = av.VideoFrame(64, 48, "yuv420p"); frame.pts = 0
packets = codec.encode(frame) + codec.encode(None)
assert packets
print("MEDIA-OK")
"""
    proc = subprocess.run(
        _in_chroot(mounted, "evr", "/opt/evr/venv/bin/python", "-c", code),
        preexec_fn=_deny_write_execute,
        env={"PATH": "/usr/bin:/bin", "HOME": "/var/lib/evr"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert "MEDIA-OK" in proc.stdout, proc.stdout + proc.stderr


@contextlib.contextmanager
def _listening(
    proc: subprocess.Popen[bytes], port: int, log: Path, what: str, timeout: float
) -> Iterator[None]:
    """Wait until ``proc`` accepts connections on ``port``; stop it afterwards."""
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert proc.poll() is None, log.read_text()
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.2)
        else:
            raise AssertionError(f"{what} did not listen in {timeout} s:\n" + log.read_text())
        yield
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="module")
def appliance(mounted: Path) -> Iterator[tuple[int, Path]]:
    """`evr serve` as the role installed it, as the service user, with the rendered
    settings; only the port moves to a free one (EVR_PORT) so parallel suites never clash."""
    port = _free_port()
    log = mounted.parent / "appliance.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            _in_chroot(
                mounted, "evr", "/opt/evr/venv/bin/evr", "--config", "/etc/evr/evr.toml", "serve"
            ),
            cwd="/",
            env={"PATH": "/usr/bin:/bin", "HOME": "/var/lib/evr", "EVR_PORT": str(port)},
            stdout=out,
            stderr=subprocess.STDOUT,
            preexec_fn=_deny_write_execute,
        )
    with _listening(proc, port, log, "the appliance", 60):
        yield port, log


def test_appliance_answers_healthz_over_https_with_the_local_ca(
    appliance: tuple[int, Path], converged: Converged
) -> None:
    port, log = appliance
    context = ssl.create_default_context(cafile=str(converged.root / "etc/evr/tls/ca.pem"))
    request = urllib.request.Request(f"https://localhost:{port}/healthz")
    with urllib.request.urlopen(request, context=context, timeout=10) as response:  # noqa: S310
        assert response.status == 200
        body = response.read().decode()
    assert "ok" in body.lower()
    banner = log.read_text()
    assert "/etc/evr/tls/cert.pem" in banner, banner
    assert "Test Constabulary" in banner


def _backup_as_the_timer_does(root: Path, argv: list[str]) -> None:
    proc = subprocess.run(
        _in_chroot(root, "evr", *argv),
        cwd="/",
        env={"PATH": "/usr/bin:/bin", "HOME": "/var/lib/evr"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_backup_timer_runs_evr_backup_keeping_n_without_the_master_key(
    appliance: tuple[int, Path], converged: Converged
) -> None:
    """The unit's own command, against the running appliance's database: the database and
    the sealed media in a dated directory, never the master key, the oldest removed."""
    root = converged.root
    unit = (root / "etc/systemd/system/evr-backup.service").read_text()
    exec_start = next(line for line in unit.splitlines() if line.startswith("ExecStart="))
    argv = exec_start.removeprefix("ExecStart=").split()
    assert argv == [
        "/opt/evr/venv/bin/evr",
        "--config",
        "/etc/evr/evr.toml",
        "backup",
        "--keep",
        "14",
        "/var/backups/evr",
    ]
    assert not (root / "opt/evr/evr-backup.py").exists()
    backups = root / "var/backups/evr"

    _backup_as_the_timer_does(root, argv)
    first = sorted(backups.glob("evr-*"))
    assert len(first) == 1
    assert (first[0] / "db.sqlite").is_file() and (first[0] / "SHA256SUMS").is_file()
    check = subprocess.run(["sha256sum", "-c", "SHA256SUMS"], cwd=first[0], capture_output=True)
    assert check.returncode == 0, check.stdout
    master_key = (root / "etc/evr/master.key").read_bytes()
    holding_key = [p for p in first[0].rglob("*") if p.is_file() and master_key in p.read_bytes()]
    assert holding_key == [], "the master key is never in a backup"

    _backup_as_the_timer_does(root, [*argv[:5], "1", argv[6]])
    left = sorted(backups.glob("evr-*"))
    assert len(left) == 1 and left[0] != first[0], "--keep 1 removed the older backup"


@pytest.fixture(scope="module")
def coturn(mounted: Path) -> Iterator[tuple[int, int]]:
    """coturn from the chroot, with the rendered configuration moved to loopback ports."""
    rendered = (mounted / "etc/turnserver.conf").read_text()
    moved = re.compile(
        r"^(listening-ip|listening-port|tls-listening-port|min-port|max-port|syslog)\b.*$", re.M
    )
    port, tls_port = _free_port(socket.SOCK_DGRAM), _free_port()
    config = moved.sub("", rendered) + "\n".join(
        [
            "listening-ip=127.0.0.1",
            "relay-ip=127.0.0.1",
            f"listening-port={port}",
            f"tls-listening-port={tls_port}",
            "min-port=40000",
            "max-port=40100",
            "log-file=stdout",
            "",
        ]
    )
    (mounted / "tmp/turnserver-test.conf").write_text(config)
    log = mounted.parent / "coturn.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            _in_chroot(mounted, None, "/usr/bin/turnserver", "-c", "/tmp/turnserver-test.conf"),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    with _listening(proc, port, log, "coturn", 20):
        yield port, tls_port


async def _allocate(
    port: int, username: str, password: str, context: ssl.SSLContext | None = None
) -> tuple[str, int]:
    transport, _ = await turn.create_turn_endpoint(
        asyncio.DatagramProtocol,
        server_addr=("127.0.0.1", port),
        username=username,
        password=password,
        ssl=context,
        transport="tcp" if context else "udp",
    )
    try:
        relayed = transport.get_extra_info("sockname")
    finally:
        transport.close()
    return relayed


async def test_coturn_grants_turn_to_credentials_the_appliance_mints(
    coturn: tuple[int, int],
) -> None:
    port, _ = coturn
    username, password = turn_credentials(TURN_SECRET, "call-1", ttl_s=600)
    host, relay_port = await _allocate(port, username, password)
    assert host == "127.0.0.1"
    assert 40000 <= relay_port <= 40100


async def test_coturn_grants_turn_over_tls_with_the_roles_certificate(
    coturn: tuple[int, int], converged: Converged
) -> None:
    _, tls_port = coturn
    context = ssl.create_default_context(cafile=str(converged.root / "etc/evr/tls/ca.pem"))
    context.check_hostname = False
    username, password = turn_credentials(TURN_SECRET, "call-2", ttl_s=600)
    _, relay_port = await _allocate(tls_port, username, password, context)
    assert 40000 <= relay_port <= 40100


@pytest.mark.parametrize(
    "forge",
    ["wrong secret", "expired", "tampered user"],
)
async def test_coturn_refuses_forged_credentials(coturn: tuple[int, int], forge: str) -> None:
    port, _ = coturn
    if forge == "wrong secret":
        username, password = turn_credentials("not-the-secret-" * 3, "call-3", ttl_s=600)
    elif forge == "expired":
        username, password = turn_credentials(
            TURN_SECRET, "call-3", ttl_s=60, now=time.time() - 3600
        )
    else:
        username, password = turn_credentials(TURN_SECRET, "call-3", ttl_s=600)
        username = username.replace("call-3", "call-4")
    with pytest.raises(stun.TransactionFailed) as refused:
        await _allocate(port, username, password)
    assert refused.value.response.error_code == 401


def test_coturn_config_never_relays_into_private_ranges(converged: Converged) -> None:
    lines = (converged.root / "etc/turnserver.conf").read_text().splitlines()
    denied = {line.split("=", 1)[1] for line in lines if line.startswith("denied-peer-ip=")}
    for needed in (
        "10.0.0.0-10.255.255.255",
        "172.16.0.0-172.31.255.255",
        "192.168.0.0-192.168.255.255",
        "127.0.0.0-127.255.255.255",
        "169.254.0.0-169.254.255.255",
        "::1",
        "fc00::-fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
    ):
        assert needed in denied
    assert "allowed-peer-ip=192.0.2.10" in lines
    assert "use-auth-secret" in lines
    assert f"static-auth-secret={TURN_SECRET}" in lines
    assert "min-port=49160" in lines and "max-port=49359" in lines


def test_units_pass_systemd_analyze_verify(converged: Converged) -> None:
    proc = subprocess.run(
        [
            "systemd-analyze",
            "verify",
            f"--root={converged.root}",
            "evr.service",
            "evr-backup.service",
            "evr-backup.timer",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_unit_security_exposure_is_two_or_better(converged: Converged) -> None:
    """--threshold is on systemd's internal 0–100 scale: 20 is the 2.0 that is printed."""
    base = [
        "systemd-analyze",
        "security",
        "--offline=true",
        f"--root={converged.root}",
        "--no-pager",
    ]
    proc = subprocess.run(
        [*base, "--threshold=20", "evr.service"], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    match = re.search(r"Overall exposure level for evr\.service: (\d+\.\d)", proc.stdout)
    assert match and float(match.group(1)) <= 2.0, proc.stdout[-2000:]
    strict = subprocess.run(
        [*base, "--threshold=5", "evr.service"], capture_output=True, text=True, timeout=120
    )
    assert strict.returncode != 0, "a threshold below the score must fail: the check has teeth"
    as_json = subprocess.run(
        [*base, "--json=short", "evr.service"], capture_output=True, text=True, timeout=120
    )
    checks = {item["name"]: item for item in json.loads(as_json.stdout)}
    assert checks["MemoryDenyWriteExecute="]["exposure"] in (None, 0, 0.0)


def test_nftables_ruleset_parses_and_opens_only_what_it_should(converged: Converged) -> None:
    path = converged.root / "etc/nftables.conf"
    proc = subprocess.run(["nft", "-c", "-f", str(path)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    text = path.read_text()
    assert "policy drop;" in text
    assert "ip saddr { 198.51.100.0/24 } tcp dport 22 accept" in text
    assert "ip6 saddr { 2001:db8:1::/48 } tcp dport 22 accept" in text
    # 443 is the appliance's on every address (v4 and v6) but coturn's own (TURN over TLS
    # there): that one is left untranslated before the redirect.
    nat = text[text.index("chain prerouting_nat") : text.index("chain input")]
    untranslated = f"ip daddr {BOX_TURN_ADDRESS} tcp dport 443 accept"
    assert untranslated in nat and "\n        tcp dport 443 redirect to :8443" in nat
    assert nat.index(untranslated) < nat.index("redirect to :8443")
    assert "udp dport 49160-49359 accept" in text
    accepted_tcp = set(re.findall(r"tcp dport (\{[^}]*\}|\S+)", text))
    assert "ip saddr { 198.51.100.20/32 } tcp dport { 9100, 8444 } accept" in text
    assert "ip saddr { 198.51.100.40/32 } tcp dport 8445 accept" in text
    assert "ip6 saddr { 2001:db8:4::/48 } tcp dport 8445 accept" in text
    assert accepted_tcp <= {"22", "443", "8443", "8445", "{ 3478, 443 }", "{ 9100, 8444 }"}, (
        accepted_tcp
    )


def test_rendered_ruleset_loads_into_a_scratch_namespace(converged: Converged) -> None:
    """More than a parse: the kernel takes the ruleset (in a network namespace of its own)."""
    path = converged.root / "etc/nftables.conf"
    proc = subprocess.run(
        ["unshare", "-n", "--", "sh", "-c", f"nft -f {path} && nft list ruleset"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert "table inet evr_filter" in proc.stdout
