"""Reads of the Cassandra backend: every partition a region (and window) touches, concurrently.

A mixin of `l1db.cassandra.l1db_cassandra.L1dbCassandra`, implementing the
read primitives of `l1db.api.L1db`. The partition queries are prepared
statements: a table's read is split into ``spatial_queries`` statements,
each with its share of the region's sky pixels in an IN list (0: one
statement per pixel; ``auto``: the shape measured faster for the table and
partition level), at most ``read_concurrency`` in flight; the driver
decodes each result into numpy arrays, and `l1db.api.L1db` trims the rows to
the exact region, object IDs and window. With ``time_partition_tables`` a
history read queries each existing table of its window's periods instead of
one table with the periods in an IN list (`l1db.cassandra.periods`).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa
from cassandra.query import PreparedStatement

from ..frames import empty_frame
from ..tables import LAST_OBJECT_KEY, period_table
from .client import PART_SA_COLUMN
from .partitions import PART_COLUMN, TIME_PART_COLUMN
from .periods import CassandraPeriods
from .schema import quote
from .session import log_partition_plan, typed_frame

__all__ = ["CassandraReads"]

_LOG = logging.getLogger(__name__)

#: Object IDs in the ``IN`` list of one read of DiaObject's latest versions (as the lookups of the store).
_IDS_PER_QUERY = 100


class CassandraReads(CassandraPeriods):
    """The read half of the Cassandra L1 API."""

    def _select(self, table: str, columns: Sequence[sa.Column], by_time: bool, pixel_list: bool) -> PreparedStatement:
        names = ", ".join(quote(c.name) for c in columns)
        where = f"{quote(PART_COLUMN)} {'IN' if pixel_list else '='} ?"
        where += f" AND {quote(TIME_PART_COLUMN)} IN ?" if by_time else ""
        key = f"select:{table}:{names}:{by_time}:{pixel_list}"
        return self._statement(key, f"SELECT {names} FROM {self._name(table)} WHERE {where}", write=False)

    def _spatial_queries(self, table: str) -> int:
        """Statements a read of ``table`` is split into (``spatial_queries``; 0 = one per sky pixel)."""
        value = self.options["spatial_queries"]
        if value != "auto":
            return int(value)
        # BENCHMARKS.md (read shapes): at level 7 one query per pixel read DiaSource 1.1-1.6x faster than IN
        # lists in 4 runs of 4, IN lists the narrow DiaObjectLast and DiaForcedSource 1.3-5x faster; at level
        # 10 one IN list read all three 4-12x faster for a field, 1.4-2.4x per detector.
        return 0 if table == "DiaSource" and self.options["part_pixel_level"] < 10 else 1

    def _read_partitions(self, table: str, columns: Sequence[sa.Column], pixels: np.ndarray,
                         time_parts: list[int] | None, explain: bool = False) -> pd.DataFrame:
        """Every row of ``table`` in the partitions (pixel x time partitions), typed.

        With ``time_partition_tables``, the time partitions are tables: those
        of them that exist are read, each in the pixels' partitions
        (`l1db.cassandra.periods`). With ``explain``, the plan (each statement
        and the partitions it reads) is logged.
        """
        groups = self._spatial_queries(table)
        pixel_list = groups > 0
        if time_parts is None or not self.period_tables:
            targets: list[tuple[str, list[int] | None]] = [(table, time_parts)]
        else:
            targets = [(period_table(table, p), None) for p in self.existing_periods(table, time_parts)]
        if pixel_list:
            keys: list[Any] = [g.tolist() for g in np.array_split(np.asarray(pixels, dtype=np.int64),
                                                                 min(groups, max(len(pixels), 1))) if len(g)]
            how = f"{len(keys)} statement(s), the pixels in IN lists"
        else:
            keys = [int(p) for p in pixels]
            how = f"{len(pixels)} statements"
        params = []
        for name, parts in targets:
            statement = self._select(name, columns, parts is not None, pixel_list)
            if explain:
                n_time = 1 if parts is None else len(parts)
                log_partition_plan(statement, len(pixels) * n_time,
                                   f"{len(pixels)} sky pixels x {n_time} time partitions, {how}")
            params += [(statement, (key,) if parts is None else (key, parts)) for key in keys]
        if explain and not targets:
            _LOG.info("query plan for %s: no table of the time partitions %s, nothing read", table, time_parts)
        return typed_frame(columns, self._run(params, write=False))

    def _read_objects(self, region: Any, explain: bool) -> pd.DataFrame:
        pixels = self.partitioning.region_pixels(region)
        wanted = self._object_columns()
        held = {c.name for c in self.last_object.columns}
        if all(c.name in held for c in wanted):
            return self._read_partitions("DiaObjectLast", wanted, pixels, None, explain)
        return self._read_full_latest(wanted, pixels, explain)

    def _read_full_latest(self, columns: Sequence[sa.Column], pixels: np.ndarray, explain: bool) -> pd.DataFrame:
        """The full rows of the latest versions in the sky pixels (``read_full_objects``), from DiaObject.

        DiaObjectLast names each latest version (diaObjectId,
        validityStartMjdTai) and its sky pixel; the version's DiaObject
        partition is that pixel and the time partition of its validity start,
        where it is read by object ID (in chunks of `_IDS_PER_QUERY`).
        """
        dia_object = self.tables["DiaObject"]
        key_columns = [PART_SA_COLUMN, *(dia_object.c[k] for k in LAST_OBJECT_KEY)]
        latest = self._read_partitions("DiaObjectLast", key_columns, pixels, None, explain)
        if not len(latest):
            return empty_frame(columns)
        ids = latest["diaObjectId"].to_numpy(dtype=np.int64)
        starts = latest["validityStartMjdTai"].to_numpy(dtype=np.float64)
        parts = latest[PART_COLUMN].to_numpy(dtype=np.int64)
        times = self.partitioning.time_partitions(starts)
        names = ", ".join(quote(c.name) for c in columns)
        # With time_partition_tables: each period's table, keyed by sky pixel alone; one with no table holds none.
        existing = set(self.existing_periods("DiaObject", np.unique(times).tolist())) if self.period_tables else None

        def version_query(pixel: int, period: int, chunk: list[int]) -> tuple[PreparedStatement, tuple[Any, ...]]:
            if existing is None:
                return self._statement(
                    f"select:full_latest:{names}",
                    f"SELECT {names} FROM {self._name('DiaObject')} WHERE {quote(PART_COLUMN)} = ? "
                    f'AND {quote(TIME_PART_COLUMN)} = ? AND "diaObjectId" IN ?', write=False), (pixel, period, chunk)
            table = period_table("DiaObject", period)
            return self._statement(
                f"select:full_latest:{table}:{names}",
                f'SELECT {names} FROM {self._name(table)} WHERE {quote(PART_COLUMN)} = ? AND "diaObjectId" IN ?',
                write=False), (pixel, chunk)

        order = np.lexsort((ids, times, parts))
        params = []
        for group in np.split(order, np.flatnonzero(np.diff(parts[order]) | np.diff(times[order])) + 1):
            pixel, period = int(parts[group[0]]), int(times[group[0]])
            if existing is not None and period not in existing:
                continue
            for first in range(0, len(group), _IDS_PER_QUERY):
                params.append(version_query(pixel, period, ids[group[first:first + _IDS_PER_QUERY]].tolist()))
        if explain and params:
            log_partition_plan(params[0][0], len(params), "one per (sky pixel, time partition) of the latest "
                               f"versions, ids in chunks of {_IDS_PER_QUERY}: {len(params)} statements")
        versions = typed_frame(columns, self._run(params, write=False))
        # The partitions hold the objects' other versions of the same time partition too.
        found = pd.MultiIndex.from_arrays([versions["diaObjectId"].to_numpy(dtype=np.int64),
                                           versions["validityStartMjdTai"].to_numpy(dtype=np.float64)])
        keep = found.isin(pd.MultiIndex.from_arrays([ids, starts]))
        return versions[keep].reset_index(drop=True)

    def _read_history(
        self, table: str, region: Any, ids: np.ndarray, start_mjd: float, end_mjd: float, explain: bool
    ) -> tuple[pd.DataFrame, bool]:
        """Every row of the partitions of the region's pixels and the window: of any object, at any time in them."""
        pixels = self.partitioning.region_pixels(region)
        time_parts = self.partitioning.window_partitions(start_mjd, end_mjd)
        return self._read_partitions(table, list(self.tables[table].columns), pixels, time_parts, explain), False
