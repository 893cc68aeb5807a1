"""The house's layers hold: services are grouped by domain and import only downward;
no service imports the web layer, the hub or the senders; media never imports the
appliance; no web handler imports another handler."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SERVICES = ROOT / "appliance" / "services"


def imported(path: Path) -> set[str]:
    """Every module a file imports, with ``from x import y`` giving both x and x.y."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def domain_of(module: str) -> str | None:
    parts = module.split(".")
    if parts[:2] != ["appliance", "services"] or len(parts) < 3:
        return None
    return parts[2]


def service_graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = defaultdict(set)
    for path in SERVICES.rglob("*.py"):
        here = path.relative_to(SERVICES).parts[0].removesuffix(".py")
        for module in imported(path):
            there = domain_of(module)
            if there is not None and there != here and (SERVICES / there).is_dir():
                graph[here].add(there)
    return graph


def cycle_in(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        state[node] = 2
        path.pop()
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_services_are_grouped_by_domain() -> None:
    loose = sorted(
        p.name for p in SERVICES.glob("*.py") if p.name not in ("__init__.py", "audit.py")
    )
    assert loose == [], "a service module outside its domain package"
    assert len([p for p in SERVICES.iterdir() if p.is_dir() and p.name != "__pycache__"]) >= 6


def test_service_domains_import_only_downward() -> None:
    assert cycle_in(service_graph()) is None


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert cycle_in({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert cycle_in({"a": {"b"}, "b": {"c"}}) is None


def test_no_service_imports_the_web_the_hub_or_the_senders() -> None:
    upward = {
        f"{path.relative_to(ROOT)}: {module}"
        for path in SERVICES.rglob("*.py")
        for module in imported(path)
        if module.startswith(("appliance.web", "appliance.live", "appliance.notify"))
    }
    assert upward == set()


def test_media_never_imports_the_appliance() -> None:
    upward = {
        f"{path.relative_to(ROOT)}: {module}"
        for path in (ROOT / "media").rglob("*.py")
        for module in imported(path)
        if module.split(".")[0] == "appliance"
    }
    assert upward == set()


def test_no_web_handler_imports_another_handler() -> None:
    web = ROOT / "appliance" / "web"
    handlers = {
        ".".join(path.relative_to(ROOT).with_suffix("").parts)
        for path in web.rglob("*.py")
        if "routes = web.RouteTableDef()" in path.read_text()
    }
    assert len(handlers) > 20, "the handler modules were not found"
    borrowed = {
        f"{handler}: {module}"
        for handler in handlers
        for module in imported(ROOT.joinpath(*handler.split(".")).with_suffix(".py"))
        if any(module == other or module.startswith(other + ".") for other in handlers - {handler})
    }
    assert borrowed == set()
