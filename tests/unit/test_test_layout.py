"""The suite's own layout: shared helpers live in tests/support, and nothing imports a test.

A test module imported by another runs its module-level code twice and couples two tests'
fixtures; a conftest imported as a module is a second copy pytest does not know about. So a
file under tests/ may import from `tests.support` only, every test folder is a package, and a
Python file outside tests/support is a test module, a conftest or a package marker.
"""

from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]
SUPPORT = TESTS / "support"


def imports_of_tests(source: str) -> list[str]:
    """The `tests.*` modules (and relative imports) a file's source names outside tests.support."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and node.level:
            found.append("." * node.level + (node.module or ""))
            continue
        if isinstance(node, ast.ImportFrom):
            names = [node.module or ""]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        else:
            continue
        for name in names:
            if (name == "tests" or name.startswith("tests.")) and not (
                name == "tests.support" or name.startswith("tests.support.")
            ):
                found.append(name)
    return found


def test_the_import_check_sees_a_test_module_a_conftest_and_a_relative_import() -> None:
    source = (
        "from tests.e2e.test_call import new_link\n"
        "import tests.conftest\n"
        "from .conftest import Events\n"
        "from tests.support.live import LiveServer\n"
        "from tests import support\n"
    )
    assert imports_of_tests(source) == [
        "tests.e2e.test_call",
        "tests.conftest",
        ".conftest",
        "tests",
    ]


def test_no_file_under_tests_imports_a_test_module_or_a_conftest() -> None:
    files = sorted(TESTS.rglob("*.py"))
    assert len(files) > 50
    offenders = {
        str(path.relative_to(TESTS)): found
        for path in files
        if (found := imports_of_tests(path.read_text()))
    }
    assert offenders == {}, "import shared helpers from tests.support instead"


def test_every_test_folder_is_a_package() -> None:
    folders = {path.parent for path in TESTS.rglob("test_*.py")} | {TESTS, SUPPORT}
    assert TESTS / "unit" in folders
    assert (
        sorted(
            str(f.relative_to(TESTS.parent)) for f in folders if not (f / "__init__.py").exists()
        )
        == []
    )


def test_helpers_live_in_tests_support() -> None:
    strays = [
        str(path.relative_to(TESTS))
        for path in TESTS.rglob("*.py")
        if SUPPORT not in path.parents
        and not path.name.startswith("test_")
        and path.name not in {"conftest.py", "__init__.py"}
    ]
    assert strays == []
