"""The code blocks of README.md and docs/*.md as tests run them: found with their directives, run in a scratch dir.

One implementation for every test that runs a documentation block:
tests/test_readme.py runs each block on its own; a block marked ``runs-in:
FILE`` is run by that test file instead (`block_under`), e.g.
tests/test_cassandra_cluster.py runs the 3-node cluster block (docs/cassandra.md)
on the cluster its other tests use. The convention authors follow is in
tests/test_readme.py ("the documentation's code blocks run").
"""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

__all__ = ["ROOT", "DOCS", "README", "RUNNABLE", "SERVER_CONFIGS", "Block", "readme_blocks", "block_under",
           "server_configs", "names_a_server", "copy_scratch", "block_env", "run_block"]

ROOT = Path(__file__).resolve().parent.parent
#: The documentation, by path relative to the repository: README.md (the front page), then docs/*.md (the reference).
DOCS = {path.relative_to(ROOT).as_posix(): path.read_text()
        for path in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]}
README = DOCS["README.md"]

FENCE = re.compile(r"^```(\w*)\n(.*?)^```\n", re.M | re.S)
DIRECTIVE = re.compile(r"<!-- readme-test: (not-run|setup|runs-in): (.*?) -->\s*$", re.S)
#: Languages of the blocks that run, and what runs them.
RUNNABLE = {"bash": "bash", "sh": "bash", "python": "python"}
#: Example configs naming a server, and the backend a block naming them runs against.
SERVER_CONFIGS = {"l1db-pg.cfg": "postgresql", "l1db-mysql.cfg": "mysql", "l1db-cassandra.cfg": "cassandra"}
#: What a scratch dir holds: copies of these folders of the repository.
SCRATCH_FOLDERS = ("cfg", "schema", "notebooks", "tests/data")


@dataclasses.dataclass
class Block:
    """A fenced code block of README.md or a docs/ page, with its ``readme-test`` directives."""

    #: The file it is in, relative to the repository (a key of `DOCS`).
    file: str
    line: int
    language: str
    code: str
    not_run: str | None
    setup: str
    heading: str
    #: The test file (relative to the repository) that runs the block instead of tests/test_readme.py.
    runs_in: str | None = None

    @property
    def id(self) -> str:
        """Unique over the files: the file's name without ``.md``, the heading, the line."""
        return f"{Path(self.file).stem}-{self.heading}-line{self.line}"

    @property
    def where(self) -> str:
        """``FILE:LINE``, for messages."""
        return f"{self.file}:{self.line}"


def readme_blocks() -> list[Block]:
    """Every fenced code block of README.md and docs/*.md (`DOCS`), with its readme-test directives."""
    blocks = []
    for file, text in DOCS.items():
        for match in FENCE.finditer(text):
            line = text[: match.start()].count("\n") + 1
            before = text[: match.start()].splitlines()
            directives: dict[str, str] = {}
            while before and before[-1].startswith("<!-- readme-test:"):
                found = DIRECTIVE.match(before.pop())
                assert found, f"malformed readme-test directive above the block at {file}:{line}"
                directives[found.group(1)] = found.group(2).strip()
            # Headings outside code: a comment line of a block above ("# ...") is not one.
            headings = re.findall(r"^#+ (.+)$", FENCE.sub("", text[: match.start()]), re.M)
            heading = re.sub(r"\W+", "_", headings[-1]).strip("_") if headings else "top"
            blocks.append(Block(file, line, match.group(1), match.group(2), directives.get("not-run"),
                                directives.get("setup", ""), heading, directives.get("runs-in")))
    return blocks


def block_under(heading: str) -> Block:
    """The one block under ``heading`` (`Block.heading`, of any file) that says ``runs-in``: the caller runs it."""
    found = [b for b in readme_blocks() if b.heading == heading and b.runs_in is not None]
    assert len(found) == 1, f"{len(found)} documentation blocks with a runs-in directive under {heading!r}"
    return found[0]


def server_configs(block: Block) -> list[str]:
    """The example configs of a server (`SERVER_CONFIGS`) that the block (or its setup) names."""
    return [name for name in SERVER_CONFIGS if name in block.code or name in block.setup]


def names_a_server(block: Block) -> bool:
    """Whether the block names an example config of a server: it then runs on a test server."""
    return bool(server_configs(block))


def copy_scratch(path: Path) -> Path:
    """Make ``path`` a scratch dir for documentation blocks (copies of `SCRATCH_FOLDERS`); return it."""
    for name in SCRATCH_FOLDERS:
        shutil.copytree(ROOT / name, path / name)
    return path


def block_env() -> dict[str, str]:
    """The environment of a block: the toolkit's commands on PATH, its source tree importable, no plot windows."""
    bin_dir = str(Path(sys.executable).parent)
    return dict(os.environ, PATH=os.pathsep.join([bin_dir, os.environ.get("PATH", "")]),
                PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]), MPLBACKEND="Agg")


def run_block(block: Block, scratch: Path) -> None:
    """Run ``block`` in ``scratch`` (a `copy_scratch` dir) as tests/test_readme.py says; fail the test if it fails.

    The example configs it names are first pointed at a fresh database (keyspace) of the test servers
    (tests/conftest.py), dropped afterwards.
    """
    from conftest import create_test_database

    drops = []
    try:
        for name in server_configs(block):
            url, drop = create_test_database(SERVER_CONFIGS[name], scratch)
            drops.append(drop)
            config = scratch / "cfg" / name
            config.write_text(re.sub(r"^url = .*$", f"url = {url}", config.read_text(), flags=re.M))
        env = block_env()
        if RUNNABLE[block.language] == "python":
            if block.setup:
                subprocess.run(["bash", "-euo", "pipefail", "-c", block.setup], cwd=scratch, env=env, check=True)
            argv = [sys.executable, "-c", block.code]
        else:
            argv = ["bash", "-euo", "pipefail", "-c", f"{block.setup}\n{block.code}"]
        done = subprocess.run(argv, cwd=scratch, env=env, capture_output=True, text=True, timeout=1800)
    finally:
        for drop in drops:
            drop()
    assert done.returncode == 0, \
        f"block at {block.where} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
