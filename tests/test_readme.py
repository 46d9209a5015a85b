"""README.md and docs/*.md stay the reference: every option, command, operation, CSV column, module; their code runs."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from readme_blocks import DOCS, README, ROOT, RUNNABLE, Block, copy_scratch, names_a_server, readme_blocks, run_block

from dia_sim.cli.ap_proto import flags_table
from dia_sim.cli.readme_tables import TABLES, replace_table
from dia_sim.cli.readme_tables import main as readme_tables
from dia_sim.log2csv import CSV_COLUMNS
from dia_sim.options import readme_table
from l1db.timing_log import OPERATIONS

#: Every documentation file as one text, for what must be documented somewhere.
ALL_DOCS = "\n".join(DOCS.values())


def the_file_with(line: str) -> str:
    """The text of the one documentation file (`DOCS`) that has the line ``line``."""
    found = [text for text in DOCS.values() if line in text.splitlines()]
    assert len(found) == 1, f"{len(found)} documentation files have the line {line!r}"
    return found[0]


def test_generated_tables_are_current() -> None:
    # Written from the declarations: python -m dia_sim.cli.readme_tables docs/*.md cfg/*.cfg
    assert TABLES["| section | key | default | allowed | meaning |"] is readme_table
    for header, table in TABLES.items():
        assert ALL_DOCS.count(header) == 1, header
        text = the_file_with(header)
        assert replace_table(text, header, table()) == text, header


def test_readme_tables_says_one_line_for_a_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert readme_tables([str(tmp_path / "nope.md")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("readme_tables: no such file: ") and err.count("\n") == 1 and "Traceback" not in err
    assert readme_tables(["--help"]) == 0 and "rewrites" in capsys.readouterr().err


def test_ap_proto_argument_table_is_the_generated_one() -> None:
    # One row per argument of ap_proto --help, its text (python -m dia_sim.cli.readme_tables docs/*.md).
    assert TABLES["| ap_proto argument | meaning |"] is flags_table
    table = flags_table()
    text = the_file_with("| ap_proto argument | meaning |")
    assert replace_table(text, "| ap_proto argument | meaning |", table) == text
    assert table.count("\n") == 2 + len([line for line in table.splitlines() if line.startswith("| `")])
    for flag in ("`sources`", "`-n/--num-visits", "`--fov X`", "`--sky {south,full}`", "`--retry-wait X`",
                 "`-v/--verbose`"):
        assert flag in table, flag


def test_every_operation_is_documented() -> None:
    for op in OPERATIONS:
        assert f"| `{op}` |" in ALL_DOCS, op


def test_every_csv_column_is_documented() -> None:
    for column in CSV_COLUMNS:
        base = re.sub(r"_(real|cpu)$", "", column)
        assert f"`{column}`" in ALL_DOCS or f"`{base}`" in ALL_DOCS, column


def test_every_command_has_an_example() -> None:
    setup = (ROOT / "setup.py").read_text()
    commands = re.findall(r'"(\w+) = [\w.]+:main"', setup)
    assert len(commands) == 9
    for command in commands:
        assert re.search(rf"^{command} ", ALL_DOCS, re.M), command
        assert (ROOT / "bin" / command).is_file()


def test_ci_runs_the_readme_test_command() -> None:
    assert "bash scripts/quickstart.sh" in README and "bash scripts/test.sh" in README
    assert "bash scripts/test.sh" in (ROOT / ".ci" / "run").read_text()


# ---------------------------------------------------------------- the documentation's code blocks run
#
# Convention (authors of README.md and docs/*.md, read this): every fenced code block whose language is
# `bash`, `sh` or `python` is a command or Python example, and the tests run it, each block on its
# own: in a new scratch directory holding copies of cfg/, schema/, notebooks/ and tests/data/,
# with the toolkit's commands on PATH, under `bash -euo pipefail` (or `python`). The example
# configs that name a server (cfg/l1db-pg.cfg, cfg/l1db-mysql.cfg, cfg/l1db-cassandra.cfg) are
# pointed at a fresh database (keyspace) of the test servers (tests/conftest.py) when the block
# names them, so a block runs as written against real servers; others get SQLite.
# A block may be preceded, on the lines right above its opening fence, by HTML comments (not
# shown on the rendered page):
#
#   <!-- readme-test: not-run: REASON -->   the block is not run; REASON (required) says why,
#                                           e.g. it starts servers, installs packages or runs
#                                           for hours; a test checks that it is there.
#   <!-- readme-test: setup: COMMANDS -->   shell commands run first, in the same shell, to make
#                                           the files the block reads (a short run's log, ...).
#   <!-- readme-test: runs-in: FILE -->     the block is run, as above, by the test file FILE
#                                           (tests/...) instead of here, e.g. where what it
#                                           starts is shared with other tests (the 3-node
#                                           cluster block: tests/test_cassandra_cluster.py);
#                                           FILE takes it with block_under("HEADING") (the
#                                           heading as in Block.heading, unique over the files) and
#                                           runs it with run_block (tests/readme_blocks.py),
#                                           and a test checks that it does.
#
# New blocks are picked up automatically: add a block and it runs, or say why it cannot.
# Finding the blocks and running one is tests/readme_blocks.py.

BLOCKS = [b for b in readme_blocks() if b.language in RUNNABLE]
RUN = [b for b in BLOCKS if b.not_run is None and b.runs_in is None]


def test_every_block_runs_or_says_why_not() -> None:
    assert BLOCKS and RUN
    for block in readme_blocks():
        if block.language not in RUNNABLE:
            assert block.not_run is None and not block.setup and block.runs_in is None, \
                f"{block.where}: directive on a {block.language or 'plain'} block"
        elif block.not_run is not None:
            assert len(block.not_run) > 10, f"{block.where}: not-run needs a reason"
            assert block.runs_in is None, f"{block.where}: not-run and runs-in"
        elif block.runs_in is not None:
            # The file runs it: it takes the block by its heading and hands it to run_block.
            path = ROOT / block.runs_in
            assert path.is_file() and path.parent == ROOT / "tests", f"{block.where}: no test file {block.runs_in}"
            text = path.read_text()
            assert f'block_under("{block.heading}")' in text and "run_block(" in text, \
                f"{block.where}: {block.runs_in} does not run the block (block_under, run_block)"


@pytest.fixture
def scratch(tmp_path: Path) -> Path:
    return copy_scratch(tmp_path)


# A block that names no test server runs on SQLite: it may run while a test restarts the shared
# servers (tests/conftest.py).
@pytest.mark.parametrize("block", [b if names_a_server(b) else pytest.param(b, marks=pytest.mark.own_servers)
                                   for b in RUN], ids=[b.id for b in RUN])
def test_readme_block_runs(block: Block, scratch: Path) -> None:
    run_block(block, scratch)


# ---------------------------------------------------------------- layout and notebook


def test_layout_table_lists_every_module() -> None:
    text = the_file_with("| path | what |")
    layout = text[text.index("| path | what |"):]
    rows = {m.group(1): m.group(2) for m in re.finditer(r"^\| `([\w/]+/)`(?:, `[\w.]+`)? \| (.*) \|$", layout, re.M)}
    for top in ("l1db", "dia_sim", "benchmarks"):
        for path in sorted((ROOT / top).rglob("*.py")):
            relative = path.relative_to(ROOT).as_posix()
            if path.name == "__init__.py" or "/conf/" in relative:
                continue
            folder = max((f for f in rows if relative.startswith(f)), key=len, default=None)
            assert folder is not None, f"no layout row for {relative}"
            assert f"`{relative[len(folder):]}`" in rows[folder] or f"`{path.name}`" in rows[folder], \
                f"layout row {folder} does not list {relative}"


def test_the_notebook_opens_with_what_the_readme_installs() -> None:
    """quickstart.sh installs the notebook extra, which brings JupyterLab; the docs say how to open it."""
    setup = (ROOT / "setup.py").read_text()
    assert re.search(r'"notebook": NOTEBOOK_REQUIRES', setup) and "jupyterlab" in setup
    assert re.search(r"_venv\.sh\"? notebook", (ROOT / "scripts" / "quickstart.sh").read_text())
    assert "jupyter lab notebooks/timing_analysis.ipynb" in ALL_DOCS
    # The extra is installed here too (scripts/test.sh): JupyterLab answers.
    jupyter = Path(sys.executable).parent / "jupyter"
    done = subprocess.run([str(jupyter), "lab", "--version"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and re.match(r"\d+\.\d+", done.stdout), done.stderr
