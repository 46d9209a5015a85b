"""``create_l1_schema``: create (or re-create) the L1 schema in a database."""

from __future__ import annotations

import argparse
import logging
import sys

from ..backends import CASSANDRA
from ..config import ConfigError, default_config_path, safe_url
from ..constants import parse_time, to_mjd_tai
from ..errors import L1dbError
from ..factory import open_l1db
from . import quiet_broken_pipe, report_error

__all__ = ["main"]

_LOG = logging.getLogger(__name__)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="create_l1_schema",
        description="Create the L1 database schema (DiaObject, DiaSource, DiaForcedSource and the "
        "toolkit's tables) for the indexing options of a config file.",
    )
    parser.add_argument(
        "-c", "--config", default=None,
        help="config file (default: the packaged SQLite config, l1db.sqlite3 in the working directory)",
    )
    parser.add_argument(
        "--drop", action="store_true",
        help="drop every existing L1 table first (without it, existing tables are left alone and it is an error)",
    )
    parser.add_argument(
        "--start-time", type=_start_time, default=None, metavar="ISO_TAI",
        help="time of the first visit (as ap_proto's --start-time): with history_partition_days (or Cassandra's "
        "time_partition_tables), also make the time partitions (per-period tables) of that time and of the "
        "partition length after it (default: none made here; every store makes the partitions it needs)",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log what is done")
    return parser


def _start_time(text: str) -> float:
    """MJD (TAI) of ``--start-time`` (argparse's ``type``: a bad time is a usage error, exit 2)."""
    try:
        return to_mjd_tai(parse_time(text))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


@quiet_broken_pipe
def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit code (0 done, 1 error, 2 usage)."""
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    config_path = args.config or default_config_path()
    try:
        l1db = open_l1db(config_path)
        with l1db:
            l1db.makeSchema(drop=args.drop, first_visit_mjd=args.start_time)
            config = l1db.config
            if config.backend == CASSANDRA:
                cass = config.cassandra
                how = (f"replication_factor={cass['replication_factor']}, partitions "
                       f"{cass['part_pixelization']} level {cass['part_pixel_level']} x "
                       f"{cass['time_partition_days']} days"
                       + (", one table per time partition" if cass["time_partition_tables"] else ""))
            else:
                how = (f"dia_object_index={config.dia_object_index}, "
                       f"pixelization={config.pixelization} level {config.effective_pixel_level}")
                if config.history_partition_days:
                    how += f", time partitions of {config.history_partition_days} days"
                if config.retention_days:
                    how += f", retention {config.retention_days} days"
            print(f"created L1 schema in {safe_url(config.url)} ({how})")
            for line in l1db.describeSchema():
                print(f"  {line}")
    except Exception as exc:
        return report_error("create_l1_schema", exc, (ConfigError, L1dbError))
    return 0


if __name__ == "__main__":  # python -m l1db.cli.create_l1_schema
    sys.exit(main())
