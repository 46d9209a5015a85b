"""``l1db_state``: save an L1 database at its current visit, and restore it into an empty database.

A saved state is a folder (`l1db.state`): what the engine's own tools made and
a manifest. ap_proto resumes after the saved last visit on the restored
database, and its next visit is, row for row and bit for bit, the one it
would have made on the original.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

from ..backends import backend_for
from ..config import ConfigError, L1dbConfig, default_config_path, load_config, safe_url
from ..errors import L1dbError, SchemaError, driver_error_reason
from ..factory import open_l1db
from ..state import Manifest, StateError, check_matching, new_state_dir, read_manifest, schema_digest, write_manifest
from . import quiet_broken_pipe, report_error

__all__ = ["main"]

_LOG = logging.getLogger(__name__)

PROG = "l1db_state"

EPILOG = """\
examples:
  l1db_state save -c cfg/l1db-pg.cfg states/pg-steady        # the database at its last visit
  l1db_state restore -c pg-variant.cfg states/pg-steady      # into the empty database of another config
  l1db_state show states/pg-steady                           # what a saved state holds

Tools: SQLite's backup API; pg_dump/pg_restore of the server's major version
(postgresql-client-MAJOR); mariadb-dump and mariadb (mariadb-client); for
Cassandra, nodetool snapshot/import on this toolkit's local nodes
(cassandra_nodes; --run-dir as for it). Do not run ap_proto on the database
while it is saved.

exit codes: 0 done, 1 error (one line on stderr), 2 usage error, 130 interrupted
"""


class _Parser(argparse.ArgumentParser):
    """An argument parser whose usage errors are one line on stderr."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see {PROG} --help)\n")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog=PROG, formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EPILOG,
        description="Save an L1 database (every L1 table, its metadata and visit bookkeeping) at its current "
        "visit into a folder with each engine's own tools, and restore it into an empty database, so that "
        "runs can start from the same state.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log what is done")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True, parser_class=_Parser)
    for name, text, folder in (
        ("save", "save the config's database into a new folder", "new folder for the saved state (must not exist)"),
        ("restore", "restore a saved state into the config's empty database", "folder of a saved state"),
    ):
        sub = commands.add_parser(name, help=text, description=text[0].upper() + text[1:] + ".")
        sub.add_argument("-c", "--config", default=None,
                         help="config file (default: the packaged SQLite config, l1db.sqlite3 in the working "
                         "directory)")
        sub.add_argument("--run-dir", default=None, metavar="DIR",
                         help="Cassandra only: run dir of the database's local nodes, as for cassandra_nodes "
                         "(default: $L1DB_CASSANDRA_RUN_DIR if set, else run/cassandra)")
        sub.add_argument("folder", metavar="DIR", help=folder)
    show = commands.add_parser("show", help="print the manifest of a saved state",
                               description="Print what a saved state holds.")
    show.add_argument("folder", metavar="DIR", help="folder of a saved state")
    return parser


def _backend_state(config: L1dbConfig, run_dir: str | None):
    """The save/restore implementation of the config's backend (`l1db.backends.Backend.state`)."""
    return backend_for(config.url).load("state")(config, run_dir)


def _visit(visit) -> dict | None:
    return None if visit is None else {"id": int(visit[0]), "mjd_tai": float(visit[1].tai.mjd)}


def _counts_line(counts: dict[str, int]) -> str:
    return ", ".join(f"{table} {rows:,}" for table, rows in counts.items())


def _save(config: L1dbConfig, args: argparse.Namespace) -> None:
    started = time.monotonic()
    state = _backend_state(config, args.run_dir)
    tools = state.tools()
    with open_l1db(config) as l1db:
        l1db.checkSchema()
        last, first = l1db.lastVisit(), l1db.firstVisit()
        counts = l1db.tableRowCount(exact=True)
        server = " ".join(l1db.serverVersion())
        digest = schema_digest(l1db.schema_def)
    with new_state_dir(args.folder) as folder:
        state.save(folder)
        manifest = Manifest(backend=state.backend, url=safe_url(config.url), config=config.as_dict(),
                            schema_options=state.schema_options(), schema_digest=digest,
                            first_visit=_visit(first), last_visit=_visit(last), row_counts=counts, tools=tools,
                            server_version=server)
        write_manifest(folder, manifest)
    size = sum(manifest.files.values()) / 2**20
    at = f"visit {last[0]}" if last else "no visit"
    print(f"saved {safe_url(config.url)} at {at} into {args.folder} ({size:.1f} MiB, "
          f"{time.monotonic() - started:.1f} s): {_counts_line(counts)}")


