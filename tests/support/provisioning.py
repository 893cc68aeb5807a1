"""What the provisioning tests share: the repository's paths, one ansible-playbook run, the
chroot's inventory and its mounts. The fixtures that build the chroot are in
tests/provisioning/conftest.py."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PROVISIONING = REPO / "provisioning"
PREPARE = PROVISIONING / "tests" / "prepare-chroot.sh"
CACHE = Path(os.environ.get("EVR_TEST_CACHE", "/var/cache/evr-test"))
BIN = Path(sys.executable).parent
TURN_SECRET = "test-turn-secret-0123456789abcdef0123456789abcdef"
BOX_ADDRESS = "192.0.2.10"
# coturn's own address, where TURN over TLS takes port 443 (docs/operations.md).
BOX_TURN_ADDRESS = "192.0.2.11"
WHEELHOUSE_IN_CHROOT = "/srv/wheelhouse"

RECAP = re.compile(
    r"^(?P<host>\S+)\s+:\s+ok=(?P<ok>\d+)\s+changed=(?P<changed>\d+)\s+"
    r"unreachable=(?P<unreachable>\d+)\s+failed=(?P<failed>\d+)",
    re.MULTILINE,
)


@dataclass
class Run:
    """One ansible-playbook run: what it printed, how long it took, its recap counts."""

    returncode: int
    output: str
    seconds: float
    recap: dict[str, int] = field(default_factory=dict)


@dataclass
class Converged:
    root: Path
    first: Run
    second: Run
    master_key_after_first: bytes
    prepare_seconds: float


def tool(name: str) -> str:
    """A console script of the venv running the tests (ansible, yamllint), else PATH."""
    candidate = BIN / name
    return str(candidate) if candidate.exists() else name


def run_playbook(inventory: Path, *extra: str) -> Run:
    env = dict(os.environ, ANSIBLE_CONFIG=str(PROVISIONING / "ansible.cfg"), ANSIBLE_NOCOLOR="1")
    env["ANSIBLE_LOCAL_TEMP"] = str(inventory.parent / "ansible-local")
    start = time.monotonic()
    proc = subprocess.run(
        [tool("ansible-playbook"), "-i", str(inventory), "site.yml", *extra],
        cwd=PROVISIONING,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    seconds = time.monotonic() - start
    output = proc.stdout + proc.stderr
    match = RECAP.search(output)
    recap = {k: int(v) for k, v in match.groupdict().items() if k != "host"} if match else {}
    return Run(proc.returncode, output, seconds, recap)


def inventory_text(root: Path) -> str:
    """The test inventory: the chroot as the one appliance host, services left alone
    (no systemd runs in a chroot), apt offline from the primed cache, pip from the
    wheelhouse copied into the chroot.

    pip is told not to byte-compile here: compiling numpy, scipy and matplotlib was 40 of
    the install's 57 CPU seconds, and the .pyc files are not what these tests check. A
    real box keeps the role's default and compiles (its service user cannot write them)."""
    wheelhouse = CACHE / "wheelhouse"
    return f"""---
evr_appliances:
  hosts:
    evr-chroot:
      ansible_connection: community.general.chroot
      ansible_host: {root}
      ansible_become: false
      ansible_python_interpreter: /usr/bin/python3
  vars:
    evr_appliance_manage_services: false
    evr_coturn_manage_services: false
    evr_firewall_manage_services: false
    evr_monitoring_manage_services: false
    evr_appliance_apt_update_cache: false
    evr_coturn_apt_update_cache: false
    evr_firewall_apt_update_cache: false
    evr_monitoring_apt_update_cache: false
    evr_appliance_build_pip_args: ["--no-index", "--find-links", "{wheelhouse}"]
    evr_appliance_pip_extra_args: "--no-index --find-links {WHEELHOUSE_IN_CHROOT} --no-compile"
    evr_appliance_force_name: Test Constabulary
    evr_appliance_public_url: https://evr.test.example
    evr_appliance_stun_urls: ["stun:evr.test.example:3478"]
    evr_appliance_turn_urls: ["turn:evr.test.example:3478?transport=udp"]
    evr_appliance_turn_secret: {TURN_SECRET}
    evr_coturn_static_auth_secret: {TURN_SECRET}
    evr_coturn_realm: evr.test.example
    evr_coturn_allowed_peer_ips: ["{BOX_ADDRESS}"]
    evr_coturn_listening_ips: ["{BOX_TURN_ADDRESS}"]
    evr_coturn_tls_listening_port: 443
    evr_firewall_turn_address: {BOX_TURN_ADDRESS}
    evr_firewall_turn_tls_port: 443
    evr_firewall_admin_networks: ["198.51.100.0/24", "2001:db8:1::/48"]
    evr_firewall_monitoring_networks: ["198.51.100.20/32"]
    evr_firewall_cad_client_networks: ["198.51.100.40/32", "2001:db8:4::/48"]
evr_monitoring_servers:
  hosts: {{}}
"""


def _mounts_under(root: Path) -> list[str]:
    prefix = str(root.resolve())
    with open("/proc/self/mounts") as mounts:
        points = [line.split()[1] for line in mounts]
    return [p for p in points if p == prefix or p.startswith(prefix + "/")]


def unmount_all(root: Path) -> None:
    """Undo every mount under the chroot, deepest first, so removing it is safe."""
    for point in sorted(_mounts_under(root), key=len, reverse=True):
        subprocess.run(["umount", "--lazy", point], check=False)
    left = _mounts_under(root)
    assert not left, f"still mounted under the chroot: {left}"
