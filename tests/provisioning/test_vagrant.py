"""The Vagrantfile is valid for Debian's vagrant (no provider here: no VMs on this machine)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from tests.support.provisioning import REPO


def test_vagrant_validate(tmp_path: Path) -> None:
    env = dict(
        os.environ,
        VAGRANT_HOME=str(tmp_path / "vagrant.d"),
        VAGRANT_DOTFILE_PATH=str(tmp_path / "dot-vagrant"),
        VAGRANT_CHECKPOINT_DISABLE="1",
        VAGRANT_BOX_UPDATE_CHECK_DISABLE="1",
    )
    # --ignore-provider: this machine has no hypervisor, and the file's provider blocks
    # (virtualbox, libvirt) are only checked where one exists.
    proc = subprocess.run(
        ["vagrant", "validate", "--ignore-provider"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Vagrantfile validated successfully" in proc.stdout
    vagrantfile = (REPO / "Vagrantfile").read_text()
    assert '"provisioning/site.yml"' in vagrantfile
    assert "guest: 443, host: 8443" in vagrantfile
