"""The Apache Cassandra implementation of the L1 API.

The layout is production's (`l1db.cassandra.schema`): latest DiaObject
versions partitioned by sky pixel, the history tables by (sky pixel, time
partition), or with ``time_partition_tables`` one history table per time
partition, by sky pixel (`l1db.cassandra.periods`). A read queries every
partition its region (and window) touches, concurrently, and trims the rows
to the exact region, object IDs and window.

Stores: Cassandra has no multi-partition transactions, so a visit is stored
idempotently instead of atomically (`l1db.cassandra.writes` says how).

The class is put together from one piece per job: `l1db.cassandra.reads`,
`l1db.cassandra.writes` and `l1db.cassandra.visits`, over the sessions and
statement helpers of `l1db.cassandra.client` and the per-period tables of
`l1db.cassandra.periods`, and the row counts of `l1db.cassandra.counts`;
this module adds the life cycle and the schema administration.
"""

from __future__ import annotations

import logging

import numpy as np
from cassandra import InvalidRequest

from ..errors import SchemaError
from ..tables import period_of
from . import server, wire
from .counts import CassandraCounts
from .reads import CassandraReads
from .schema import (
    DDL_TIMEOUT,
    PERIOD_TABLES,
    keyspace_schema_tables,
    published_columns,
    quote,
    schema_ddl,
    schema_options,
    schema_tables,
    unrecorded_option,
)
from .start_times import last_start_seconds
from .visits import CassandraVisits
from .writes import CassandraWrites

__all__ = ["L1dbCassandra"]

_LOG = logging.getLogger(__name__)

