"""The SQL implementation of the L1 API: SQLite, PostgreSQL, MariaDB/MySQL.

`L1dbSql` hides every schema and indexing choice behind the `l1db.api.L1db`
methods. This module and `l1db.sql.schema` are the only places where the
indexing options act.

Validity of DiaObject versions: a stored version starts at the visit time and
is open (``validityEndMjdTai`` NULL) until a newer version of the same object
is stored, which closes it (``baseline`` and ``pix_id_iov``). With
``last_object_table`` the latest versions live in ``DiaObjectLast`` and the
DiaObject table keeps the history without closing validity. With
``dia_object_nightly`` new versions go to ``DiaObjectNightly`` and are applied
to the other tables by `L1dbSql.dailyJob`.

A visit's store is one transaction: after a failure, a crash or Ctrl-C it is
either fully stored or not at all.
"""

from __future__ import annotations

import datetime
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa
from astropy.time import Time

from ..api import AP_OBJECT_COLUMNS, MONTH_DAYS, L1db, latest_versions, to_mjd_tai
from ..config import L1dbConfig
from ..errors import SchemaError
from ..frames import L1dbInputError, check_frame, empty_frame
from ..pixelization import Pixelization, check_region, region_contains
from ..timer import TimingSink
from . import bulk_insert
from .bulk_read import read_frame
from .database import check_connection, make_engine, server_version
from .schema import PIXEL_COLUMN, L1Schema

__all__ = ["L1dbSql", "ID_CHUNKS", "ID_CHUNK"]

_LOG = logging.getLogger(__name__)

#: IDs per ``IN (...)`` list, per backend: within each backend's limits (SQLite
#: binds at most 32,766 variables; MySQL statements must fit max_allowed_packet,
#: 16 MB by default) and large enough that a visit's history is one or a few
#: statements: each statement may cost the server a scan when its planner
#: prefers one, so splitting a visit's IDs finely multiplies the work.
ID_CHUNKS = {"sqlite": 10_000, "mysql": 20_000, "postgresql": 50_000}
#: IDs per list for other backends.
ID_CHUNK = 1000


def _chunks(ids: np.ndarray, dialect: str) -> Iterator[list[int]]:
    """``ids`` in lists of at most the backend's `ID_CHUNKS`."""
    size = ID_CHUNKS.get(dialect, ID_CHUNK)
    for start in range(0, len(ids), size):
        yield ids[start : start + size].tolist()


def _published_columns(table: sa.Table) -> list[sa.Column]:
    """The published columns of a table: what the reads return on every backend."""
    return [c for c in table.columns if c.name != PIXEL_COLUMN]


