"""The example inventory takes its secrets from a real Ansible Vault file, and that file
defines every vault_* name the inventory refers to."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import yaml

from tests.support.provisioning import PROVISIONING, tool

EXAMPLE = PROVISIONING / "inventories" / "example"
VAULT = EXAMPLE / "group_vars" / "evr_appliances" / "vault.yml"


def _view(password_file: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [tool("ansible-vault"), "view", "--vault-password-file", password_file, str(VAULT)],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_example_vault_is_encrypted_and_defines_every_vault_name_the_inventory_uses() -> None:
    assert VAULT.read_text().startswith("$ANSIBLE_VAULT;1.1;AES256\n")
    assert "vault_evr_turn_secret" not in VAULT.read_text()
    opened = _view(str(EXAMPLE / "vault-password.example"))
    assert opened.returncode == 0, opened.stderr
    defined = set(yaml.safe_load(opened.stdout))
    used = {
        name
        for path in EXAMPLE.rglob("*.yml")
        if path != VAULT
        for name in re.findall(r"\bvault_[a-z0-9_]+", path.read_text())
    }
    assert "vault_evr_turn_secret" in used
    assert used <= defined, f"not in vault.yml: {sorted(used - defined)}"


def test_example_vault_does_not_open_with_another_password(tmp_path: Path) -> None:
    wrong = tmp_path / "wrong-password"
    wrong.write_text("not-the-example-password\n")
    assert _view(str(wrong)).returncode != 0
