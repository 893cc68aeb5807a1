"""The firewall role's ruleset rendered on its own (no converge): the CAD API's
client-certificate listener is open only to the CAD's networks, and closed when none
are named. The converged chroot's ruleset is checked again in test_runtime.py."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

from tests.support.provisioning import PROVISIONING, tool

ROLE = PROVISIONING / "roles" / "evr_firewall"
# One ansible-playbook run (seconds of start-up) renders both: with the CAD's networks
# (task variables) and with the role's defaults.
PLAYBOOK = f"""---
- name: Render the firewall role's ruleset only
  hosts: localhost
  gather_facts: false
  vars_files:
    - {ROLE / "defaults" / "main.yml"}
  tasks:
    - name: The ruleset with the CAD's networks
      ansible.builtin.template:
        src: {ROLE / "templates" / "nftables.conf.j2"}
        dest: "{{{{ out }}}}/open.conf"
        mode: "0644"
      vars:
        evr_firewall_cad_client_networks: ["198.51.100.40/32", "2001:db8:4::/48"]
        evr_firewall_cad_client_port: 9445
    - name: The ruleset with the defaults
      ansible.builtin.template:
        src: {ROLE / "templates" / "nftables.conf.j2"}
        dest: "{{{{ out }}}}/closed.conf"
        mode: "0644"
"""


def _checked(path: Path) -> str:
    run = subprocess.run(["nft", "-c", "-f", str(path)], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    return path.read_text()


def test_the_cad_client_port_opens_only_to_the_cad_networks(tmp_path: Path) -> None:
    """Named networks (v4 and v6) reach the port and nothing else does; with none named
    (the default) the ruleset names the port nowhere."""
    (tmp_path / "playbook.yml").write_text(PLAYBOOK)
    values = {
        "ansible_connection": "local",
        "ansible_python_interpreter": sys.executable,
        "out": str(tmp_path),
        "evr_firewall_admin_networks": ["198.51.100.0/24"],
    }
    (tmp_path / "vars.json").write_text(json.dumps(values))
    env = {k: v for k, v in os.environ.items() if not k.startswith("EVR_")} | {
        "ANSIBLE_CONFIG": str(PROVISIONING / "ansible.cfg"),
        "ANSIBLE_LOCAL_TEMP": str(tmp_path / "ansible-local"),
        "ANSIBLE_NOCOLOR": "1",
    }
    run = subprocess.run(
        [
            tool("ansible-playbook"),
            "-i",
            "localhost,",
            "-e",
            f"@{tmp_path / 'vars.json'}",
            str(tmp_path / "playbook.yml"),
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stdout + run.stderr

    opened = _checked(tmp_path / "open.conf")
    assert "ip saddr { 198.51.100.40/32 } tcp dport 9445 accept" in opened
    assert "ip6 saddr { 2001:db8:4::/48 } tcp dport 9445 accept" in opened
    assert len(re.findall(r"\b9445\b", opened)) == 2
    closed = _checked(tmp_path / "closed.conf")
    assert "policy drop;" in closed and "8445" not in closed