class L1dbSql(L1db):
    """Client of one L1 database on an SQL backend (parameters as for `L1db`)."""

    def __init__(self, config: str | Path | L1dbConfig, monitor: TimingSink | None = None) -> None:
        super().__init__(config, monitor)
        config = self.config
        self.schema = L1Schema(config, self.schema_def)
        self.pixelization = Pixelization(config.pixelization, config.effective_pixel_level, config.pixel_max_ranges)
        self.engine = make_engine(config.url)
        self._schema_checked = False

    # -- schema --------------------------------------------------------------

    def makeSchema(self, drop: bool = False) -> list[str]:
        """Create the L1 schema (re-create it with ``drop``); return table names.

        Raises
        ------
        l1db.sql.schema.SchemaError
            If toolkit tables exist and ``drop`` is false.
        l1db.sql.database.DatabaseUnreachable
            If the database cannot be reached.
        """
        check_connection(self.engine)
        names = self.schema.create(self.engine, drop=drop)
        self._schema_checked = True
        return names

    def checkSchema(self) -> None:
        """Verify once that the database holds the configured schema.

        Raises
        ------
        l1db.sql.database.DatabaseUnreachable, l1db.sql.schema.SchemaError
        """
        if not self._schema_checked:
            database = self.engine.url.database
            if self.engine.dialect.name == "sqlite" and database and database != ":memory:" \
                    and not database.startswith("file:") and not Path(database).is_file():
                # Connecting would create an empty file: say so without leaving one.
                raise SchemaError(f"{database}: no such SQLite database file; run create_l1_schema first")
            check_connection(self.engine)
            with self.engine.connect() as conn:
                self.schema.check(conn)
            self._schema_checked = True

    def describeSchema(self) -> list[str]:
        inspector = sa.inspect(self.engine)
        lines = []
        for name in self.schema.tables:
            columns = inspector.get_columns(name)
            key = inspector.get_pk_constraint(name).get("constrained_columns") or []
            indexes = [ix["name"] for ix in inspector.get_indexes(name)]
            lines.append(f"{name}: {len(columns)} columns, key ({', '.join(key)})"
                         + (f", indexes {', '.join(indexes)}" if indexes else ""))
        return lines

    def close(self) -> None:
        self.engine.dispose()

    def serverVersion(self) -> tuple[str, str]:
        with self.engine.connect() as conn:
            backend, _, version = server_version(conn).partition(" ")
        return backend, version

    # -- reading ---------------------------------------------------------------

    def _table(self, name: str) -> sa.Table:
        return self.schema.tables[name]

    def _explain(self, conn: sa.Connection, stmt: sa.Executable) -> None:
        sql = str(stmt.compile(conn, compile_kwargs={"literal_binds": True}))
        prefix = "EXPLAIN QUERY PLAN " if conn.dialect.name == "sqlite" else "EXPLAIN "
        rows = conn.exec_driver_sql(prefix + sql).all()
        plan = "\n".join("  " + " | ".join(str(v) for v in row) for row in rows)
        _LOG.info("query plan for %s...:\n%s", sql[:200].replace("\n", " "), plan)

    def _read(self, conn: sa.Connection, stmt: sa.Select, explain: bool) -> pd.DataFrame:
        """Run a select and return a frame typed like the schema's columns."""
        if explain:
            self._explain(conn, stmt)
        return read_frame(conn, stmt)

    def _object_columns(self, table: sa.Table) -> list[sa.Column]:
        if self.config.read_full_objects:
            return _published_columns(table)
        return [table.c[name] for name in AP_OBJECT_COLUMNS]

    def getDiaObjects(self, region: Any, explain: bool = False) -> pd.DataFrame:
        """Latest version of every DiaObject whose position lies in ``region``.

        Parameters
        ----------
        region : `lsst.sphgeom.Region`
            Circle, ConvexPolygon or Box.
        explain : `bool`
            Log the backend's query plan.

        Returns
        -------
        objects : `pandas.DataFrame`
            `AP_OBJECT_COLUMNS` (``read_full_objects = 0``) or every column;
            exactly the objects inside the region (the pixel-range query
            returns a superset, trimmed here).
        """
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
            for i, chunk in enumerate(_chunks(ids, conn.dialect.name))
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
        columns = _published_columns(table)
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
                for i, chunk in enumerate(_chunks(ids, conn.dialect.name)):
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
        """DiaSource history of ``objects`` within ``read_sources_months`` before the visit.

        Parameters
        ----------
        region : `lsst.sphgeom.Region`
            The field; used when ``source_select = by-fov``.
        objects : `pandas.DataFrame` or array of `int`
            Objects (with a diaObjectId column) or their IDs.
        visit_time : `astropy.time.Time` or `datetime.datetime`
            The visit's time; the window is (visit - months * 30 days, visit).
        explain : `bool`
            Log the backend's query plan.

        Returns
        -------
        sources : `pandas.DataFrame`
            Every DiaSource column; empty (with the columns) when the window is 0.
        """
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
        """DiaForcedSource history of ``objects`` within ``read_forced_sources_months``.

        Parameters are as for `getDiaSources`; forced sources are always selected
        by object ID (the table has no pixel column).
        """
        check_region(region)
        self.checkSchema()
        ids = self._object_ids(objects)
        return self._history(
            self._table("DiaForcedSource"), ids, self.config.read_forced_sources_months, visit_time, explain
        )


    # -- storing ---------------------------------------------------------------

    def _with_pixels(self, table_name: str, frame: pd.DataFrame) -> pd.DataFrame:
        missing = [c for c in ("ra", "dec") if c not in frame]
        if missing:
            raise L1dbInputError(f"{table_name}: missing required columns {missing}")
        try:
            ra = frame["ra"].to_numpy(dtype=np.float64)
            dec = frame["dec"].to_numpy(dtype=np.float64)
        except (TypeError, ValueError):
            raise L1dbInputError(f"{table_name}: columns ra, dec must be numbers") from None
        if not (np.isfinite(ra).all() and np.isfinite(dec).all()):
            raise L1dbInputError(f"{table_name}: columns ra, dec must be finite (non-null)")
        return frame.assign(**{PIXEL_COLUMN: self.pixelization.pixel_index(ra, dec)})

    def _prepare_objects(self, objects: pd.DataFrame, visit_mjd: float) -> pd.DataFrame:
        if not isinstance(objects, pd.DataFrame):
            raise L1dbInputError(f"DiaObject: expected a pandas DataFrame, not {type(objects).__name__}")
        objects = objects.drop(columns=[PIXEL_COLUMN], errors="ignore")
        # The store owns validity: a new version starts now and is open.
        objects = objects.assign(validityStartMjdTai=visit_mjd, validityEndMjdTai=np.nan)
        checked = check_frame(self._table("DiaObject"), self._with_pixels("DiaObject", objects))
        if checked["diaObjectId"].duplicated().any():
            raise L1dbInputError("DiaObject: duplicate diaObjectId values in one visit")
        return checked

    def _prepare(self, table_name: str, frame: pd.DataFrame, with_pixels: bool) -> pd.DataFrame:
        if not isinstance(frame, pd.DataFrame):
            raise L1dbInputError(f"{table_name}: expected a pandas DataFrame, not {type(frame).__name__}")
        if with_pixels:
            frame = self._with_pixels(table_name, frame.drop(columns=[PIXEL_COLUMN], errors="ignore"))
        return check_frame(self._table(table_name), frame)

    def _store_objects(self, conn: sa.Connection, objects: pd.DataFrame, visit_mjd: float, explain: bool) -> None:
        ids = objects["diaObjectId"].to_numpy(dtype=np.int64)
        if "DiaObjectNightly" in self.schema.tables:
            with self._timed("obj_nightly_insert", len(objects)):
                bulk_insert.insert_frame(conn, self._table("DiaObjectNightly"), objects)
            return
        self._apply_versions(conn, objects, ids, visit_mjd, explain)

    def _apply_versions(
        self,
        conn: sa.Connection,
        objects: pd.DataFrame,
        ids: np.ndarray,
        close_mjd: float | np.ndarray,
        explain: bool = False,
    ) -> None:
        """Write new DiaObject versions to DiaObject (and DiaObjectLast).

        ``objects`` may hold several versions of one object (the nightly merge),
        with their validity already set; ``close_mjd`` closes earlier versions.
        """
        dia_object = self._table("DiaObject")
        if "DiaObjectLast" in self.schema.tables:
            with self._timed("obj_insert", len(objects)):
                bulk_insert.insert_frame(conn, dia_object, objects)
            last = self._table("DiaObjectLast")
            latest = objects[objects["validityEndMjdTai"].isna()]
            if self.config.object_last_replace:
                with self._timed("obj_last_upsert", len(latest)):
                    bulk_insert.upsert_frame(conn, last, latest)
            else:
                with self._timed("obj_last_delete") as timer:
                    deleted = 0
                    for i, chunk in enumerate(_chunks(np.unique(ids), conn.dialect.name)):
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
                for chunk in _chunks(sel, conn.dialect.name):
                    stmt = (
                        sa.update(dia_object)
                        .where(dia_object.c.diaObjectId.in_(chunk), dia_object.c.validityEndMjdTai.is_(None))
                        .values(validityEndMjdTai=float(mjd))
                    )
                    if explain and updated == 0:
                        self._explain(conn, stmt)
                    updated += conn.execute(stmt).rowcount
            timer.rows = updated
        with self._timed("obj_insert", len(objects)):
            bulk_insert.insert_frame(conn, dia_object, objects)

    def storeDiaSources(self, sources: pd.DataFrame, explain: bool = False) -> None:
        """Store DiaSources (one transaction); ``explain`` as for `store`."""
        prepared = self._prepare("DiaSource", sources, with_pixels=True)
        self.checkSchema()
        with self._records_after_store(), self.engine.begin() as conn, self._timed("src_insert", len(prepared)):
            bulk_insert.insert_frame(conn, self._table("DiaSource"), prepared)

    def storeDiaForcedSources(self, forced: pd.DataFrame, explain: bool = False) -> None:
        """Store DiaForcedSources (one transaction); ``explain`` as for `store`."""
        prepared = self._prepare("DiaForcedSource", forced, with_pixels=False)
        self.checkSchema()
        with self._records_after_store(), self.engine.begin() as conn, self._timed("fsrc_insert", len(prepared)):
            bulk_insert.insert_frame(conn, self._table("DiaForcedSource"), prepared)

    def store(
        self,
        visit_time: Time | datetime.datetime,
        objects: pd.DataFrame | None,
        sources: pd.DataFrame | None = None,
        forced: pd.DataFrame | None = None,
        visit_id: int | None = None,
        tile: int = 0,
        n_tiles: int = 1,
        explain: bool = False,
    ) -> None:
        """Store one visit's new DiaObject versions, DiaSources and DiaForcedSources.

        Everything is written in ONE transaction: after a failure, a crash or
        Ctrl-C the visit is either fully stored or not at all. Every frame is
        validated before anything is written.

        Parameters
        ----------
        visit_time : `astropy.time.Time` or `datetime.datetime`
            Start of validity of the new DiaObject versions.
        objects, sources, forced : `pandas.DataFrame` or `None`
            New rows; `None` when the visit has none of that kind (an empty
            frame is refused as a likely mistake).
        visit_id : `int`, optional
            If given, the visit (and ``tile``) is recorded in L1dbVisit in the
            same transaction, so that a resumed run knows it is done.
        tile : `int`
            Tile number of the visit (0 without tiles).
        n_tiles : `int`
            Number of tiles of the visit, so that a resumed run can tell a
            complete visit from a partly stored one.
        explain : `bool`
            Log the backend's plan of the statements that look rows up (the
            validity update, the DiaObjectLast delete); bulk loads have none.

        Raises
        ------
        l1db.frames.L1dbInputError
            For a frame that does not fit its table; nothing is written.
        """
        visit_mjd = to_mjd_tai(visit_time)
        prepared = {
            "DiaObject": None if objects is None else self._prepare_objects(objects, visit_mjd),
            "DiaSource": None if sources is None else self._prepare("DiaSource", sources, with_pixels=True),
            "DiaForcedSource": None if forced is None else self._prepare("DiaForcedSource", forced, False),
        }
        self.checkSchema()
        with self._records_after_store(), self._timed("store"), self.engine.begin() as conn:
            if prepared["DiaObject"] is not None:
                self._store_objects(conn, prepared["DiaObject"], visit_mjd, explain)
            if prepared["DiaSource"] is not None:
                with self._timed("src_insert", len(prepared["DiaSource"])):
                    bulk_insert.insert_frame(conn, self._table("DiaSource"), prepared["DiaSource"])
            if prepared["DiaForcedSource"] is not None:
                with self._timed("fsrc_insert", len(prepared["DiaForcedSource"])):
                    bulk_insert.insert_frame(conn, self._table("DiaForcedSource"), prepared["DiaForcedSource"])
            if visit_id is not None:
                with self._timed("visit_insert", 1):
                    self._insert_visit(conn, visit_id, visit_mjd, tile, n_tiles)

    # -- visits ----------------------------------------------------------------

    def _insert_visit(self, conn: sa.Connection, visit_id: int, visit_mjd: float, tile: int, n_tiles: int) -> None:
        conn.execute(
            self._table("L1dbVisit").insert(),
            [{"visitId": int(visit_id), "tile": int(tile), "visitTimeMjdTai": visit_mjd, "nTiles": int(n_tiles)}],
        )

    def saveVisit(
        self, visit_id: int, visit_time: Time | datetime.datetime, tile: int = 0, n_tiles: int = 1
    ) -> None:
        """Record that a visit (tile) was processed."""
        self.checkSchema()
        with self.engine.begin() as conn:
            self._insert_visit(conn, visit_id, to_mjd_tai(visit_time), tile, n_tiles)

    def _end_visit(self, last: bool) -> tuple[int, Time] | None:
        self.checkSchema()
        visits = self._table("L1dbVisit")
        order = visits.c.visitId.desc() if last else visits.c.visitId.asc()
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(visits.c.visitId, visits.c.visitTimeMjdTai).order_by(order).limit(1)
            ).first()
        if row is None:
            return None
        return int(row.visitId), Time(float(row.visitTimeMjdTai), format="mjd", scale="tai")

    def lastVisit(self) -> tuple[int, Time] | None:
        """The highest stored visit ID and its time, or `None` for an empty database."""
        return self._end_visit(last=True)

    def firstVisit(self) -> tuple[int, Time] | None:
        """The lowest stored visit ID and its time, or `None` for an empty database."""
        return self._end_visit(last=False)

    def storedTiles(self, visit_id: int) -> tuple[set[int], int]:
        """Tiles of ``visit_id`` already stored, and the visit's number of tiles (0 if none stored)."""
        self.checkSchema()
        visits = self._table("L1dbVisit")
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(visits.c.tile, visits.c.nTiles).where(visits.c.visitId == int(visit_id))
            ).all()
        return {int(r.tile) for r in rows}, max((int(r.nTiles) for r in rows), default=0)

    # -- maintenance -----------------------------------------------------------

    def dailyJob(self) -> int:
        """Merge DiaObjectNightly into the DiaObject tables; return rows merged.

        Does nothing (returns 0) unless ``dia_object_nightly = 1``. One
        transaction: versions are ordered per object, each closed by the next,
        earlier versions in DiaObject closed by the first new one.
        """
        if "DiaObjectNightly" not in self.schema.tables:
            return 0
        self.checkSchema()
        nightly = self._table("DiaObjectNightly")
        with self._records_after_store(), self._timed("daily_merge") as timer, self.engine.begin() as conn:
            rows = self._read(conn, sa.select(*nightly.columns), explain=False)
            timer.rows = len(rows)
            if len(rows) == 0:
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
        return len(rows)

    def tableRowCount(self) -> dict[str, int]:
        """Number of rows in each table of the schema."""
        self.checkSchema()
        counts = {}
        with self.engine.connect() as conn:
            for name, table in self.schema.tables.items():
                counts[name] = int(conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one())
        return counts
