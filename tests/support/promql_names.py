"""The metric names a dashboard or a rule file asks Prometheus for, and the ones we export."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml
from prometheus_client import REGISTRY

import appliance.metrics  # noqa: F401  (defines every evr_ series)

ROOT = Path(__file__).resolve().parents[2]
DASHBOARDS = ROOT / "monitoring" / "grafana" / "dashboards"
RULES = ROOT / "monitoring" / "prometheus" / "rules"
# A name Prometheus would look up: not a function, label or keyword, and ours.
EVR_NAME = re.compile(r"(?<![\w:])(evr_[a-zA-Z0-9_]+|evr:[a-zA-Z0-9_:]+)(?![\w(])")
SUFFIXES = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_count", "_sum", "_created"),
    "gauge": ("",),
    "summary": ("", "_count", "_sum", "_created"),
    "info": ("_info",),
}


def exported_names() -> set[str]:
    names: set[str] = set()
    for family in REGISTRY.collect():
        names.update(family.name + suffix for suffix in SUFFIXES.get(family.type, ("",)))
        names.update(sample.name for sample in family.samples)
    return names


def recorded_names() -> set[str]:
    return {rule["record"] for rule in _rules() if "record" in rule}


def _rules() -> Iterator[dict[str, Any]]:
    for path in sorted(RULES.glob("*.yml")):
        for group in yaml.safe_load(path.read_text())["groups"]:
            yield from group["rules"]


def dashboard_expressions(dashboard: dict[str, Any]) -> Iterator[str]:
    for panel in dashboard.get("panels", []):
        for target in panel.get("targets", []):
            if target.get("expr"):
                yield target["expr"]
        yield from dashboard_expressions(panel)  # rows hold panels


def all_expressions() -> Iterator[tuple[str, str]]:
    """``(where, expression)`` for every query in the dashboards and the rules."""
    for path in sorted(DASHBOARDS.glob("*.json")):
        for expr in dashboard_expressions(json.loads(path.read_text())):
            yield path.name, expr
    for rule in _rules():
        yield rule.get("alert") or rule.get("record"), rule["expr"]


def unknown_names(expressions: Iterator[tuple[str, str]] | list[tuple[str, str]]) -> list[str]:
    """Each ``where: name`` that no exported metric or recording rule provides."""
    known = exported_names() | recorded_names()
    return [
        f"{where}: {name}"
        for where, expr in expressions
        for name in EVR_NAME.findall(expr)
        if name not in known
    ]
