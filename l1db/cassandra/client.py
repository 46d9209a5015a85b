"""What every piece of the Cassandra client relies on: the sessions, the options and the statement helpers.

`l1db.cassandra.reads.CassandraReads`, `l1db.cassandra.writes.CassandraWrites`
and `l1db.cassandra.visits.CassandraVisits` derive from `CassandraClient`;
`l1db.cassandra.l1db_cassandra.L1dbCassandra` puts them together. Declaring
the shared state here lets each piece be type-checked alone.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa
from cassandra.query import PreparedStatement, SimpleStatement

from ..api import L1db
from ..config import L1dbConfig, parse_cassandra_url
from ..frames import column_kind
from ..replica import SUB_CHUNK_COLUMN
from ..tables import last_object_definition
from ..timer import TimingSink
from .partitions import PART_COLUMN, Partitioning
from .schema import quote
from .session import InFlight, connect, consistency, execute_concurrently, retry_refused

__all__ = ["CassandraClient", "PART_SA_COLUMN"]

#: The spatial partition column, typed for `l1db.cassandra.session.typed_frame`.
PART_SA_COLUMN = sa.Column(PART_COLUMN, sa.BigInteger, nullable=False)


class CassandraClient(L1db):
    """Sessions, options and statement helpers shared by the reads, the writes and the visit bookkeeping."""

    def __init__(self, config: str | Path | L1dbConfig, monitor: TimingSink | None = None) -> None:
        super().__init__(config, monitor)
        self.url = parse_cassandra_url(self.config.url)
        self.keyspace = self.url.keyspace
        self.options = dict(self.config.cassandra)
        self.partitioning = Partitioning(self.options)
        self._cluster, self._session, self._plain = connect(self.url, self.options, self.back_pressure)
        self._read_cl = consistency(self.options["read_consistency"])
        self._write_cl = consistency(self.options["write_consistency"])
        self._prepared: dict[str, PreparedStatement] = {}
        # Kind of every column a store writes (the partition columns are bigint).
        self._column_kinds = {c.name: column_kind(c) for t in self.tables.values() for c in t.columns}
        self._column_kinds[SUB_CHUNK_COLUMN] = "int32"  # the replica's sub-chunk is an int, as dax_apdb's
        #: DiaObjectLast's published definition: the columns of the latest versions it holds.
        self.last_object = last_object_definition(self.config, self.schema_def)
        self._schema_checked = False
        self._needs_recovery = True
        #: Whether DiaObject, DiaSource and DiaForcedSource are one table per time partition
        #: (``time_partition_tables``: `l1db.cassandra.periods`).
        self.period_tables = bool(self.options["time_partition_tables"])
        # The per-period tables known to exist, by table; None until looked up (`l1db.cassandra.periods`).
        self._periods_known: dict[str, set[int]] | None = None

    # -- small helpers ---------------------------------------------------------------

    def _name(self, table: str) -> str:
        return f"{quote(self.keyspace)}.{quote(table)}"

    def _statement(self, key: str, cql: str, write: bool) -> PreparedStatement:
        """The prepared statement of ``cql``, prepared on the server once per client and kept under ``key``."""
        statement = self._prepared.get(key)
        if statement is None:
            statement = retry_refused(lambda: self._session.prepare(cql), self._limits(write=False),
                                      self.back_pressure)
            statement.consistency_level = self._write_cl if write else self._read_cl
            self._prepared[key] = statement
        return statement

    def _run(self, statements: Sequence[tuple[Any, ...]] | Iterator[tuple[Any, ...]], write: bool,
             plain: bool = False) -> list[Any]:
        """Run ``(statement, parameters[, bytes])`` requests concurrently within the ``[cassandra]`` limits.

        On the numpy session, or with ``plain`` on the plain one (results as
        tuples: aggregates, which the numpy parser does not decode). The waits
        on the node's back-pressure go to `l1db.api.L1db.back_pressure`.
        """
        timeout = self.options["write_timeout"] if write else self.options["read_timeout"]
        return execute_concurrently(self._plain if plain else self._session, statements, self._limits(write),
                                    timeout, self.back_pressure)

    def _limits(self, write: bool) -> InFlight:
        """The ``[cassandra]`` bounds on requests in flight and on tries of the refused ones."""
        options = self.options
        return InFlight(
            requests=options["write_concurrency"] if write else options["read_concurrency"],
            bytes=options["write_inflight_kib"] * 1024 if write else None,
            tries=options["backpressure_tries"], pause=options["backpressure_pause"], reads=not write)

    def _simple(self, cql: str, parameters: Any = None, write: bool = False, timeout: float | None = None) -> Any:
        """Run one small statement (schema, visits, counts) on the plain session.

        Sent again while the node refuses it (``Overloaded``, a busy
        connection); a read it drops is not (a count's full scan may take
        minutes each try).
        """
        statement = SimpleStatement(cql, consistency_level=self._write_cl if write else self._read_cl)
        default = self.options["write_timeout"] if write else self.options["read_timeout"]
        limits = dataclasses.replace(self._limits(write), reads=False)
        return retry_refused(lambda: self._plain.execute(statement, parameters, timeout=timeout or default),
                             limits, self.back_pressure)

    def _keyspace_tables(self) -> list[str] | None:
        """Tables of the keyspace, or `None` if it does not exist."""
        rows = self._plain_columns(self._simple(
            "SELECT keyspace_name FROM system_schema.keyspaces WHERE keyspace_name = %s", [self.keyspace]))
        if not len(rows.get("keyspace_name", [])):
            return None
        rows = self._plain_columns(self._simple(
            "SELECT table_name FROM system_schema.tables WHERE keyspace_name = %s", [self.keyspace]))
        return sorted(str(n) for n in rows.get("table_name", []))

    @staticmethod
    def _plain_columns(result: Any) -> dict[str, list[Any]]:
        """The columns of a small result of the plain session (schema, visits), by name, as Python values.

        The results of the numpy session are unpacked by
        `l1db.cassandra.session.typed_frame` instead.
        """
        rows = list(result)
        names = result.column_names or []
        return {name: [row[i] for row in rows] for i, name in enumerate(names)}

    # -- provided by the pieces, used across them ------------------------------------------

    def _insert(self, table: str, columns: Sequence[str], timestamped: bool = False) -> PreparedStatement:
        """A prepared INSERT (`l1db.cassandra.writes.CassandraWrites`)."""
        raise NotImplementedError

    def _read_partitions(self, table: str, columns: Sequence[sa.Column], pixels: np.ndarray,
                         time_parts: list[int] | None, explain: bool = False) -> pd.DataFrame:
        """Rows of the given partitions (`l1db.cassandra.reads.CassandraReads`)."""
        raise NotImplementedError

    def _record_visit(self, visit_id: int, visit_mjd: float, tile: int, n_tiles: int, parts: set[int],
                      applied: bool) -> None:
        """Record a stored tile in L1dbVisit (`l1db.cassandra.visits.CassandraVisits`)."""
        raise NotImplementedError

    def _mark_applied(self, visit_id: int, tile: int) -> None:
        """Mark a tile's DiaObjectLast writes done (`l1db.cassandra.visits.CassandraVisits`)."""
        raise NotImplementedError
