"""``create_l1_schema``: create (or re-create) the L1 schema in a database."""

from __future__ import annotations

import argparse
import logging
import sys

import sqlalchemy as sa

from ..config import ConfigError, default_config_path, safe_url
from ..database import DatabaseUnreachable, error_reason
from ..l1db import L1db
from ..schema import SchemaError
from . import quiet_broken_pipe

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
    parser.add_argument("-v", "--verbose", action="store_true", help="log what is done")
    return parser


@quiet_broken_pipe
def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit code (0 done, 1 error, 2 usage)."""
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    config_path = args.config or default_config_path()
    try:
        l1db = L1db(config_path)
        with l1db:
            names = l1db.makeSchema(drop=args.drop)
            inspector = sa.inspect(l1db.engine)
            print(f"created L1 schema in {safe_url(l1db.engine.url)} "
                  f"(dia_object_index={l1db.config.dia_object_index}, "
                  f"pixelization={l1db.config.pixelization} level {l1db.config.effective_pixel_level})")
            for name in names:
                columns = inspector.get_columns(name)
                key = inspector.get_pk_constraint(name).get("constrained_columns") or []
                indexes = [ix["name"] for ix in inspector.get_indexes(name)]
                print(f"  {name}: {len(columns)} columns, key ({', '.join(key)})"
                      + (f", indexes {', '.join(indexes)}" if indexes else ""))
    except (ConfigError, DatabaseUnreachable, SchemaError) as exc:
        print(f"create_l1_schema: error: {exc}", file=sys.stderr)
        return 1
    except sa.exc.SQLAlchemyError as exc:
        print(f"create_l1_schema: database error: {error_reason(exc)}", file=sys.stderr)
        return 1
    return 0
