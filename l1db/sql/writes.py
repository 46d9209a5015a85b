"""Stores of the SQL backends: one transaction per visit, a write path per indexing strategy.

A mixin of `l1db.sql.l1db_sql.L1dbSql`, writing what `l1db.api.L1db` has
checked and placed on the sky (`l1db.frames.PreparedVisit`; the pixels go to
the ``pixelId`` column of DiaObject and DiaSource).

Validity of DiaObject versions: a stored version starts at the visit time and
is open (``validityEndMjdTai`` NULL) until a newer version of the same object
is stored, which closes it (``baseline`` and ``pix_id_iov``). With ``last_object_table`` the latest
versions live in ``DiaObjectLast`` (its published columns only; replaced by
delete + insert, or by the native upsert) and DiaObject keeps the full rows
of every version without closing validity.
With ``dia_object_nightly`` new versions go to ``DiaObjectNightly`` and are
applied to the other tables by `SqlWrites.dailyJob`.

With time partitions (`l1db.sql.partitions`) every store first makes sure,
in a short transaction of its own, that the partitions of its rows and of
the next ``history_partition_days`` exist (no statement at all once they are
known to), so that the store's own transaction never meets a missing
partition; `SqlWrites.dailyJob` does the same ahead of the last visit and
drops the partitions past ``retention_days``.

With ``enable_replica`` (`l1db.replica`) the store's transaction also
upserts its chunk's row of ApdbReplicaChunks (first: the chunk tables refer
to it) and, after each table's rows, writes their keys with the chunk id
into the table's chunk table (in the table's timed operation: ``obj_insert``,
``src_insert``, ``fsrc_insert``), as dax_apdb's ``ApdbSql.store`` does.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

import numpy as np
import pandas as pd
import sqlalchemy as sa

from ..frames import PreparedRows, PreparedVisit
from ..pixelization import Pixelization
from ..replica import CHUNK_COLUMN, CHUNKS_TABLE, ReplicaChunk, replica_chunk
from . import bulk_insert
from .chunks import id_chunks
from .client import SqlClient
from .partitions import PARTITION_COLUMNS, TimePartition
from .schema import PIXEL_COLUMN, REPLICA_TABLES

__all__ = ["SqlWrites"]

_LOG = logging.getLogger(__name__)


def _published_columns(last: sa.Table, objects: pd.DataFrame) -> list[str]:
    """The columns of DiaObjectLast (``last``) in ``objects``.

    The full rows go to DiaObject; DiaObjectLast holds its published subset of columns.
    """
    return [c for c in last.columns.keys() if c in objects]


class SqlWrites(SqlClient):
    """The write half of the SQL L1 API (and the nightly merge)."""

    #: The sky-pixel column of DiaObject and DiaSource, set by the store.
    _backend_columns = frozenset({PIXEL_COLUMN})

    def _pixelization_of(self, table: str) -> Pixelization | None:
        return self.pixelization if PIXEL_COLUMN in self._table(table).columns else None

    @staticmethod
    def _stored_frame(rows: PreparedRows) -> pd.DataFrame:
        """The frame of ``rows`` as its SQL table holds it: with the sky-pixel column where it has one."""
        return rows.frame if rows.pixels is None else rows.frame.assign(**{PIXEL_COLUMN: rows.pixels})

    def _store_objects(self, conn: sa.Connection, objects: pd.DataFrame, visit_mjd: float, explain: bool,
                       chunk: ReplicaChunk | None, out_of_order: bool = False) -> None:
        ids = objects["diaObjectId"].to_numpy(dtype=np.int64)
        if "DiaObjectNightly" in self.schema.tables:
            # (No replica with the nightly table: the config refuses enable_replica with it.)
            with self._timed("obj_nightly_insert", len(objects)):
                bulk_insert.insert_frame(conn, self._table("DiaObjectNightly"), objects)
            return
        if out_of_order:
            self._apply_versions_out_of_order(conn, objects, ids, visit_mjd, chunk)
            return
        self._apply_versions(conn, objects, ids, visit_mjd, explain, chunk)

    def _replica_chunk(self, conn: sa.Connection, visit_mjd: float) -> ReplicaChunk | None:
        """Upsert the chunk of a store at ``visit_mjd`` into ApdbReplicaChunks; `None` without ``enable_replica``."""
        if not self.config.enable_replica:
            return None
        chunk = replica_chunk(visit_mjd, self.config.replica_chunk_seconds)
        row = {CHUNK_COLUMN: chunk.id, "last_update_time": chunk.last_update_time, "unique_id": chunk.unique_id}
        # A true update of the existing row: MySQL's REPLACE (and SQLite's INSERT OR REPLACE) would delete
        # it first, and with it (ON DELETE CASCADE) the chunk rows of the earlier stores of the chunk. Not
        # upsert_newer_frame: the unique id changes with every store, even one of an older visit.
        conn.execute(bulk_insert.upsert_statement(conn.dialect.name, self._table(CHUNKS_TABLE), row,
                                                  [CHUNK_COLUMN], ["last_update_time", "unique_id"]))
        return chunk

    def _insert_chunk_rows(self, conn: sa.Connection, published: str, frame: pd.DataFrame,
                           chunk: ReplicaChunk | None) -> None:
        """Insert the keys of ``frame`` (rows just stored in ``published``) into its chunk table."""
        if chunk is None:
            return
        table = self._table(REPLICA_TABLES[published])
        keys = [c.name for c in table.columns if c.name != CHUNK_COLUMN]
        bulk_insert.insert_frame(conn, table, frame[keys].assign(**{CHUNK_COLUMN: chunk.id}))

    def _insert_versions(self, conn: sa.Connection, objects: pd.DataFrame, replica: ReplicaChunk | None) -> None:
        """Insert DiaObject versions (``obj_insert``), with their keys in the replica's chunk table."""
        with self._timed("obj_insert", len(objects)):
            bulk_insert.insert_frame(conn, self._table("DiaObject"), objects)
            self._insert_chunk_rows(conn, "DiaObject", objects, replica)

    def _apply_versions_out_of_order(self, conn: sa.Connection, objects: pd.DataFrame, ids: np.ndarray,
                                     visit_mjd: float, replica: ReplicaChunk | None = None) -> None:
        """`_apply_versions` for a visit whose store may come after a later visit's (`L1db.store`'s ``out_of_order``).

        The latest-version table keeps the version with the latest validity
        start (`bulk_insert.upsert_newer_frame`: ``obj_last_upsert``). With
        validity intervals, the versions of an object before the visit are
        closed at its time, those it closed early are shortened to it, and a
        new version with a later one after it is stored closed at that one's
        start: the intervals stay a partition of time whatever the order of
        the stores. On PostgreSQL and MySQL such stores of validity
        intervals take turns (a lock on L1dbMetadata's rows, held to the
        commit); the latest-version table needs none (the upsert waits for
        the row it replaces).
        """
        dia_object = self._table("DiaObject")
        if "DiaObjectLast" in self.schema.tables:
            self._insert_versions(conn, objects, replica)
            last = self._table("DiaObjectLast")
            latest = objects.loc[:, _published_columns(last, objects)]
            with self._timed("obj_last_upsert", len(latest)):
                bulk_insert.upsert_newer_frame(conn, last, latest, "validityStartMjdTai")
            return
        start, end = dia_object.c.validityStartMjdTai, dia_object.c.validityEndMjdTai
        if conn.dialect.name != "sqlite" and "L1dbMetadata" in self.schema.tables:
            # Two such stores of one object at once would each miss the other's uncommitted version (and
            # leave both open): they take turns, on the rows of L1dbMetadata (a plain read is never blocked).
            # The statements below then see what the other committed.
            conn.execute(sa.select(self._table("L1dbMetadata").c.name).with_for_update()).all()
        ends: dict[int, float] = {}
        with self._timed("obj_validity_update") as timer:
            updated = 0
            for chunk in id_chunks(np.unique(ids), conn.dialect.name):
                update = (sa.update(dia_object)
                          .where(dia_object.c.diaObjectId.in_(chunk), start < visit_mjd,
                                 sa.or_(end.is_(None), end > visit_mjd))
                          .values(validityEndMjdTai=float(visit_mjd)))
                updated += conn.execute(update).rowcount
                later = (sa.select(dia_object.c.diaObjectId, sa.func.min(start))
                         .where(dia_object.c.diaObjectId.in_(chunk), start > visit_mjd)
                         .group_by(dia_object.c.diaObjectId))
                ends.update((int(i), float(t)) for i, t in conn.execute(later))
            timer.rows = updated
        if ends:
            objects = objects.copy()
            objects["validityEndMjdTai"] = objects["diaObjectId"].map(ends).astype("float64")
        self._insert_versions(conn, objects, replica)

    def _apply_versions(
        self,
        conn: sa.Connection,
        objects: pd.DataFrame,
        ids: np.ndarray,
        close_mjd: float | np.ndarray,
        explain: bool = False,
        replica: ReplicaChunk | None = None,
    ) -> None:
        """Write new DiaObject versions to DiaObject (and DiaObjectLast, and the replica's DiaObjectChunks).

        ``objects`` may hold several versions of one object (the nightly merge),
        with their validity already set; ``close_mjd`` closes earlier versions.
        """
        dia_object = self._table("DiaObject")
        if "DiaObjectLast" in self.schema.tables:
            self._insert_versions(conn, objects, replica)
            last = self._table("DiaObjectLast")
            latest = objects.loc[objects["validityEndMjdTai"].isna(), _published_columns(last, objects)]
            if self.config.object_last_replace:
                with self._timed("obj_last_upsert", len(latest)):
                    bulk_insert.upsert_frame(conn, last, latest)
            else:
                with self._timed("obj_last_delete") as timer:
                    deleted = 0
                    for i, chunk in enumerate(id_chunks(np.unique(ids), conn.dialect.name)):
                        stmt = sa.delete(last).where(last.c.diaObjectId.in_(chunk))
                        if explain and i == 0:
                            self._explain(conn, stmt)
                        deleted += conn.execute(stmt).rowcount
                    timer.rows = deleted
                with self._timed("obj_last_insert", len(latest)):
                    bulk_insert.insert_frame(conn, last, latest)
            return
        with self._timed("obj_validity_update") as timer:
            updated = 0
            close = np.broadcast_to(np.asarray(close_mjd, dtype=np.float64), ids.shape)
            # One UPDATE per distinct closing time (one per visit; a few in a merge).
            for mjd in np.unique(close):
                sel = np.unique(ids[close == mjd])
                for chunk in id_chunks(sel, conn.dialect.name):
                    update = (
                        sa.update(dia_object)
                        .where(dia_object.c.diaObjectId.in_(chunk), dia_object.c.validityEndMjdTai.is_(None))
                        .values(validityEndMjdTai=float(mjd))
                    )
                    if explain and updated == 0:
                        self._explain(conn, update)
                    updated += conn.execute(update).rowcount
            timer.rows = updated
        self._insert_versions(conn, objects, replica)

    def _ensure_partitions(self, prepared: Mapping[str, PreparedRows], visit_mjd: float | None = None) -> None:
        """Create the time partitions the rows of ``prepared`` (and the days after the visit) fall in."""
        if self.partitions is None:
            return
        times = {}
        for table in self.partitions.tables:
            rows = prepared.get(table)
            column = PARTITION_COLUMNS[table]
            parts = [] if rows is None else [rows.frame[column].to_numpy(dtype=np.float64, na_value=np.nan)]
            if visit_mjd is not None:
                parts.append(self.partitions.horizon(visit_mjd))
            if parts:
                times[table] = np.concatenate(parts)
        self.partitions.ensure(self.engine, times)

    def _insert_history(self, conn: sa.Connection, rows: PreparedRows, chunk: ReplicaChunk | None) -> None:
        """Insert DiaSources or DiaForcedSources (and their chunk rows) in the transaction of ``conn``."""
        frame = self._stored_frame(rows)
        with self._timed_append(rows):
            bulk_insert.insert_frame(conn, self._table(rows.table), frame)
            self._insert_chunk_rows(conn, rows.table, frame, chunk)

    def _append(self, rows: PreparedRows) -> None:
        """One transaction (after the partitions the rows need); the replica chunk is that of the newest row."""
        self._ensure_partitions({rows.table: rows})
        with self.engine.begin() as conn:
            chunk = None
            if self.config.enable_replica:
                # No visit time here (the original API's storeDiaSources): the newest row's time stands for it.
                chunk = self._replica_chunk(conn, float(np.nanmax(rows.frame["midpointMjdTai"].to_numpy(
                    dtype=np.float64, na_value=np.nan))))
            self._insert_history(conn, rows, chunk)

    def _write_visit(self, visit: PreparedVisit, explain: bool) -> None:
        """One transaction: all of the visit or nothing (see `L1db.store`)."""
        # Before the store's transaction (and in the store's time); also with the nightly
        # table, so that DiaObject's partitions are ready for dailyJob's merge.
        self._ensure_partitions(visit.tables, visit.visit_mjd)
        with self.engine.begin() as conn:
            chunk = self._replica_chunk(conn, visit.visit_mjd)
            if visit.objects is not None:
                self._store_objects(conn, self._stored_frame(visit.objects), visit.visit_mjd, explain, chunk,
                                    visit.out_of_order)
            for rows in visit.history:
                self._insert_history(conn, rows, chunk)
            if visit.visit_id is not None:
                with self._timed("visit_insert", 1):
                    self._insert_visit(conn, visit.visit_id, visit.visit_mjd, visit.tile, visit.n_tiles)

    def dailyJob(self) -> int:
        """Merge DiaObjectNightly into the DiaObject tables, then maintain the time partitions; return rows merged.

        The merge (``dia_object_nightly = 1``) is one transaction: versions are
        ordered per object, each closed by the next, earlier versions in
        DiaObject closed by the first new one. With time partitions, the
        partitions of the next ``history_partition_days`` after the last stored
        visit are created, and with ``retention_days`` those that end more than
        that many days before it are dropped whole.
        """
        self.checkSchema()
        merged = self._merge_nightly() if "DiaObjectNightly" in self.schema.tables else 0
        if self.partitions is not None:
            self._maintain_partitions()
        return merged

    def _maintain_partitions(self) -> None:
        assert self.partitions is not None  # dailyJob calls it only with time partitions
        last = self.lastVisit()
        if last is None:
            return
        last_mjd = float(last[1].tai.mjd)
        with self._records_after_store(), self._timed("daily_partitions") as timer:
            horizon = self.partitions.horizon(last_mjd)
            created = self.partitions.ensure(self.engine, {t: horizon for t in self.partitions.tables})
            dropped: list[TimePartition] = []
            if self.config.retention_days:
                dropped = self.partitions.drop_before(self.engine, last_mjd - self.config.retention_days)
            timer.rows = len(created) + len(dropped)

    def _merge_nightly(self) -> int:
        # DiaObject's partitions for these versions were made when they were stored.
        nightly = self._table("DiaObjectNightly")
        with (self._records_after_store() as committing, self._timed("daily_merge") as timer,
              self.engine.begin() as conn):
            rows = self._read(conn, sa.select(*nightly.columns), explain=False)
            timer.rows = len(rows)
            if len(rows) == 0:
                committing()
                return 0
            rows = rows.sort_values(["diaObjectId", "validityStartMjdTai"], kind="stable").reset_index(drop=True)
            ids = rows["diaObjectId"].to_numpy(dtype=np.int64)
            start = rows["validityStartMjdTai"].to_numpy(dtype=np.float64)
            same_next = np.zeros(len(ids), dtype=bool)
            same_next[:-1] = ids[1:] == ids[:-1]
            end = np.full(len(ids), np.nan)
            end[:-1][same_next[:-1]] = start[1:][same_next[:-1]]
            rows["validityEndMjdTai"] = end
            first = np.ones(len(ids), dtype=bool)
            first[1:] = ids[1:] != ids[:-1]
            # Close what DiaObject holds with the first nightly version of each object.
            self._apply_versions(conn, rows, ids[first], start[first])
            conn.execute(sa.delete(nightly))
            # From the commit to the records' hand-over: one block (ap_proto's signals wait for its end).
            committing()
        return len(rows)
