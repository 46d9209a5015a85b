"""README stays the reference: every option, command, operation and CSV column is in it."""

from __future__ import annotations

import re
from pathlib import Path

from dia_sim.log2csv import CSV_COLUMNS
from l1db.config import OPTIONS
from l1db.timing_log import OPERATIONS

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def test_every_config_option_is_documented() -> None:
    for opt in OPTIONS:
        assert f"| [{opt.section}] | `{opt.name}` |" in README, opt.name


def test_every_operation_is_documented() -> None:
    for op in OPERATIONS:
        assert f"| `{op}` |" in README, op


def test_every_csv_column_is_documented() -> None:
    for column in CSV_COLUMNS:
        base = re.sub(r"_(real|cpu)$", "", column)
        assert f"`{column}`" in README or f"`{base}`" in README, column


def test_every_command_has_an_example() -> None:
    setup = (ROOT / "setup.py").read_text()
    commands = re.findall(r'"(\w+) = [\w.]+:main"', setup)
    assert len(commands) == 8
    for command in commands:
        assert re.search(rf"^{command} ", README, re.M), command
        assert (ROOT / "bin" / command).is_file()


def test_ci_runs_the_readme_test_command() -> None:
    assert "bash scripts/quickstart.sh" in README and "bash scripts/test.sh" in README
    assert "bash scripts/test.sh" in (ROOT / ".ci" / "run").read_text()
