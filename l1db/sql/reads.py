"""Reads of the SQL backends: DiaObjects by sky pixel, DiaSource and DiaForcedSource history.

A mixin of `l1db.sql.l1db_sql.L1dbSql` (which provides ``engine``, ``schema``,
``pixelization`` and ``config``): one of the two places where the indexing
options act (the other is `l1db.sql.schema`). It implements the read
primitives of `l1db.api.L1db`, which checks the arguments, sets the window
and trims what is read to the exact region, objects and window.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa

from ..api import latest_versions
from ..tables import LAST_OBJECT_KEY
from .chunks import id_chunks
from .client import SqlClient
from .schema import PIXEL_COLUMN

__all__ = ["SqlReads"]

_LOG = logging.getLogger(__name__)


class SqlReads(SqlClient):
    """The read half of the SQL L1 API."""

    @staticmethod
    def _columns_of(table: sa.Table, columns: Iterable[sa.Column]) -> list[sa.Column]:
        """The columns of the SQL ``table`` named as the published ``columns``."""
        return [table.c[c.name] for c in columns]

    def _read_objects(self, region: Any, explain: bool) -> pd.DataFrame:
        # The pixel-range query returns a superset of the region, trimmed by L1db.getDiaObjects.
        ranges = self.pixelization.envelope(region)
        table = self.schema.object_read_table
        wanted = self._object_columns()
        where = self.pixelization.pixel_ranges_clause(table.c[PIXEL_COLUMN], ranges)
        if table.name == "DiaObject":
            select = sa.select(*self._columns_of(table, wanted)).where(where, table.c.validityEndMjdTai.is_(None))
        elif all(c.name in table.c for c in wanted):
            select = sa.select(*self._columns_of(table, wanted)).where(where)
        else:
            # Columns DiaObjectLast does not hold (read_full_objects): the latest versions' full rows,
            # found in DiaObject by their key.
            history = self._table("DiaObject")
            on = sa.and_(*(history.c[k] == table.c[k] for k in LAST_OBJECT_KEY))
            select = sa.select(*self._columns_of(history, wanted)).select_from(table.join(history, on)).where(where)
        with self.engine.connect() as conn:
            objects = self._read(conn, select, explain)
            if "DiaObjectNightly" in self.schema.tables:
                objects = self._with_nightly_versions(conn, objects, ranges, explain)
        return objects

    def _with_nightly_versions(
        self, conn: sa.Connection, objects: pd.DataFrame, ranges: list[tuple[int, int]], explain: bool
    ) -> pd.DataFrame:
        """Replace objects by their newest version when DiaObjectNightly holds a newer one.

        A newer version may have moved out of the region, so the candidates'
        versions are read by ID, not by pixel: the region is applied after.
        The nightly table has no index (that is the strategy), so each of these
        selects scans it.
        """
        nightly = self._table("DiaObjectNightly")
        columns = self._columns_of(nightly, self._object_columns())
        in_region = self._read(
            conn,
            sa.select(nightly.c.diaObjectId).where(
                self.pixelization.pixel_ranges_clause(nightly.c[PIXEL_COLUMN], ranges)
            ),
            explain,
        )
        ids = np.union1d(objects["diaObjectId"].to_numpy(dtype=np.int64),
                         in_region["diaObjectId"].to_numpy(dtype=np.int64))
        versions = [
            self._read(conn, sa.select(*columns).where(nightly.c.diaObjectId.in_(chunk)), explain and i == 0)
            for i, chunk in enumerate(id_chunks(ids, conn.dialect.name))
        ]
        versions = [v for v in versions if len(v)]
        if not versions:
            return objects
        return latest_versions(pd.concat([objects, *versions], ignore_index=True))

    def _read_history(
        self, table: str, region: Any, ids: np.ndarray, start_mjd: float, end_mjd: float, explain: bool
    ) -> tuple[pd.DataFrame, bool]:
        """The rows in the window, selected by object ID, or by the field's pixels (``source_select = by-fov``).

        Forced sources are always selected by object ID (the table has no
        pixel column). By the field, the rows of other objects are read too
        (and trimmed by `l1db.api.L1db`).
        """
        sql_table = self._table(table)
        columns = self._columns_of(sql_table, self.tables[table].columns)
        time = sql_table.c.midpointMjdTai
        in_window = sa.and_(time > start_mjd, time < end_mjd)
        with self.engine.connect() as conn:
            if table == "DiaSource" and self.config.source_select == "by-fov":
                ranges = self.pixelization.envelope(region)
                where = sa.and_(self.pixelization.pixel_ranges_clause(sql_table.c[PIXEL_COLUMN], ranges), in_window)
                return self._read(conn, sa.select(*columns).where(where), explain), False
            frames = [
                self._read(conn, sa.select(*columns).where(sql_table.c.diaObjectId.in_(chunk), in_window),
                           explain and i == 0)
                for i, chunk in enumerate(id_chunks(ids, conn.dialect.name))
            ]
        return (frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)), True
