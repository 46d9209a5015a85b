"""What every command-line tool shares."""

from __future__ import annotations

import subprocess
import sys

import pytest

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


def test_every_tool_is_decorated() -> None:
    from dia_sim.cli import ap_proto, gen_sources, log2csv, plot_timing
    from l1db.cli import create_l1_schema, l1db_state, parse_cat

    for module in (ap_proto, gen_sources, log2csv, plot_timing, create_l1_schema, parse_cat, l1db_state):
        assert hasattr(module.main, "__wrapped__"), module.__name__
