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
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.provisioning import (
    CACHE,
    PREPARE,
    REPO,
    WHEELHOUSE_IN_CHROOT,
    Converged,
    inventory_text,
    run_playbook,
    unmount_all,
)


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
