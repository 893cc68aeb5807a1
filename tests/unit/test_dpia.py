"""`evr dpia`: the annex follows the settings and the access rules in code."""

from __future__ import annotations

from pathlib import Path

from appliance.cli import governance
from appliance.config import load_settings
from appliance.services.governance import dpia


def test_a_change_of_setting_changes_the_annex(tmp_path: Path) -> None:
    """30 days of recordings, then 90, and GOV.UK Notify: the annex says each; the
    access table is read from the handlers (a role added in code appears)."""
    rules = governance.access_rules()
    assert dpia.Rule("GET", "/governance/subject-access", "information_manager") in rules
    assert dpia.Rule("GET", "/privacy", "public") in rules
    base = load_settings(data_dir=tmp_path, public_url="https://evr.test")
    changed = base.model_copy(update={"retention_days": 90, "notify_adapter": "govuk_notify"})
    before, after = dpia.markdown(base, rules), dpia.markdown(changed, rules)
    assert "| recording | 30 days after made" in before
    assert "| recording | 90 days after made" in after and "30 days after made" not in after
    assert "GOV.UK Notify" in after and "GOV.UK Notify" not in before
    assert "| GET | `/governance/subject-access` | information_manager |" in before
    written = dpia.write(changed, rules, tmp_path / "annex")
    page = written[1].read_text()
    assert "<td>recording</td><td>90 days after made" in page
