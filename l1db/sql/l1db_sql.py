"""The SQL implementation of the L1 API: SQLite, PostgreSQL, MariaDB/MySQL.

`L1dbSql` hides every schema and indexing choice behind the `l1db.api.L1db`
methods. The indexing options act in `l1db.sql.schema` (which tables, keys and
indexes exist), `l1db.sql.reads` and `l1db.sql.writes` (how they are used).

A visit's store is one transaction: after a failure, a crash or Ctrl-C it is
either fully stored or not at all.

The class is put together from one piece per job: `l1db.sql.reads`,
`l1db.sql.writes` (a write path per strategy) and `l1db.sql.visits`; this
module adds the connection, the schema administration and the row counts.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import sqlalchemy as sa

from ..config import L1dbConfig
from ..errors import SchemaError
from ..frames import column_kind, new_frame
from ..pixelization import Pixelization
from ..replica import CHUNKS_TABLE
from ..timer import TimingSink
from . import bulk_insert, bulk_read
from .database import check_connection, make_engine, server_version
from .reads import SqlReads
from .schema import L1Schema
from .visits import SqlVisits
from .writes import SqlWrites

__all__ = ["L1dbSql"]

_LOG = logging.getLogger(__name__)

class L1dbSql(SqlReads, SqlWrites, SqlVisits):
    """Client of one L1 database on an SQL backend (parameters as for `L1db`)."""

    def __init__(self, config: str | Path | L1dbConfig, monitor: TimingSink | None = None) -> None:
        super().__init__(config, monitor)
        config = self.config
        self.schema = L1Schema(config, self.schema_def)
        self.partitions = self.schema.partitions
        self.pixelization = Pixelization(config.pixelization, config.effective_pixel_level, config.pixel_max_ranges)
        self.engine = make_engine(config.url)
        self._schema_checked = False

    # -- connection and schema administration ------------------------------------

    def makeSchema(self, drop: bool = False, first_visit_mjd: float | None = None) -> list[str]:
        check_connection(self.engine)
        names = self.schema.create(self.engine, drop=drop, first_visit_mjd=first_visit_mjd)
        self._schema_checked = True
        return names

    def checkSchema(self) -> None:
        if not self._schema_checked:
            database = self.engine.url.database
            if self.engine.dialect.name == "sqlite" and database and database != ":memory:" \
                    and not database.startswith("file:") and not Path(database).is_file():
                # Connecting would create an empty file: say so without leaving one.
                raise SchemaError(f"{database}: no such SQLite database file; run create_l1_schema first")
            check_connection(self.engine)
            with self.engine.connect() as conn:
                self.schema.check(conn)
            self._schema_checked = True

    def warm_up(self) -> None:
        self.pixelization.warm_up()
        dialect = self.engine.dialect
        for table in self.schema.tables.values():
            if table.name == CHUNKS_TABLE:
                continue  # the replica's one row per store is an upsert statement, not the bulk paths'
            # Two rows of every column of the table as created (pixelId included).
            keys = {c.name: np.zeros(2, dtype=column_kind(c)) for c in table.primary_key.columns}
            position = {"ra": [10.0, 10.1], "dec": [-20.0, -20.1]} if "ra" in table.columns else {}
            frame = new_frame(table, **{**keys, **position})
            bulk_insert.warm_up(dialect, table, frame)
            bulk_read.warm_up(dialect, table, frame)

    def describeSchema(self) -> list[str]:
        inspector = sa.inspect(self.engine)
        lines = []
        for name in self.schema.tables:
            columns = inspector.get_columns(name)
            key = inspector.get_pk_constraint(name).get("constrained_columns") or []
            indexes = [str(ix["name"]) for ix in inspector.get_indexes(name)]
            lines.append(f"{name}: {len(columns)} columns, key ({', '.join(key)})"
                         + (f", indexes {', '.join(indexes)}" if indexes else ""))
        if self.partitions is not None:
            with self.engine.connect() as conn:
                lines += self.partitions.describe(conn)
        return lines

    def close(self) -> None:
        self.engine.dispose()

    def serverVersion(self) -> tuple[str, str]:
        with self.engine.connect() as conn:
            backend, _, version = server_version(conn).partition(" ")
        return backend, version

    def tableRowCount(self) -> dict[str, int]:
        self.checkSchema()
        counts = {}
        with self.engine.connect() as conn:
            for name, table in self.schema.tables.items():
                counts[name] = int(conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one())
        return counts