def _restore(config: L1dbConfig, args: argparse.Namespace) -> None:
    from ..tables import load_definitions  # SQLAlchemy's types: not for ``show``, ``--help`` or a usage error

    started = time.monotonic()
    folder = Path(args.folder)
    manifest = read_manifest(folder)
    state = _backend_state(config, args.run_dir)
    check_matching(manifest, state.backend, state.schema_options(), schema_digest(load_definitions(config)), folder)
    state.tools()
    state.check_empty()
    target = safe_url(config.url)
    try:
        state.restore(folder)
        counts, last = _restored(config, manifest, folder)
    except BaseException as exc:
        state.clear()
        if not isinstance(exc, Exception):
            raise
        reason = str(exc) if isinstance(exc, (L1dbError, ConfigError)) else driver_error_reason(exc)
        if reason is None:
            raise
        raise StateError(f"restore of {folder} into {target} failed, the target is left empty: {reason}") from None
    at = f"visit {last['id']}" if last else "no visit"
    print(f"restored {folder} ({manifest.backend}, saved {manifest.created} from {manifest.url}) into {target} "
          f"at {at} ({time.monotonic() - started:.1f} s): {_counts_line(counts)}")


def _restored(config: L1dbConfig, manifest: Manifest, folder: Path) -> tuple[dict[str, int], dict | None]:
    """Row counts and last visit of the restored database.

    Raises
    ------
    StateError
        If they are not the saved ones, or the restored schema is not the saved one (damaged saved files).
    """
    with open_l1db(config) as l1db:
        try:
            l1db.checkSchema()
        except SchemaError as exc:
            # The target was empty and the load went through: what is wrong came from the saved files,
            # and the schema error's advice (run create_l1_schema) is not for a restore.
            raise StateError(f"the restored database is not the saved L1 schema ({exc.problem}): {folder}'s "
                             "saved files are damaged or were changed after the save") from None
        counts = l1db.tableRowCount(exact=True)
        last = _visit(l1db.lastVisit())
    wrong = [f"{t} has {counts.get(t)} rows, saved {n}" for t, n in manifest.row_counts.items() if counts.get(t) != n]
    saved_id = manifest.last_visit["id"] if manifest.last_visit else None
    if (last["id"] if last else None) != saved_id:
        wrong.append(f"last visit {last['id'] if last else None}, saved {saved_id}")
    if wrong:
        raise StateError("; ".join(wrong))
    return counts, last


def _show(args: argparse.Namespace) -> None:
    manifest = read_manifest(args.folder)
    at = f"visit {manifest.last_visit['id']}" if manifest.last_visit else "no visit"
    print(f"{args.folder}: {manifest.backend} database {manifest.url} at {at}, saved {manifest.created} "
          f"({sum(manifest.files.values()) / 2**20:.1f} MiB in {len(manifest.files)} files)")
    print(f"  schema: {', '.join(f'{k}={v}' for k, v in manifest.schema_options.items())}")
    print(f"  rows: {_counts_line(manifest.row_counts)}")
    print(f"  server: {manifest.server_version}; tools: {'; '.join(manifest.tools.values())}")


@quiet_broken_pipe
def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit code (0 done, 1 error, 2 usage, 130 interrupted)."""
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        if args.command == "show":
            _show(args)
            return 0
        config = load_config(args.config or default_config_path())
        (_save if args.command == "save" else _restore)(config, args)
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted; nothing was kept (no saved folder, an empty target)", file=sys.stderr)
        return 130
    except Exception as exc:
        return report_error(PROG, exc, (ConfigError, L1dbError))
    return 0


if __name__ == "__main__":  # python -m l1db.cli.l1db_state
    sys.exit(main())