class L1dbCassandra(CassandraReads, CassandraWrites, CassandraVisits, CassandraCounts):
    """Client of one L1 database on Apache Cassandra (parameters as for `L1db`).

    The URL is ``cassandra://HOST[:PORT][,HOST...]/KEYSPACE``; the
    ``[cassandra]`` section sets replication, consistency, partitioning,
    concurrency, batch size and timeouts.
    """

    # -- life cycle ---------------------------------------------------------------------

    def close(self) -> None:
        self._cluster.shutdown()

    def restart_seconds(self) -> float | None:
        """The last start of the default run dir's nodes (`l1db.cassandra.start_times`), if they are the URL's."""
        try:
            info = server.cluster_info()
            if info is None or not set(self.url.hosts) & set(info.addresses):
                return None
            return last_start_seconds()
        except (server.CassandraError, OSError):
            return None  # a damaged run dir: nothing known

    def warm_up(self) -> None:
        # The backend's numba code: the partitions' pixelization and the batch encoder.
        self.partitioning.pixelization.warm_up()
        wire.warm_up()

    def serverVersion(self) -> tuple[str, str]:
        rows = self._plain_columns(self._plain.execute("SELECT release_version FROM system.local"))
        return "cassandra", str(rows["release_version"][0])

    # -- schema --------------------------------------------------------------------------

    def makeSchema(self, drop: bool = False, first_visit_mjd: float | None = None) -> list[str]:
        """As `L1db.makeSchema`.

        Cassandra's time partitions are part of the keys, nothing is made
        ahead; but with ``time_partition_tables`` and ``first_visit_mjd``,
        the per-period tables of that time and of the next period
        (`l1db.cassandra.periods`; without it, the first store makes them).
        """
        self._check_replication()
        existing = self._keyspace_tables()
        if existing and not drop:
            present = [t for t in schema_tables(self.config) if t in existing] or existing
            raise SchemaError(f"tables already exist in keyspace {self.keyspace}: {', '.join(present)}; "
                              "use --drop to re-create them")
        ddl_timeout = DDL_TIMEOUT
        if existing is not None and drop:
            self._simple(f"DROP KEYSPACE {quote(self.keyspace)}", write=True, timeout=ddl_timeout)
            _LOG.info("dropped keyspace %s", self.keyspace)
            existing = None
        if existing is None:
            self._simple(
                f"CREATE KEYSPACE {quote(self.keyspace)} WITH replication = "
                f"{{'class': 'SimpleStrategy', 'replication_factor': {int(self.options['replication_factor'])}}}",
                write=True, timeout=ddl_timeout)
        for ddl in schema_ddl(self.keyspace, self.schema_def, self.last_object, bool(self.config.enable_replica),
                              self.period_tables):
            self._simple(ddl, write=True, timeout=ddl_timeout)
        for name, value in self._schema_options().items():
            self._simple(f"INSERT INTO {self._name('L1dbMetadata')} (name, value) VALUES (%s, %s)", (name, value),
                         write=True)
        self._prepared.clear()
        self._periods_known = None
        made = []
        if self.period_tables and first_visit_mjd is not None:
            first = int(self.partitioning.time_partitions(np.array([first_visit_mjd]))[0])
            made = self.make_periods({table: [first, first + 1] for table in PERIOD_TABLES})
        self._schema_checked = True
        self._needs_recovery = False
        return [*schema_tables(self.config), *made]

    def _check_replication(self) -> None:
        """Refuse, before anything is made or dropped, a replication factor above the cluster's live nodes.

        Such a keyspace can be created, but no write at QUORUM (or ALL) can
        succeed in it: the tables would be made and their metadata not.
        """
        factor = int(self.options["replication_factor"])
        up = sorted(str(host.endpoint.address) for host in self._cluster.metadata.all_hosts() if host.is_up)
        if factor > len(up):
            raise SchemaError(f"replication_factor {factor} is above the {len(up)} live node(s) of the cluster "
                              f"({', '.join(up) or 'none'}): nothing created; set replication_factor to at most "
                              f"{len(up)}, or start more nodes")

    def describeSchema(self) -> list[str]:
        lines = []
        for table in keyspace_schema_tables(self.config, self._keyspace_tables() or []):
            rows = self._plain_columns(self._simple(
                "SELECT column_name, kind, position FROM system_schema.columns "
                "WHERE keyspace_name = %s AND table_name = %s", [self.keyspace, table]))
            names = [str(n) for n in rows["column_name"]]
            kinds = [str(k) for k in rows["kind"]]
            positions = np.asarray(rows["position"], dtype=np.int64)

            def key(kind: str) -> list[str]:
                picked = [(p, n) for n, k, p in zip(names, kinds, positions) if k == kind]
                return [n for _, n in sorted(picked)]

            clustering = key("clustering")
            lines.append(f"{table}: {len(names)} columns, partition key ({', '.join(key('partition_key'))})"
                         + (f", clustering ({', '.join(clustering)})" if clustering else ""))
        return lines

    def _schema_options(self) -> dict[str, str]:
        return schema_options(self.config)

    def checkSchema(self) -> None:
        if not self._schema_checked:
            try:
                rows = self._plain_columns(self._simple(f"SELECT name, value FROM {self._name('L1dbMetadata')}"))
            except InvalidRequest:
                raise SchemaError(f"the L1 schema does not exist in keyspace {self.keyspace}",
                                  "run create_l1_schema first") from None
            recorded = {str(n): str(v) for n, v in zip(rows.get("name", []), rows.get("value", []))}
            stored = {k: recorded.get(k, unrecorded_option(k)) for k in self._schema_options()}
            diffs = [f"{k}: database {stored[k]!r}, config {v!r}"
                     for k, v in self._schema_options().items() if stored[k] != v]
            if diffs:
                raise SchemaError("the schema was created with other options (" + "; ".join(diffs) + ")",
                                  "re-create it with create_l1_schema --drop or fix the config")
            existing = self._keyspace_tables() or []
            missing = [t for t in schema_tables(self.config) if t not in existing]
            if missing:
                raise SchemaError(f"the L1 schema is incomplete (missing tables: {', '.join(missing)})",
                                  "re-create it with create_l1_schema --drop")
            wanted = published_columns(self.schema_def, self.last_object, bool(self.config.enable_replica),
                                       self.period_tables)
            found = self._plain_columns(self._simple(
                "SELECT table_name, column_name FROM system_schema.columns WHERE keyspace_name = %s",
                [self.keyspace]))
            columns: dict[str, set[str]] = {}
            for table, column in zip(found.get("table_name", []), found.get("column_name", [])):
                columns.setdefault(str(table), set()).add(str(column))
            for table in keyspace_schema_tables(self.config, existing):
                period = period_of(table) if self.period_tables else None
                names, want = columns.get(table, set()), wanted.get(table if period is None else period[0])
                # E.g. a DiaObjectLast of full rows, made before it took its published columns.
                if want is not None and names != want:
                    raise SchemaError(f"table {table} has {len(names)} columns, the table definitions give it "
                                      f"{len(want)}", "re-create the schema with create_l1_schema --drop")
            self._schema_checked = True
        if self._needs_recovery:
            self._apply_unapplied_visits()
            self._needs_recovery = False


    # -- maintenance ------------------------------------------------------------------------------

    def dailyJob(self) -> int:
        """Nothing to do on Cassandra (no nightly table); returns 0."""
        return 0
