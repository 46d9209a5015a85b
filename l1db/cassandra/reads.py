"""Reads of the Cassandra backend: every partition a region (and window) touches, concurrently.

A mixin of `l1db.cassandra.l1db_cassandra.L1dbCassandra`. The partition
queries are prepared statements run with at most ``read_concurrency`` in
flight; the driver decodes each result into numpy arrays and the client trims
the rows to the exact region, object IDs and window.
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa
from astropy.time import Time
from cassandra.query import PreparedStatement

from ..constants import AP_OBJECT_COLUMNS, MONTH_DAYS, to_mjd_tai
from ..frames import empty_frame
from ..pixelization import check_region, region_contains
from .client import CassandraClient
from .partitions import PART_COLUMN, TIME_PART_COLUMN
from .schema import quote
from .session import columns_of, log_partition_plan, typed_frame

__all__ = ["CassandraReads"]


class CassandraReads(CassandraClient):
    """The read half of the Cassandra L1 API."""

    def _select(self, table: str, columns: Sequence[sa.Column], by_time: bool) -> PreparedStatement:
        names = ", ".join(quote(c.name) for c in columns)
        where = f"{quote(PART_COLUMN)} = ?" + (f" AND {quote(TIME_PART_COLUMN)} IN ?" if by_time else "")
        key = f"select:{table}:{names}:{by_time}"
        return self._prepare(key, f"SELECT {names} FROM {self._name(table)} WHERE {where}", write=False)

    def _read_partitions(self, table: str, columns: Sequence[sa.Column], pixels: np.ndarray,
                         time_parts: list[int] | None, explain: bool = False) -> pd.DataFrame:
        """Every row of ``table`` in the partitions (pixel x time partitions), typed.

        With ``explain``, the plan (the statement and the partitions it reads) is logged.
        """
        statement = self._select(table, columns, time_parts is not None)
        if explain:
            n_time = 1 if time_parts is None else len(time_parts)
            log_partition_plan(statement, len(pixels) * n_time,
                               f"{len(pixels)} sky pixels x {n_time} time partitions, {len(pixels)} statements")
        params = ((statement, (int(p),) if time_parts is None else (int(p), time_parts)) for p in pixels)
        return typed_frame(columns, columns_of(self._run(params, write=False)))

    def _object_columns(self) -> list[sa.Column]:
        table = self.tables["DiaObject"]
        if self.config.read_full_objects:
            return list(table.columns)
        return [table.c[name] for name in AP_OBJECT_COLUMNS]

    def getDiaObjects(self, region: Any, explain: bool = False) -> pd.DataFrame:
        check_region(region)
        self.checkSchema()
        pixels = self.partitioning.region_pixels(region)
        objects = self._read_partitions("DiaObjectLast", self._object_columns(), pixels, None, explain)
        inside = region_contains(region, objects["ra"].to_numpy(), objects["dec"].to_numpy())
        return objects[inside].reset_index(drop=True)

    def _history(self, table: str, region: Any, ids: np.ndarray, months: int,
                 visit_time: Time | datetime.datetime, explain: bool) -> pd.DataFrame:
        columns = list(self.tables[table].columns)
        visit_mjd = to_mjd_tai(visit_time)
        if months == 0 or len(ids) == 0:
            return empty_frame(columns)
        start = visit_mjd - months * MONTH_DAYS
        pixels = self.partitioning.region_pixels(region)
        found = self._read_partitions(table, columns, pixels, self.partitioning.window_partitions(start, visit_mjd),
                                      explain)
        mjd = found["midpointMjdTai"].to_numpy(dtype=np.float64, na_value=np.nan)
        keep = (mjd > start) & (mjd < visit_mjd)
        keep &= np.isin(found["diaObjectId"].to_numpy(dtype=np.int64, na_value=-1), ids)
        return found[keep].reset_index(drop=True)

    def getDiaSources(self, region: Any, objects: pd.DataFrame | np.ndarray,
                      visit_time: Time | datetime.datetime, explain: bool = False) -> pd.DataFrame:
        check_region(region)
        self.checkSchema()
        return self._history("DiaSource", region, self._object_ids(objects), self.config.read_sources_months,
                             visit_time, explain)

    def getDiaForcedSources(self, region: Any, objects: pd.DataFrame | np.ndarray,
                            visit_time: Time | datetime.datetime, explain: bool = False) -> pd.DataFrame:
        check_region(region)
        self.checkSchema()
        return self._history("DiaForcedSource", region, self._object_ids(objects),
                             self.config.read_forced_sources_months, visit_time, explain)
