"""Reads of the SQL backends: DiaObjects in a region, DiaSource and DiaForcedSource history.

A mixin of `l1db.sql.l1db_sql.L1dbSql` (which provides ``engine``, ``schema``,
``pixelization``, ``config`` and ``checkSchema``): one of the two places where
the indexing options act (the other is `l1db.sql.schema`).
"""

from __future__ import annotations

import datetime
import logging
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa
from astropy.time import Time

from ..api import latest_versions
from ..constants import AP_OBJECT_COLUMNS, MONTH_DAYS, to_mjd_tai
from ..frames import empty_frame
from ..pixelization import check_region, region_contains
from .chunks import id_chunks
from .client import SqlClient
from .schema import PIXEL_COLUMN

__all__ = ["SqlReads", "published_columns"]

_LOG = logging.getLogger(__name__)


def published_columns(table: sa.Table) -> list[sa.Column]:
    """The published columns of a table: what the reads return on every backend."""
    return [c for c in table.columns if c.name != PIXEL_COLUMN]


class SqlReads(SqlClient):
    """The read half of the SQL L1 API."""

    def _object_columns(self, table: sa.Table) -> list[sa.Column]:
        if self.config.read_full_objects:
            return published_columns(table)
        return [table.c[name] for name in AP_OBJECT_COLUMNS]

    def getDiaObjects(self, region: Any, explain: bool = False) -> pd.DataFrame:
        # The pixel-range query returns a superset of the region, trimmed here.
        check_region(region)
        self.checkSchema()
        ranges = self.pixelization.envelope(region)
        table = self.schema.object_read_table
        where = self.pixelization.pixel_ranges_clause(table.c[PIXEL_COLUMN], ranges)
        if table.name == "DiaObject":
            where = sa.and_(where, table.c.validityEndMjdTai.is_(None))
        with self.engine.connect() as conn:
            objects = self._read(conn, sa.select(*self._object_columns(table)).where(where), explain)
            if "DiaObjectNightly" in self.schema.tables:
                objects = self._with_nightly_versions(conn, objects, ranges, explain)
        inside = region_contains(region, objects["ra"].to_numpy(), objects["dec"].to_numpy())
        return objects[inside].reset_index(drop=True)

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
        columns = self._object_columns(nightly)
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

    def _history(
        self,
        table: sa.Table,
        ids: np.ndarray,
        months: int,
        visit_time: Time | datetime.datetime,
        explain: bool,
        region: Any = None,
    ) -> pd.DataFrame:
        """Rows of ``table`` for ``ids`` in the window of ``months`` before the visit."""
        columns = published_columns(table)
        visit_mjd = to_mjd_tai(visit_time)
        if months == 0 or len(ids) == 0:
            return empty_frame(columns)
        start = visit_mjd - months * MONTH_DAYS
        in_window = sa.and_(table.c.midpointMjdTai > start, table.c.midpointMjdTai < visit_mjd)
        frames = []
        with self.engine.connect() as conn:
            if region is not None:
                ranges = self.pixelization.envelope(region)
                where = sa.and_(self.pixelization.pixel_ranges_clause(table.c[PIXEL_COLUMN], ranges), in_window)
                found = self._read(conn, sa.select(*columns).where(where), explain)
                frames.append(found[np.isin(found["diaObjectId"].to_numpy(dtype=np.int64, na_value=-1), ids)])
            else:
                for i, chunk in enumerate(id_chunks(ids, conn.dialect.name)):
                    where = sa.and_(table.c.diaObjectId.in_(chunk), in_window)
                    frames.append(self._read(conn, sa.select(*columns).where(where), explain and i == 0))
        if len(frames) == 1:
            return frames[0].reset_index(drop=True)
        return pd.concat(frames, ignore_index=True)

    def getDiaSources(
        self,
        region: Any,
        objects: pd.DataFrame | np.ndarray,
        visit_time: Time | datetime.datetime,
        explain: bool = False,
    ) -> pd.DataFrame:
        check_region(region)
        self.checkSchema()
        ids = self._object_ids(objects)
        by_fov = region if self.config.source_select == "by-fov" else None
        return self._history(
            self._table("DiaSource"), ids, self.config.read_sources_months, visit_time, explain, by_fov
        )

    def getDiaForcedSources(
        self,
        region: Any,
        objects: pd.DataFrame | np.ndarray,
        visit_time: Time | datetime.datetime,
        explain: bool = False,
    ) -> pd.DataFrame:
        # Forced sources are always selected by object ID (the table has no pixel column).
        check_region(region)
        self.checkSchema()
        ids = self._object_ids(objects)
        return self._history(
            self._table("DiaForcedSource"), ids, self.config.read_forced_sources_months, visit_time, explain
        )
