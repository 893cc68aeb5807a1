"""Fixtures for the provisioning tests: a cached Debian 12 base, a fresh chroot per session,
two converges of site.yml into it, and mounts that are always undone.

The tests run as root without network (``make test`` uses ``unshare -n``), so everything
fetched from the registries is prepared beforehand by ``provisioning/tests/prepare-chroot.sh``
into a cache (``EVR_TEST_CACHE``, default ``/var/cache/evr-test``). The session fixture runs
that script too: with the cache current it only checks stamps, and from nothing it builds
the cache when the network is there, or fails saying which command to run where it is.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PROVISIONING = REPO / "provisioning"
PREPARE = PROVISIONING / "tests" / "prepare-chroot.sh"
CACHE = Path(os.environ.get("EVR_TEST_CACHE", "/var/cache/evr-test"))
BIN = Path(sys.executable).parent
TURN_SECRET = "test-turn-secret-0123456789abcdef0123456789abcdef"
BOX_ADDRESS = "192.0.2.10"
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
    wheelhouse copied into the chroot."""
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
    evr_appliance_pip_extra_args: "--no-index --find-links {WHEELHOUSE_IN_CHROOT}"
    evr_appliance_force_name: Test Constabulary
    evr_appliance_public_url: https://evr.test.example
    evr_appliance_stun_urls: ["stun:evr.test.example:3478"]
    evr_appliance_turn_urls: ["turn:evr.test.example:3478?transport=udp"]
    evr_appliance_turn_secret: {TURN_SECRET}
    evr_coturn_static_auth_secret: {TURN_SECRET}
    evr_coturn_realm: evr.test.example
    evr_coturn_allowed_peer_ips: ["{BOX_ADDRESS}"]
    evr_firewall_admin_networks: ["198.51.100.0/24", "2001:db8:1::/48"]
    evr_firewall_monitoring_networks: ["198.51.100.20/32"]
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


@pytest.fixture(scope="session")
def prepared_cache() -> float:
    """Make sure the cached base and wheelhouse exist and are current; return seconds spent."""
    if os.geteuid() != 0:
        pytest.fail("tests/provisioning need root (debootstrap, chroot, mount)")
    start = time.monotonic()
    proc = subprocess.run(
        ["sh", str(PREPARE), str(REPO)],
        env=dict(os.environ, EVR_TEST_CACHE=str(CACHE), EVR_TEST_PYTHON=sys.executable),
        capture_output=True,
        text=True,
        timeout=1200,
    )
    if proc.returncode != 0:
        pytest.fail(
            "the provisioning test cache is missing or out of date and could not be built "
            "here (no network?). Run, with network, outside `unshare -n`:\n"
            f"  EVR_TEST_PYTHON={sys.executable} sh {PREPARE} {REPO}\n"
            f"--- output ---\n{proc.stdout}{proc.stderr}"
        )
    return time.monotonic() - start


@pytest.fixture(scope="session")
def chroot_root(prepared_cache: float, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A fresh copy of the cached base for this session, with the wheelhouse inside it."""
    work = tmp_path_factory.mktemp("chroot")
    root = work / "root"
    subprocess.run(["cp", "-a", "--reflink=auto", str(CACHE / "base"), str(root)], check=True)
    shutil.copytree(CACHE / "wheelhouse", root / WHEELHOUSE_IN_CHROOT.lstrip("/"))
    try:
        yield root
    finally:
        unmount_all(root)
        shutil.rmtree(work, ignore_errors=True)


@pytest.fixture(scope="session")
def converged(chroot_root: Path, prepared_cache: float) -> Converged:
    """site.yml applied twice to the chroot; the master key read between the runs."""
    inventory = chroot_root.parent / "inventory.yml"
    inventory.write_text(inventory_text(chroot_root))
    first = run_playbook(inventory)
    assert first.returncode == 0, first.output[-6000:]
    key = (chroot_root / "etc/evr/master.key").read_bytes()
    second = run_playbook(inventory)
    assert second.returncode == 0, second.output[-6000:]
    print(
        f"\nprovisioning: prepare {prepared_cache:.1f}s, converge {first.seconds:.1f}s, "
        f"second converge {second.seconds:.1f}s"
    )
    return Converged(chroot_root, first, second, key, prepared_cache)


@pytest.fixture(scope="module")
def mounted(converged: Converged) -> Iterator[Path]:
    """/proc and /dev inside the chroot while a module's processes run there."""
    root = converged.root
    subprocess.run(["mount", "-t", "proc", "proc", str(root / "proc")], check=True)
    try:
        subprocess.run(["mount", "--bind", "/dev", str(root / "dev")], check=True)
        yield root
    finally:
        unmount_all(root)
