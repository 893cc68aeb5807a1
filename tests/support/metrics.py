"""Reading an appliance's /metrics in a test, as Prometheus would scrape it."""

from __future__ import annotations

import shutil
import subprocess

from prometheus_client.parser import text_string_to_metric_families

from tests.support.appliance import Appliance
from tests.support.process import https_get

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(appliance: Appliance, promtool: bool = False) -> Samples:
    """Every sample by name and labels; with ``promtool``, the text is first checked by
    Prometheus's own linter (what the metrics test proves; others only read values)."""
    _, text = https_get(appliance.metrics_url + "/metrics")
    if promtool:
        check = subprocess.run(
            [shutil.which("promtool") or "promtool", "check", "metrics"],
            input=text,
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert check.returncode == 0, check.stdout + check.stderr
    values: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            values[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return values


def value(values: Samples, name: str, **labels: str) -> float:
    return values.get((name, tuple(sorted(labels.items()))), 0.0)
