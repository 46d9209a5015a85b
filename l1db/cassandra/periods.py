"""Per-period tables of the Cassandra backend (``time_partition_tables``): which exist, and making them.

A mixin of `l1db.cassandra.l1db_cassandra.L1dbCassandra`. With
``[cassandra] time_partition_tables = 1`` DiaObject, DiaSource and
DiaForcedSource are one table per time partition (`l1db.cassandra.schema`:
``DiaSource_2000``), as dax_apdb's ``time_partition_tables`` keeps them.

**When they are made.** dax_apdb makes every per-period table of a
configured range of dates when the schema is made (and refuses a store
outside it), and an administrator extends the range. This toolkit's runs
start at any time (ap_proto's ``--start-time``) and resume, so the schema
cannot know their periods: instead each store makes, before its first write, the tables of its rows'
periods and of the period after its visit's (`make_periods`), as the SQL
backends make their time partitions ahead of need. So the table a visit
writes to was, but for the run's first visit, made one period earlier by an
earlier store: the clients that reach a new period (the tiles of a visit,
at once) find it made. ``create_l1_schema --start-time`` makes the first
visit's (and the next) before any client starts. Each is made with
``CREATE TABLE IF NOT EXISTS``: two clients that make the same table at once
both succeed, and it is made once. (On a cluster of several nodes before
Cassandra 5.1's transactional metadata, two coordinators that create the same
table at the same instant may each give it an id of their own: making the
tables ahead keeps that from happening in a run.)

**What a read touches.** A read queries the tables of its window's periods
that exist, no other. A period of the window that this client does not know
a table of is looked up again (one query of ``system_schema.tables``, the
node's local schema), since another client may have made it since; a period
with no table holds no row, and is not an error.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping

from ..tables import period_of, period_table
from .client import CassandraClient
from .schema import DDL_TIMEOUT, PERIOD_TABLES, period_ddl

__all__ = ["CassandraPeriods"]

_LOG = logging.getLogger(__name__)


class CassandraPeriods(CassandraClient):
    """The per-period tables that exist, and their making (the module's docstring)."""

    def _looked_up_periods(self) -> dict[str, set[int]]:
        """The per-period tables in the keyspace now, by table (one query); remembered."""
        found: dict[str, set[int]] = {table: set() for table in PERIOD_TABLES}
        rows = self._plain_columns(self._simple(
            "SELECT table_name FROM system_schema.tables WHERE keyspace_name = %s", [self.keyspace]))
        for name in rows.get("table_name", []):
            parsed = period_of(str(name))
            if parsed is not None:
                found[parsed[0]].add(parsed[1])
        self._periods_known = found
        return found

    def existing_periods(self, table: str, periods: Iterable[int]) -> list[int]:
        """Those of ``periods`` (time partitions) that ``table`` has a table of, in order.

        Without a query when each is known to have one; else the keyspace's
        tables are looked up (another client may have made them).
        """
        wanted = [int(p) for p in periods]
        known = self._periods_known
        if known is None or not set(wanted) <= known[table]:
            known = self._looked_up_periods()
        return [p for p in wanted if p in known[table]]

    def make_periods(self, wanted: Mapping[str, Iterable[int]]) -> list[str]:
        """Make the tables of ``wanted`` (time partitions by table) not known to exist; return those made.

        No statement when each is known to exist (after the first call of a
        client, which looks the keyspace's tables up once).
        """
        known = self._periods_known if self._periods_known is not None else self._looked_up_periods()
        made = []
        for table, periods in wanted.items():
            for period in sorted({int(p) for p in periods} - known[table]):
                self._simple(period_ddl(self.keyspace, self.schema_def, table, period), write=True,
                             timeout=DDL_TIMEOUT)
                known[table].add(period)
                made.append(period_table(table, period))
        if made:
            _LOG.info("made the per-period tables %s", ", ".join(made))
        return made
