"""Stores of the Cassandra backend: idempotent visits without transactions.

A mixin of `l1db.cassandra.l1db_cassandra.L1dbCassandra`, writing what
`l1db.api.L1db` has checked and placed in its sky-pixel partitions
(`l1db.frames.PreparedVisit`).

Stores: Cassandra has no multi-partition transactions, so a visit cannot be
atomic as on SQL. It is made safe instead, in three steps:

1. the visit's DiaObject versions, DiaSources and DiaForcedSources are written
   (prepared statements in single-partition batches, encoded a column at a
   time by `l1db.cassandra.wire`, sent concurrently, never a NULL: an unset
   column is left unset, since a NULL is a tombstone);
2. once every row is acknowledged at the write consistency, the visit (tile)
   is recorded in ``L1dbVisit``: from then on it counts as stored;
3. the new versions are applied to ``DiaObjectLast`` (its published columns
   only, NULLs written, so that no value of the version replaced stays; an
   object that moved to another sky pixel has its old row deleted, through
   ``DiaObjectLastToPartition``), and the visit is marked applied.

A visit killed in step 1 is not recorded: a resumed run stores it again. Its
reads see nothing of the first attempt (step 1 writes only history, which
reads of the same visit exclude), so the seeded simulation produces the same
rows with the same keys, which overwrite the first attempt's: no duplicate,
no missing row. A visit killed in step 3 is recorded but not applied: every
client applies such visits again (from the DiaObject versions of step 1)
before it reads or stores. Writes to ``DiaObjectLast`` carry the version's
validity start as their timestamp, so that applying a version twice, or late,
never replaces a newer one.

With ``[cassandra] time_partition_tables`` step 1 writes each row to its
time partition's table of DiaObject, DiaSource or DiaForcedSource, made
first if this client does not know it to exist, and a store also makes the
tables of the period after its visit's (`l1db.cassandra.periods`).

With ``[l1db] enable_replica`` (`l1db.replica`) step 1 also writes the
replica, as dax_apdb's ``ApdbCassandra.store`` does: the chunk's row of
ApdbReplicaChunks, and each table's rows (full rows) into its chunk table, in
the partition (chunk, sub-chunk) of the table's store. These batches go in
the same concurrent write as the table's own (timed by the same operation);
the sub-chunk is drawn from the visit (`l1db.replica.sub_chunk`), so that a
store that is written again overwrites the same rows.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa
from cassandra.query import PreparedStatement, SimpleStatement

from ..frames import PreparedRows, PreparedVisit, checked_values
from ..pixelization import Pixelization
from ..replica import CHUNK_COLUMN, CHUNKS_TABLE, SUB_CHUNK_COLUMN, ReplicaChunk, replica_chunk, sub_chunk
from ..tables import period_table
from .client import PART_SA_COLUMN
from .partitions import PART_COLUMN, TIME_PART_COLUMN
from .periods import CassandraPeriods
from .schema import PERIOD_TABLES, REPLICA_TABLES, quote
from .session import log_partition_plan, typed_frame
from .wire import NULL, UNSET, EncodedBatch, encode_rows, wire_bytes

__all__ = ["CassandraWrites", "RECOVERY_ROWS", "MAX_BATCH_ROWS"]

_LOG = logging.getLogger(__name__)

#: L1dbVisit rows per page of the look for visits stored but not yet applied to
#: DiaObjectLast: the whole partition is read (its keys and ``applied`` flags
#: only), in pages of this many rows, so that a visit left unapplied is found
#: however many visits were stored after it.
RECOVERY_ROWS = 5000

#: Largest number of statements in one batch (Cassandra refuses more than 65,535).
MAX_BATCH_ROWS = 5000


# Rows of DiaObjectLastToPartition (one partition each) sent in one request.
_MAPPING_GROUP = 100

# The columns of a lookup of DiaObjectLastToPartition.
_LOOKUP_COLUMNS = (sa.Column("diaObjectId", sa.BigInteger, nullable=False), PART_SA_COLUMN)

# Microseconds per day: DiaObjectLast writes are timestamped with the validity
# start in microseconds of MJD, so that the newest version always wins.
_US_PER_DAY = 86_400_000_000


def _version_timestamps(mjd: np.ndarray) -> np.ndarray:
    return np.round(np.asarray(mjd, dtype=np.float64) * _US_PER_DAY).astype(np.int64)


class CassandraWrites(CassandraPeriods):
    """The write half of the Cassandra L1 API, and the recovery of a store cut short."""

    def _pixelization_of(self, table: str) -> Pixelization | None:
        # Every table is partitioned by sky pixel.
        return self.partitioning.pixelization

    @staticmethod
    def _pixels(rows: PreparedRows) -> np.ndarray:
        """The sky-pixel partition of each of ``rows`` (`_pixelization_of` places every table)."""
        assert rows.pixels is not None
        return rows.pixels

    def _insert(self, table: str, columns: Sequence[str], timestamped: bool = False) -> PreparedStatement:
        names = ", ".join(quote(c) for c in columns)
        marks = ", ".join("?" for _ in columns)
        using = " USING TIMESTAMP ?" if timestamped else ""
        key = f"insert:{table}:{names}:{timestamped}"
        return self._statement(key, f"INSERT INTO {self._name(table)} ({names}) VALUES ({marks}){using}", write=True)

    def _rows_per_batch(self, frame: pd.DataFrame) -> int:
        row_bytes = 32 + sum(wire_bytes(self._column_kinds.get(n, "int64")) for n in frame.columns)
        return int(max(1, min(MAX_BATCH_ROWS, self.options["batch_max_kib"] * 1024 // row_bytes)))

    def _batches(self, statement: PreparedStatement, frame: pd.DataFrame, partition: Sequence[np.ndarray],
                 extra: Sequence[np.ndarray] = (), per_batch: int | None = None, replace: bool = False,
                 ) -> Iterator[tuple[EncodedBatch, None, int]]:
        """Batches of the rows of ``frame``, one partition each; ``partition`` holds its key columns.

        ``frame``'s columns come first in each statement's values, ``extra``
        int64 arrays (e.g. write timestamps) after them. With ``replace``
        (rows that replace others of the same key), NULLs are written, not
        left unset. Each batch comes with its bytes on the wire (for the
        bound on the bytes in flight, ``write_inflight_kib``).
        """
        order = np.lexsort(tuple(reversed(partition)))
        kinds = [self._column_kinds.get(name, "int64") for name in frame.columns]
        columns: list[tuple[np.ndarray, np.ndarray | None, str]] = []
        for name, kind in zip(frame.columns, kinds):
            values, nulls = checked_values(frame[name], kind)
            columns.append((values[order], nulls[order], kind))
        columns += [(np.asarray(e, dtype=np.int64)[order], None, "int64") for e in extra]
        rows = encode_rows(statement, columns, NULL if replace else UNSET)
        change = np.zeros(max(len(order) - 1, 0), dtype=bool)
        for key in partition:
            sorted_key = key[order]
            change |= sorted_key[1:] != sorted_key[:-1]
        bounds = np.flatnonzero(change) + 1
        starts = np.concatenate(([0], bounds))
        ends = np.concatenate((bounds, [len(order)]))
        per_batch = per_batch or self._rows_per_batch(frame)
        for start, end in zip(starts.tolist(), ends.tolist()):
            for first in range(start, end, per_batch):
                last = min(first + per_batch, end)
                yield EncodedBatch(statement, rows, first, last, self._write_cl), None, rows.size(first, last)

    def _write_table(self, table: str, rows: PreparedRows, time_column: str,
                     also: Iterable[tuple[Any, ...]] = ()) -> None:
        """Write rows of a history table to their (sky pixel, time partition) partitions.

        With ``time_partition_tables``, each row to its period's table (made
        first if it is not known to exist: `l1db.cassandra.periods`), in its
        sky pixel's partition. ``also``: more statements sent in the same
        concurrent write (the replica's).
        """
        frame, pixels = rows.frame, self._pixels(rows)
        times = self.partitioning.time_partitions(frame[time_column].to_numpy(dtype=np.float64))
        if not self.period_tables:
            keyed = frame.assign(**{PART_COLUMN: pixels, TIME_PART_COLUMN: times})
            columns = [PART_COLUMN, TIME_PART_COLUMN, *frame.columns]
            statement = self._insert(table, columns)
            self._run(itertools.chain(self._batches(statement, keyed[columns], (pixels, times)), also), write=True)
            return
        periods = np.unique(times).tolist()
        self.make_periods({table: periods})
        columns = [PART_COLUMN, *frame.columns]
        keyed = frame.assign(**{PART_COLUMN: pixels})[columns]
        per_period = []
        for period in periods:
            mine = times == period
            statement = self._insert(period_table(table, period), columns)
            per_period.append(self._batches(statement, keyed[mine], (pixels[mine],)))
        self._run(itertools.chain(*per_period, also), write=True)

    def _replica_chunk_row(self, chunk: ReplicaChunk) -> tuple[PreparedStatement, list[Any]]:
        """The upsert of the chunk's row of ApdbReplicaChunks (one partition, 0, as dax_apdb's)."""
        statement = self._insert(CHUNKS_TABLE, ["partition", CHUNK_COLUMN, "last_update_time", "unique_id",
                                                "has_subchunks"])
        return statement, [0, chunk.id, chunk.last_update_ms, chunk.unique_id, True]

    def _replica_batches(self, rows: PreparedRows, chunk: ReplicaChunk | None, visit_id: int | None,
                         tile: int) -> Iterator[tuple[EncodedBatch, None, int]]:
        """Batches of ``rows`` (full rows) into their chunk table, in the partition of this store; none without."""
        if chunk is None:
            return iter(())
        frame = rows.frame
        sub = sub_chunk(self.options["replica_sub_chunk_count"], rows.table, visit_id, tile)
        keys = (np.full(len(frame), chunk.id, dtype=np.int64), np.full(len(frame), sub, dtype=np.int64))
        keyed = frame.assign(**{CHUNK_COLUMN: keys[0], SUB_CHUNK_COLUMN: keys[1]})
        columns = [CHUNK_COLUMN, SUB_CHUNK_COLUMN, *frame.columns]
        statement = self._insert(REPLICA_TABLES[rows.table], columns)
        return self._batches(statement, keyed[columns], keys)

    def _replica_writes(self, chunk: ReplicaChunk | None, rows: PreparedRows, visit_id: int | None, tile: int,
                        first: bool) -> Iterator[tuple[Any, ...]]:
        """The replica's statements sent with ``rows``' own: the chunk's row with the ``first`` table's."""
        record = [self._replica_chunk_row(chunk)] if chunk is not None and first else []
        return itertools.chain(record, self._replica_batches(rows, chunk, visit_id, tile))

    def _chunk_of(self, visit_mjd: float) -> ReplicaChunk | None:
        """The replica chunk of a store at ``visit_mjd``; `None` without ``enable_replica``."""
        return replica_chunk(visit_mjd, self.config.replica_chunk_seconds) if self.config.enable_replica else None

    def _apply_versions(self, versions: PreparedRows, explain: bool = False) -> None:
        """Make ``objects`` (new DiaObject versions) the latest ones in DiaObjectLast.

        Every write carries the version's validity start as its timestamp, so
        that this may run more than once, or late, and never replaces a newer
        version. An object whose sky pixel changed has its old row deleted.
        With ``explain``, the plan of the lookup of their partitions is logged.
        """
        objects, pixels = versions.frame, self._pixels(versions)
        ids = objects["diaObjectId"].to_numpy(dtype=np.int64)
        stamps = _version_timestamps(objects["validityStartMjdTai"].to_numpy(dtype=np.float64))
        with self._timed("obj_last_delete") as timer:
            lookup = self._statement(
                "select:last_partition",
                f'SELECT "diaObjectId", {quote(PART_COLUMN)} FROM {self._name("DiaObjectLastToPartition")} '
                f'WHERE "diaObjectId" IN ?', write=False)
            chunks = [ids[i : i + 100].tolist() for i in range(0, len(ids), 100)]
            if explain:
                log_partition_plan(lookup, len(ids), f"one per diaObjectId, in {len(chunks)} statements")
            found = typed_frame(_LOOKUP_COLUMNS, self._run(((lookup, (chunk,)) for chunk in chunks), write=False))
            old_ids = found["diaObjectId"].to_numpy(dtype=np.int64)
            old_parts = found[PART_COLUMN].to_numpy(dtype=np.int64)
            order = np.argsort(ids)
            where = order[np.searchsorted(ids, old_ids, sorter=order)] if len(old_ids) else np.empty(0, np.int64)
            moved = old_parts != pixels[where]
            delete = self._statement(
                "delete:last",
                f'DELETE FROM {self._name("DiaObjectLast")} USING TIMESTAMP ? '
                f'WHERE {quote(PART_COLUMN)} = ? AND "diaObjectId" = ?', write=True)
            self._run(((delete, (int(stamps[w]), int(p), int(i)))
                       for w, p, i in zip(where[moved], old_parts[moved], old_ids[moved])), write=True)
            timer.rows = int(moved.sum())
        with self._timed("obj_last_upsert", len(objects)):
            # The full rows are in DiaObject; DiaObjectLast holds its published subset of columns.
            columns = [PART_COLUMN, *(c.name for c in self.last_object.columns if c.name in objects)]
            statement = self._insert("DiaObjectLast", columns, timestamped=True)
            keyed = objects.assign(**{PART_COLUMN: pixels})[columns]
            # A NULL of the new version replaces the old version's value (a tombstone cell, where NULL).
            self._run(self._batches(statement, keyed, (pixels,), extra=[stamps], replace=True), write=True)
            # One partition per object: sent in groups, each group one request.
            mapping = self._insert("DiaObjectLastToPartition", ["diaObjectId", PART_COLUMN], timestamped=True)
            groups = np.arange(len(ids)) // _MAPPING_GROUP
            frame = pd.DataFrame({"diaObjectId": ids, PART_COLUMN: pixels})
            self._run(self._batches(mapping, frame, (groups,), extra=[stamps], per_batch=_MAPPING_GROUP),
                      write=True)

    def _append(self, rows: PreparedRows) -> None:
        # No visit time here (the original API's storeDiaSources): the newest row's time stands for it.
        newest = float(np.nanmax(rows.frame["midpointMjdTai"].to_numpy(dtype=np.float64, na_value=np.nan)))
        self._append_rows(rows, self._chunk_of(newest), None, 0, first=True)

    def _append_rows(self, rows: PreparedRows, chunk: ReplicaChunk | None, visit_id: int | None, tile: int,
                     first: bool) -> None:
        """Write DiaSources or DiaForcedSources, and their replica (`_replica_writes`)."""
        with self._timed_append(rows):
            self._write_table(rows.table, rows, "midpointMjdTai",
                              self._replica_writes(chunk, rows, visit_id, tile, first))

    def _write_visit(self, visit: PreparedVisit, explain: bool) -> None:
        """The three steps of the module's docstring; a store cut short is finished before the next read or store."""
        try:
            objects = visit.objects
            chunk = self._chunk_of(visit.visit_mjd)
            if self.period_tables:
                # The next period's tables, ahead of the stores that reach it (`l1db.cassandra.periods`).
                ahead = int(self.partitioning.time_partitions(np.array([visit.visit_mjd]))[0]) + 1
                self.make_periods({table: [ahead] for table in PERIOD_TABLES})
            if objects is not None:
                with self._timed("obj_insert", len(objects)):
                    self._write_table("DiaObject", objects, "validityStartMjdTai",
                                      self._replica_writes(chunk, objects, visit.visit_id, visit.tile, True))
            for i, rows in enumerate(visit.history):
                self._append_rows(rows, chunk, visit.visit_id, visit.tile, first=objects is None and i == 0)
            if visit.visit_id is not None:
                # Every row is acknowledged: from here on the visit counts as stored.
                parts = set() if objects is None else set(np.unique(self._pixels(objects)).tolist())
                with self._timed("visit_insert", 1):
                    self._record_visit(visit.visit_id, visit.visit_mjd, visit.tile, visit.n_tiles, parts,
                                       applied=objects is None)
            if objects is not None:
                self._apply_versions(objects, explain)
                if visit.visit_id is not None:
                    self._mark_applied(visit.visit_id, visit.tile)
        except BaseException:
            # Whatever was half-done is finished (or redone) before the next read.
            self._needs_recovery = True
            raise

    def _unapplied_visits(self) -> list[tuple[int, int, float, np.ndarray]]:
        """(visit ID, tile, visit MJD, sky pixels) of every visit recorded but not applied, oldest first.

        Every row of the L1dbVisit partition is looked at (one paged read of
        its keys and flags: the cost grows with the stored tiles, paid once
        per client and after a store cut short); only the few unapplied
        rows are then read whole.
        """
        table = self._name("L1dbVisit")
        statement = SimpleStatement(f'SELECT "visitId", tile, applied FROM {table} WHERE bucket = 0',
                                    consistency_level=self._read_cl, fetch_size=RECOVERY_ROWS)
        # Iterating the result fetches the next page when one is used up.
        pages = self._plain.execute(statement, timeout=self.options["read_timeout"])
        keys = [(int(v), int(t)) for v, t, applied in pages if not applied]
        found = []
        for visit_id, tile in sorted(keys):
            row = self._simple(f'SELECT "visitTimeMjdTai", parts FROM {table} '
                               f'WHERE bucket = 0 AND "visitId" = %s AND tile = %s', [visit_id, tile]).one()
            if row is not None:
                found.append((visit_id, tile, float(row[0]), np.array(sorted(row[1] or ()), dtype=np.int64)))
        return found

    def _apply_unapplied_visits(self) -> None:
        """Apply to DiaObjectLast the versions of visits recorded but not applied (a store cut short)."""
        for visit_id, tile, visit_mjd, parts in self._unapplied_visits():
            _LOG.warning("visit %d tile %d was stored but not applied to DiaObjectLast: applying it now",
                         visit_id, tile)
            # DiaObjectLast's columns (positions included) are all the versions need here.
            columns = [self.tables["DiaObject"].c[c.name] for c in self.last_object.columns]
            time_part = self.partitioning.time_partitions(np.array([visit_mjd]))[0]
            versions = self._read_partitions("DiaObject", columns, parts, [int(time_part)])
            versions = versions[versions["validityStartMjdTai"].to_numpy() == visit_mjd].reset_index(drop=True)
            if len(versions):
                pixels = self.partitioning.pixels(*self._positions("DiaObject", versions))
                self._apply_versions(PreparedRows("DiaObject", versions, pixels))
            self._mark_applied(visit_id, tile)
