"""Row counts of the Cassandra backend: exact (full scans) or estimated (no full scan).

A mixin of `l1db.cassandra.l1db_cassandra.L1dbCassandra`.

Exact counts (``tableRowCount(exact=True)``, what ``l1db_state`` needs) are
one ``SELECT COUNT(*)`` per table: a scan of every partition of the table,
slow on a large database.

Estimates (``exact=False``, what ``ap_proto``'s ``row_count_every`` uses)
read no table whole. For each table:

1. a sample of its partitions, with their tokens: ``SELECT DISTINCT <partition
   key>, token(<partition key>) ... LIMIT ESTIMATE_PARTITIONS``. Partitions
   come in token order, the order of their keys' Murmur3 hashes, so the first
   *S* are a fair sample of all of them;
2. the rows of each sampled partition, counted exactly (``COUNT(*)`` restricted
   to that one partition);
3. if the sample holds every partition of the table (fewer came back than
   asked for), the count is their sum: exact (L1dbVisit, L1dbMetadata, any
   small table). Otherwise the table's partitions are estimated from the
   share of the token ring the sample spans: tokens are uniform over the ring,
   so *S* partitions spanning a share *f* of it stand for about
   ``(S - 1) / f`` partitions (the unbiased estimate from the *S*-th smallest
   of uniform values, relative standard error about ``1 / sqrt(S)``), and the
   rows are that times the sampled partitions' mean rows.

This reads what the nodes hold now, memtables included, through any node: no
flush, no ``nodetool``, no per-node system table (``system.size_estimates``
would miss the memtables and lag up to 5 minutes). The cost is *S* partition
keys and *S* single-partition counts per table, whatever the table's size;
the partition keys' names come from the driver's schema metadata, and each
step's requests, of every table, are sent concurrently.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..tables import period_of
from .client import CassandraClient
from .schema import keyspace_schema_tables, logical_tables, quote

__all__ = ["CassandraCounts", "ESTIMATE_PARTITIONS"]

_LOG = logging.getLogger(__name__)

#: Partitions of each table whose rows an estimate counts (step 1 of the module's docstring).
ESTIMATE_PARTITIONS = 64

# The Murmur3 token ring: [-2**63, 2**63 - 1].
_MIN_TOKEN = -float(2**63)
_RING = float(2**64)


class CassandraCounts(CassandraClient):
    """``tableRowCount``: exact or estimated row counts of every table."""

    def tableRowCount(self, exact: bool = True) -> dict[str, int]:
        """Rows of each table: full scans if ``exact``, else estimates without one (the module's docstring).

        With ``time_partition_tables``, DiaObject, DiaSource and
        DiaForcedSource count the rows of all their per-period tables.
        """
        self.checkSchema()
        # The keyspace's tables are looked up only for its per-period tables.
        tables = keyspace_schema_tables(self.config, (self._keyspace_tables() or []) if self.period_tables else [])
        counts = {table: self._full_count(table) for table in tables} if exact else self._estimated_counts(tables)
        by_table = dict.fromkeys(logical_tables(self.config), 0)
        for table, rows in counts.items():
            period = period_of(table)
            by_table[table if period is None else period[0]] += rows
        return by_table

    def _full_count(self, table: str) -> int:
        result = self._simple(f"SELECT COUNT(*) FROM {self._name(table)}",
                              timeout=max(600.0, self.options["read_timeout"]))
        return int(result.one()[0])

    def _partition_key(self, table: str) -> list[str]:
        """The partition key columns of ``table``, from the driver's schema metadata (no query)."""
        keyspace = self._cluster.metadata.keyspaces.get(self.keyspace)
        found = keyspace.tables.get(table) if keyspace is not None else None
        if found is None:
            # Made by another client since this one's metadata was read: read it now, once.
            self._cluster.refresh_table_metadata(self.keyspace, table)
            found = self._cluster.metadata.keyspaces[self.keyspace].tables[table]
        return [column.name for column in found.partition_key]

    def _estimated_counts(self, tables: Sequence[str]) -> dict[str, int]:
        """Estimated rows of each of ``tables``: steps 1-3 of the module's docstring.

        Each step's requests, every table's at once, go through
        `l1db.cassandra.client.CassandraClient._run` on the plain session (the
        numpy one does not decode aggregates): concurrently, within
        ``read_concurrency``, waiting on back-pressure as every read does.
        """
        keys = {table: self._partition_key(table) for table in tables}
        names = {table: ", ".join(quote(k) for k in key) for table, key in keys.items()}
        sampled = self._run([(self._statement(
            f"sample:{table}", f"SELECT DISTINCT {names[table]}, token({names[table]}) FROM {self._name(table)} "
            f"LIMIT {ESTIMATE_PARTITIONS}", write=False), ()) for table in tables], write=False, plain=True)
        samples = {table: [tuple(row) for row in result] for table, result in zip(tables, sampled)}
        counts = [(self._statement(f"partition_count:{table}", f"SELECT COUNT(*) FROM {self._name(table)} WHERE "
                                   + " AND ".join(f"{quote(k)} = ?" for k in keys[table]), write=False),
                   values[:-1]) for table in tables for values in samples[table]]
        rows = np.array([int(result.one()[0]) for result in self._run(counts, write=False, plain=True)],
                        dtype=np.float64)
        # The counts come in the order of the requests: table by table, each table's sample in order.
        ends = np.cumsum([len(samples[table]) for table in tables])
        return {table: self._estimate(table, samples[table], rows[end - len(samples[table]):end])
                for table, end in zip(tables, ends)}

    def _estimate(self, table: str, sample: list[tuple[Any, ...]], rows: np.ndarray) -> int:
        """Rows of ``table`` from its sampled partitions (keys, token last) and their rows (step 3)."""
        if len(sample) < ESTIMATE_PARTITIONS:
            return int(rows.sum())  # every partition of the table: exact
        partitioner = self._cluster.metadata.partitioner or ""
        if not partitioner.endswith("Murmur3Partitioner"):
            raise NotImplementedError(f"row estimates need the Murmur3 partitioner (the default), not {partitioner}")
        share = (float(sample[-1][-1]) - _MIN_TOKEN + 1.0) / _RING
        partitions = max((len(sample) - 1) / share, float(len(sample)))
        estimate = int(round(partitions * float(rows.mean())))
        _LOG.debug("%s: ~%.0f partitions (%d spanning %.3g of the ring) x %.1f rows = %d rows", table, partitions,
                   len(sample), share, float(rows.mean()), estimate)
        return estimate
