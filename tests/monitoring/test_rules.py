"""Alert rules: valid, unit-tested (each fires once and stays quiet once), with runbooks."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import yaml

from tests.support.promql_names import ROOT

PROMETHEUS = ROOT / "monitoring" / "prometheus"


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("promtool")
    assert binary, "promtool missing: make test installs the Debian package prometheus"
    return subprocess.run(
        [binary, *args], cwd=PROMETHEUS, capture_output=True, text=True, timeout=120
    )


def _alerts() -> list[dict]:
    rules = yaml.safe_load((PROMETHEUS / "rules" / "evr.rules.yml").read_text())
    return [r for g in rules["groups"] for r in g["rules"] if "alert" in r]


def test_rules_and_config_check() -> None:
    checked = promtool("check", "rules", "rules/evr.rules.yml")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    config = promtool("check", "config", "--syntax-only", "prometheus.yml")
    assert config.returncode == 0, config.stdout + config.stderr


def test_rule_unit_tests_pass() -> None:
    result = promtool("test", "rules", "tests/evr.rules.test.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_every_alert_has_a_firing_and_a_quiet_test() -> None:
    tests = yaml.safe_load((PROMETHEUS / "tests" / "evr.rules.test.yml").read_text())["tests"]
    fired: set[str] = set()
    quiet: set[str] = set()
    for case in tests:
        for check in case.get("alert_rule_test", []):
            (fired if check.get("exp_alerts") else quiet).add(check["alertname"])
    names = {alert["alert"] for alert in _alerts()}
    assert len(names) >= 9
    assert names - fired == set(), "alerts never shown firing"
    assert names - quiet == set(), "alerts never shown quiet"


def test_every_alert_has_severity_summary_and_a_runbook_that_exists() -> None:
    for alert in _alerts():
        assert alert["labels"]["severity"] in ("critical", "warning"), alert["alert"]
        assert alert["annotations"]["summary"], alert["alert"]
        runbook = alert["annotations"]["runbook_url"]
        assert runbook == f"docs/runbooks/{alert['alert']}.md"
        page = Path(ROOT / runbook)
        assert page.is_file(), runbook
        assert page.read_text().startswith(f"# {alert['alert']}")
