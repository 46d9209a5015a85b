"""What every command-line tool shares."""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
from pathlib import Path

import pytest

SETUP = Path(__file__).resolve().parents[1] / "setup.py"

PROGRAM = """
import sys
from l1db.cli import quiet_broken_pipe

def main():
    for i in range(200_000):  # far more than a pipe buffer holds
        print("DiaSource", i)
    return 0

sys.exit({call}())
"""


@pytest.mark.parametrize("decorated", [True, False])
def test_output_into_a_closed_pipe(decorated: bool) -> None:
    """``tool | head``: a decorated main ends quietly; a bare one prints a traceback."""
    program = PROGRAM.format(call="quiet_broken_pipe(main)" if decorated else "main")
    result = subprocess.run(f"'{sys.executable}' -c '{program}' | head -c 9", shell=True, capture_output=True,
                            text=True)
    assert result.stdout == "DiaSource"
    assert ("BrokenPipeError" in result.stderr) != decorated, result.stderr


def console_scripts() -> dict[str, str]:
    """setup.py's ``CONSOLE_SCRIPTS`` (``name = module:function``), read without running setup()."""
    for node in ast.parse(SETUP.read_text()).body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "CONSOLE_SCRIPTS"
                                                for t in node.targets):
            entries = ast.literal_eval(node.value)
            return dict(tuple(part.strip() for part in entry.split("=", 1)) for entry in entries)
    raise AssertionError(f"no CONSOLE_SCRIPTS list in {SETUP}")


def test_every_tool_is_decorated() -> None:
    scripts = console_scripts()
    assert len(scripts) >= 8 and "ap_proto" in scripts and "cassandra_nodes" in scripts, scripts
    for name, target in scripts.items():
        module, function = target.split(":")
        main = getattr(importlib.import_module(module), function)
        assert hasattr(main, "__wrapped__"), name
