"""The provisioning code passes the linters the issue names, before anything runs it."""

from __future__ import annotations

import os
import subprocess

from tests.support.provisioning import PROVISIONING, REPO, tool


def _run(args: list[str], cwd: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, ANSIBLE_CONFIG=str(PROVISIONING / "ansible.cfg"), NO_COLOR="1")
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def test_yamllint_passes() -> None:
    proc = _run([tool("yamllint"), "--strict", "provisioning", ".yamllint"], str(REPO))
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_syntax_check_passes_for_both_inventories() -> None:
    for inventory in ("inventories/example/hosts.yml", "inventories/vagrant/hosts.yml"):
        proc = _run(
            [tool("ansible-playbook"), "--syntax-check", "-i", inventory, "site.yml"],
            str(PROVISIONING),
        )
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert "playbook: site.yml" in proc.stdout


def test_ansible_lint_production_profile_passes() -> None:
    proc = _run(
        [tool("ansible-lint"), "--offline", "--profile", "production", "provisioning"], str(REPO)
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output
    assert "Profile 'production' was required, and it passed" in output
