"""site.yml converges into a Debian 12 chroot and a second run changes nothing."""

from __future__ import annotations

import stat
import tomllib

import pytest

from appliance.config import load_settings
from tests.support.provisioning import BOX_TURN_ADDRESS, TURN_SECRET, Converged

# The session's two converges run in the setup of whichever test comes first; on a
# shared, loaded machine they outlast the suite's 120 s per-test limit.
pytestmark = pytest.mark.timeout(1800)


def _chroot_user(root_etc_passwd: str, name: str) -> tuple[int, int]:
    for line in root_etc_passwd.splitlines():
        fields = line.split(":")
        if fields[0] == name:
            return int(fields[2]), int(fields[3])
    raise AssertionError(f"no user {name} in the chroot")


def test_first_converge_changes_and_succeeds(converged: Converged) -> None:
    recap = converged.first.recap
    assert recap["failed"] == 0 and recap["unreachable"] == 0, converged.first.output[-4000:]
    assert recap["changed"] > 10


def test_second_converge_is_idempotent(converged: Converged) -> None:
    recap = converged.second.recap
    changed = [line for line in converged.second.output.splitlines() if line.startswith("changed:")]
    assert recap["changed"] == 0, "\n".join(changed) + converged.second.output[-4000:]
    assert recap["failed"] == 0


def test_master_key_is_made_once_and_kept(converged: Converged) -> None:
    path = converged.root / "etc/evr/master.key"
    key = path.read_bytes()
    assert len(key) == 32
    assert key == converged.master_key_after_first, "the second run replaced the master key"
    assert len(set(key)) > 8, "32 bytes that are not random"
    info = path.stat()
    uid, gid = _chroot_user((converged.root / "etc/passwd").read_text(), "evr")
    assert stat.S_IMODE(info.st_mode) == 0o600
    assert (info.st_uid, info.st_gid) == (uid, gid)


def test_settings_file_is_valid_for_the_appliance(converged: Converged) -> None:
    path = converged.root / "etc/evr/evr.toml"
    raw = tomllib.loads(path.read_text())
    assert raw["port"] == 8443
    # /metrics and /readyz: their own listener, opened by the firewall to monitoring only.
    assert (raw["metrics_host"], raw["metrics_port"]) == ("0.0.0.0", 8444)  # noqa: S104
    assert raw["tls_cert"] == "/etc/evr/tls/cert.pem"
    settings = load_settings(path)
    assert settings.force_name == "Test Constabulary"
    assert settings.turn_secret is not None
    assert settings.turn_secret.get_secret_value() == TURN_SECRET
    assert settings.data_dir.as_posix() == "/var/lib/evr"
    info = path.stat()
    assert stat.S_IMODE(info.st_mode) == 0o640
    assert info.st_uid == 0


def test_appliance_installed_in_a_venv_owned_by_root(converged: Converged) -> None:
    evr = converged.root / "opt/evr/venv/bin/evr"
    assert evr.is_file()
    assert evr.stat().st_uid == 0
    wheels = list((converged.root / "opt/evr/dist").glob("evr_appliance-*.whl"))
    assert len(wheels) == 1


def test_local_ca_key_stays_with_root(converged: Converged) -> None:
    tls = converged.root / "etc/evr/tls"
    assert stat.S_IMODE((tls / "ca.key").stat().st_mode) == 0o600
    assert stat.S_IMODE((tls / "key.pem").stat().st_mode) == 0o640
    assert "BEGIN CERTIFICATE" in (tls / "cert.pem").read_text()


def test_coturn_takes_443_on_its_own_address_with_one_capability(converged: Converged) -> None:
    """TURN over TLS on 443 (the inventory gives coturn an address of its own): coturn
    listens only there, and its unit gains CAP_NET_BIND_SERVICE and nothing else."""
    config = (converged.root / "etc/turnserver.conf").read_text().splitlines()
    assert [line for line in config if line.startswith("listening-ip=")] == [
        f"listening-ip={BOX_TURN_ADDRESS}"
    ]
    assert "tls-listening-port=443" in config
    drop_in = converged.root / "etc/systemd/system/coturn.service.d/evr-privileged-port.conf"
    lines = drop_in.read_text().splitlines()
    assert "AmbientCapabilities=CAP_NET_BIND_SERVICE" in lines
    assert "CapabilityBoundingSet=CAP_NET_BIND_SERVICE" in lines
