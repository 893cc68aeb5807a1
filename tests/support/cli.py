"""`evr COMMAND` run in the test's own process, as an operator's shell would run it.

A new Python process costs about two seconds of imports before the command does anything,
and the evidence, backup, audit and report tests run some forty commands on two engines.
Here ``appliance.cli.main`` runs with the environment, standard input and output the
command would have had, and its exit code; ``tests/integration/test_cli.py`` keeps the real
``python -m appliance`` process for what only a process shows (the entry point, its help).
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from appliance import cli


@dataclass
class Ran:
    """What ``subprocess.run(..., capture_output=True, text=True)`` would have returned."""

    returncode: int
    stdout: str
    stderr: str


@contextlib.contextmanager
def _environment(env: Mapping[str, str]) -> Iterator[None]:
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


@contextlib.contextmanager
def _logging_kept() -> Iterator[None]:
    """`evr` points the root logger at its own stderr; pytest's capture comes back after."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    try:
        yield
    finally:
        for handler in list(root.handlers):
            root.removeHandler(handler)
        for handler in handlers:
            root.addHandler(handler)
        root.setLevel(level)


def run_evr(env: Mapping[str, str], *args: str, stdin: str = "") -> Ran:
    """``evr ARGS`` with exactly ``env`` as its environment (the test's own EVR_* left out
    unless given), ``stdin`` as its input; a usage error's exit is its code, as in a shell."""
    out, err = io.StringIO(), io.StringIO()
    clean = {k: v for k, v in os.environ.items() if not k.startswith("EVR_")} | dict(env)
    with (
        _environment(clean),
        _logging_kept(),
        contextlib.redirect_stdout(out),
        contextlib.redirect_stderr(err),
    ):
        saved_stdin = sys.stdin
        sys.stdin = io.StringIO(stdin)
        try:
            code = cli.main(list(args))
        except SystemExit as exit_:
            code = exit_.code if isinstance(exit_.code, int) else 1
        finally:
            sys.stdin = saved_stdin
    return Ran(code, out.getvalue(), err.getvalue())
