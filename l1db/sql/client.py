"""What every piece of the SQL client relies on: its state and the statement helpers.

`l1db.sql.reads.SqlReads`, `l1db.sql.writes.SqlWrites` and
`l1db.sql.visits.SqlVisits` derive from `SqlClient`; `l1db.sql.l1db_sql.L1dbSql`
puts them together and sets the state (``engine``, ``schema``,
``pixelization``). Declaring it here lets each piece be type-checked alone.
"""

from __future__ import annotations

import logging

import pandas as pd
import sqlalchemy as sa

from ..api import L1db
from ..pixelization import Pixelization
from .bulk_read import read_frame
from .schema import L1Schema

__all__ = ["SqlClient"]

_LOG = logging.getLogger(__name__)


class SqlClient(L1db):
    """State and helpers shared by the reads, the writes and the visit bookkeeping."""

    engine: sa.Engine
    schema: L1Schema
    pixelization: Pixelization

    def _table(self, name: str) -> sa.Table:
        return self.schema.tables[name]

    def _explain(self, conn: sa.Connection, stmt: sa.ClauseElement) -> None:
        sql = str(stmt.compile(conn, compile_kwargs={"literal_binds": True}))
        prefix = "EXPLAIN QUERY PLAN " if conn.dialect.name == "sqlite" else "EXPLAIN "
        rows = conn.exec_driver_sql(prefix + sql).all()
        plan = "\n".join("  " + " | ".join(str(v) for v in row) for row in rows)
        _LOG.info("query plan for %s...:\n%s", sql[:200].replace("\n", " "), plan)

    def _read(self, conn: sa.Connection, stmt: sa.Select, explain: bool) -> pd.DataFrame:
        """Run a select and return a frame typed like the schema's columns."""
        if explain:
            self._explain(conn, stmt)
        return read_frame(conn, stmt)

    def _insert_visit(self, conn: sa.Connection, visit_id: int, visit_mjd: float, tile: int, n_tiles: int) -> None:
        """Record a stored tile in L1dbVisit, in the store's transaction (`l1db.sql.visits.SqlVisits`)."""
        raise NotImplementedError
