"""Write the documentation's generated tables and the example configs' option comments from the declarations.

``python -m dia_sim.cli.readme_tables docs/*.md cfg/*.cfg`` rewrites the
option table (every config section, l1db's and ``[ap_proto]``:
`dia_sim.options.readme_table`) and the table of ap_proto's arguments
(`dia_sim.cli.ap_proto.flags_table`) in the Markdown file that holds each
(docs/configuration.md, docs/commands.md: the file with the table's header
line), and the comment above each option of the example configs
(`dia_sim.options.config_file_text`). Without an argument it prints the two
tables. Tests check that the files are current.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

from ..options import config_file_text, readme_table
from .ap_proto import flags_table

__all__ = ["TABLES", "replace_table", "main"]

#: The documentation's generated tables: the header line each starts with, and what writes it.
TABLES: dict[str, Callable[[], str]] = {
    "| section | key | default | allowed | meaning |": readme_table,
    "| ap_proto argument | meaning |": flags_table,
}


def replace_table(text: str, header: str, table: str) -> str:
    """``text`` with the markdown table that starts with the line ``header`` replaced by ``table``.

    Raises
    ------
    ValueError
        If no line, or more than one, is ``header``.
    """
    lines = text.splitlines(keepends=True)
    starts = [i for i, line in enumerate(lines) if line.rstrip("\n") == header]
    if len(starts) != 1:
        raise ValueError(f"{len(starts)} tables start with {header!r}; expected one")
    start = starts[0]
    end = next((i for i in range(start, len(lines)) if not lines[i].startswith("|")), len(lines))
    return "".join(lines[:start]) + table + "".join(lines[end:])


def _write(path: Path) -> None:
    """Rewrite the generated parts of a Markdown file (the tables it holds) or of an example config (its comments)."""
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".cfg":
        text = config_file_text(text)
    else:
        lines = text.splitlines()
        for header, table in TABLES.items():
            if header in lines:
                text = replace_table(text, header, table())
    path.write_text(text, encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    """Write the generated parts of the files named; with none, print the generated tables."""
    names = sys.argv[1:] if argv is None else argv
    if any(name.startswith("-") for name in names):
        print(__doc__.split("\n\n")[1].replace("``", ""), file=sys.stderr)
        return 0 if set(names) & {"-h", "--help"} else 2
    missing = [name for name in names if not Path(name).is_file()]
    if missing:
        print(f"readme_tables: no such file: {', '.join(missing)}", file=sys.stderr)
        return 1
    for name in names:
        _write(Path(name))
    if not names:
        print("\n".join(table() for table in TABLES.values()), end="")
    return 0


if __name__ == "__main__":  # python -m dia_sim.cli.readme_tables docs/*.md cfg/*.cfg
    sys.exit(main())
