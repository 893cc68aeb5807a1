"""Dashboards and rules ask only for metrics the appliance exports, so they cannot drift."""

from __future__ import annotations

import copy
import json

from tests.support.promql_names import (
    DASHBOARDS,
    all_expressions,
    dashboard_expressions,
    exported_names,
    unknown_names,
)


def test_every_query_names_an_exported_metric() -> None:
    expressions = list(all_expressions())
    assert len(expressions) > 20
    assert unknown_names(expressions) == []


def test_the_check_fails_on_an_unknown_metric() -> None:
    """Test the test: a dashboard given a metric the appliance does not export is caught."""
    dashboard = json.loads((DASHBOARDS / "evr-overview.json").read_text())
    broken = copy.deepcopy(dashboard)
    broken["panels"][0]["targets"][0]["expr"] = "sum(rate(evr_calls_teleported_total[5m]))"
    found = unknown_names([("broken.json", e) for e in dashboard_expressions(broken)])
    assert found == ["broken.json: evr_calls_teleported_total"]


def test_names_follow_prometheus_practice() -> None:
    names = {n for n in exported_names() if n.startswith("evr_")}
    assert names, "no evr_ metrics exported"
    for name in names:
        assert name == name.lower(), name
        assert not name.endswith(("_ms", "_milliseconds", "_kb", "_percent")), name


def test_dashboards_have_stable_uids_and_use_the_provisioned_data_source() -> None:
    uids = set()
    for path in DASHBOARDS.glob("*.json"):
        dashboard = json.loads(path.read_text())
        assert dashboard["uid"] == path.stem
        uids.add(dashboard["uid"])
        for panel in dashboard["panels"]:
            assert panel["datasource"]["uid"] == "evr-prometheus", (path.name, panel["title"])
    assert uids == {"evr-overview", "evr-call-quality"}
