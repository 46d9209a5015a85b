"""Command-line tool `parse_cat`: convert a catalog schema to the l1db schema format.

Examples::

    parse_cat apdb --tables DiaObject,DiaSource,DiaForcedSource,DiaObjectLast -o schema/apdb-l1.yaml
    parse_cat baselineSchema.sql --tables DiaObject > my-schema.yaml
"""

from __future__ import annotations

import argparse
import logging
import shlex
import sys
import tempfile
from pathlib import Path

from ..parse_cat import (
    ParseCatError,
    generated_header,
    packaged_apdb_path,
    read_catalog,
)
from ..schema_model import SchemaDef, dump_schema
from . import quiet_broken_pipe

__all__ = ["main"]

_LOG = logging.getLogger(__name__)

#: The INPUT word that stands for apdb.yaml of the installed lsst-sdm-schemas.
APDB_WORD = "apdb"


def _table_list(text: str) -> list[str]:
    names = [t.strip() for t in text.split(",") if t.strip()]
    if not names:
        raise argparse.ArgumentTypeError("expected comma-separated table names, e.g. DiaObject,DiaSource")
    return names


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="parse_cat",
        description=(
            "Convert a schema description (Felis YAML, read and validated by lsst-felis, or SQL "
            "CREATE TABLE statements in the MySQL dialect as in the old 'cat' package) into the l1db "
            "schema YAML format. A one-line summary per table goes to stderr."
        ),
        epilog=(
            "example: parse_cat apdb --tables DiaObject,DiaSource,DiaForcedSource,DiaObjectLast "
            "-o schema/apdb-l1.yaml"
        ),
    )
    parser.add_argument(
        "input",
        metavar="INPUT",
        help=f"Felis YAML or SQL DDL file; the word '{APDB_WORD}' means apdb.yaml of the installed "
        "lsst-sdm-schemas package",
    )
    parser.add_argument(
        "-o", "--output", metavar="OUTPUT", type=Path, help="output YAML file (default: standard output)"
    )
    parser.add_argument(
        "--tables",
        metavar="NAMES",
        type=_table_list,
        help="comma-separated tables to convert (default: all tables of INPUT)",
    )
    return parser


def _summary(schema: SchemaDef) -> list[str]:
    lines = []
    for t in schema.tables.values():
        non_null = sum(not c.nullable for c in t.columns)
        lines.append(
            f"{t.name}: {len(t.columns)} columns ({non_null} non-null), "
            f"primary key ({', '.join(t.primary_key)}), {len(t.indexes)} index(es)"
        )
    return lines


def _write(schema: SchemaDef, output: Path | None, header: str) -> None:
    if output is not None:
        dump_schema(schema, output, header=header)
        return
    # dump_schema writes files only; go through a temporary one for stdout.
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp) / "schema.yaml"
        dump_schema(schema, tmp_path, header=header)
        sys.stdout.write(tmp_path.read_text(encoding="utf-8"))
        sys.stdout.flush()


@quiet_broken_pipe
def main(argv: list[str] | None = None) -> int:
    """Entry point of ``parse_cat``; returns the exit code.

    Parameters
    ----------
    argv : `list` of `str`, optional
        Command-line arguments without the program name (default:
        ``sys.argv[1:]``).

    Returns
    -------
    code : `int`
        0 on success, 1 for an input or output error (one line on stderr),
        2 for a usage error.
    """
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        args = _parser().parse_args(argv)
    except SystemExit as exc:  # --help (0) or a usage error (2), already printed
        return int(exc.code or 0)
    try:
        path = packaged_apdb_path() if args.input == APDB_WORD else Path(args.input)
        schema = read_catalog(path, tables=args.tables)
        _write(schema, args.output, generated_header(schema, shlex.join(["parse_cat", *argv])))
    except ParseCatError as exc:
        print(f"parse_cat: error: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        where = exc.filename or args.output
        print(f"parse_cat: error: cannot write {where}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    for line in _summary(schema):
        print(line, file=sys.stderr)
    return 0


if __name__ == "__main__":  # python -m l1db.cli.parse_cat
    sys.exit(main())
