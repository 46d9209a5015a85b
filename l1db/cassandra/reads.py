"""Reads of the Cassandra backend: every partition a region (and window) touches, concurrently.

A mixin of `l1db.cassandra.l1db_cassandra.L1dbCassandra`, implementing the
read primitives of `l1db.api.L1db`. The partition queries are prepared
statements run with at most ``read_concurrency`` in flight; the driver
decodes each result into numpy arrays, and `l1db.api.L1db` trims the rows to
the exact region, object IDs and window.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa
from cassandra.query import PreparedStatement

from .client import CassandraClient
from .partitions import PART_COLUMN, TIME_PART_COLUMN
from .schema import quote
from .session import log_partition_plan, typed_frame

__all__ = ["CassandraReads"]


class CassandraReads(CassandraClient):
    """The read half of the Cassandra L1 API."""

    def _select(self, table: str, columns: Sequence[sa.Column], by_time: bool) -> PreparedStatement:
        names = ", ".join(quote(c.name) for c in columns)
        where = f"{quote(PART_COLUMN)} = ?" + (f" AND {quote(TIME_PART_COLUMN)} IN ?" if by_time else "")
        key = f"select:{table}:{names}:{by_time}"
        return self._statement(key, f"SELECT {names} FROM {self._name(table)} WHERE {where}", write=False)

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
        return typed_frame(columns, self._run(params, write=False))

    def _read_objects(self, region: Any, explain: bool) -> pd.DataFrame:
        pixels = self.partitioning.region_pixels(region)
        return self._read_partitions("DiaObjectLast", self._object_columns(), pixels, None, explain)

    def _read_history(
        self, table: str, region: Any, ids: np.ndarray, start_mjd: float, end_mjd: float, explain: bool
    ) -> tuple[pd.DataFrame, bool]:
        """Every row of the partitions of the region's pixels and the window: of any object, at any time in them."""
        pixels = self.partitioning.region_pixels(region)
        time_parts = self.partitioning.window_partitions(start_mjd, end_mjd)
        return self._read_partitions(table, list(self.tables[table].columns), pixels, time_parts, explain), False
