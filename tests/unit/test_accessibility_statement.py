"""The accessibility statement claims only what a test proves: every test its data file
names exists, and the compliance status follows from the list of known failures."""

from __future__ import annotations

import ast
from pathlib import Path

from appliance.services.governance import accessibility

ROOT = Path(__file__).resolve().parents[2]


def missing_tests(statement: accessibility.Statement) -> list[str]:
    """The ``path::function`` references that name no test function in the repository."""
    missing = []
    for item in statement.tested:
        path, _, function = item.test.partition("::")
        source = ROOT / path
        names = (
            {
                node.name
                for node in ast.walk(ast.parse(source.read_text()))
                if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
            }
            if source.is_file()
            else set()
        )
        if not function.startswith("test_") or function not in names:
            missing.append(item.test)
    return missing


def test_every_claim_names_a_test_that_exists() -> None:
    statement = accessibility.load()
    assert statement.tested
    assert missing_tests(statement) == []


def test_the_check_finds_a_claim_whose_test_is_gone(tmp_path: Path) -> None:
    """Test the test: a renamed test and a missing file are both reported."""
    data = accessibility.DATA.read_text() + (
        '\n[[tested]]\nwhat = "x"\ntest = "tests/unit/test_accessibility_statement.py::test_gone"\n'
        '\n[[tested]]\nwhat = "y"\ntest = "tests/nowhere.py::test_every_claim_names_a_test"\n'
    )
    edited = tmp_path / "accessibility.toml"
    edited.write_text(data)
    assert missing_tests(accessibility.load(edited)) == [
        "tests/unit/test_accessibility_statement.py::test_gone",
        "tests/nowhere.py::test_every_claim_names_a_test",
    ]


def test_the_status_is_partial_while_anything_is_known_not_to_meet(tmp_path: Path) -> None:
    assert accessibility.load().status == "partially compliant"
    text = accessibility.DATA.read_text()
    edited = tmp_path / "accessibility.toml"
    edited.write_text(text[: text.index("\n[[not_meeting]]")])
    assert accessibility.load(edited).not_meeting == ()
    assert accessibility.load(edited).status == "fully compliant"
