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
keys and *S* single-partition counts per table, whatever the table's size.
"""

from __future__ import annotations

import logging

import numpy as np

from .client import CassandraClient
from .schema import quote, schema_tables

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
        """Rows of each table: full scans if ``exact``, else estimates without one (the module's docstring)."""
        self.checkSchema()
        if exact:
            return {table: self._full_count(table) for table in schema_tables(self.config)}
        return {table: self._estimated_count(table) for table in schema_tables(self.config)}

    def _full_count(self, table: str) -> int:
        result = self._simple(f"SELECT COUNT(*) FROM {self._name(table)}",
                              timeout=max(600.0, self.options["read_timeout"]))
        return int(result.one()[0])

    def _partition_key(self, table: str) -> list[str]:
        rows = self._plain_columns(self._simple(
            "SELECT column_name, kind, position FROM system_schema.columns "
            "WHERE keyspace_name = %s AND table_name = %s", [self.keyspace, table]))
        keys = sorted((int(p), str(n)) for n, k, p in zip(rows["column_name"], rows["kind"], rows["position"])
                      if k == "partition_key")
        return [name for _, name in keys]

    def _estimated_count(self, table: str) -> int:
        key = self._partition_key(table)
        names = ", ".join(quote(k) for k in key)
        sample = [tuple(row) for row in self._simple(
            f"SELECT DISTINCT {names}, token({names}) FROM {self._name(table)} LIMIT {ESTIMATE_PARTITIONS}")]
        where = " AND ".join(f"{quote(k)} = %s" for k in key)
        rows = np.array([int(self._simple(f"SELECT COUNT(*) FROM {self._name(table)} WHERE {where}",
                                          list(values[:-1])).one()[0]) for values in sample], dtype=np.float64)
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
