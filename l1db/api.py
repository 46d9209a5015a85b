"""The backend-neutral L1 database API.

`L1db` is what the AP loop, the command-line tools and the tests use: the
method names of the original l1dbproto API (``getDiaObjects``,
``getDiaSources``, ``store``, ...), pandas DataFrames in and out. Two
implementations sit below it:

- `l1db.sql.l1db_sql.L1dbSql`: SQLite, PostgreSQL and MariaDB/MySQL through
  SQLAlchemy, each visit stored in one transaction;
- `l1db.cassandra.l1db_cassandra.L1dbCassandra`: Apache Cassandra, each visit
  stored idempotently (see that module for what that means).

``open_l1db(config)`` (`l1db.factory`) returns the implementation for the
config's URL (``cassandra://...`` or an SQLAlchemy URL), picked from the table
of `l1db.backends`. Nothing above `l1db` knows which one it has.

What is the same on every backend is done here, once: the checks of the
arguments, the history windows and their empty results, the trims of what a
backend reads to the exact region, window and objects, the checks of the
frames a store writes and the sky pixels of their rows. A backend implements
narrow primitives below them (`L1db._read_objects`, `L1db._read_history`,
`L1db._write_visit`, `L1db._append`, `L1db._pixelization_of`).

Timing: a whole store (``store``) and the per-table operations inside it
(``obj_insert``, ``src_insert``, ...) are timed by the backend and handed to a
sink; `L1db.timing` sets the sink for a block of calls, and a record reaches it
only once the rows it describes are stored. The reads are timed by the caller
(the AP loop's ``obj_select``, ``src_select``, ``fsrc_select``).
"""

from __future__ import annotations

import abc
import contextlib
import datetime
import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import sqlalchemy as sa

from .config import L1dbConfig, load_config
from .constants import AP_OBJECT_COLUMNS, MONTH_DAYS, to_mjd_tai
from .frames import L1dbInputError, PreparedRows, PreparedVisit, check_frame, empty_frame
from .pixelization import Pixelization, check_region, region_contains
from .schema_model import TableDef
from .tables import load_definitions, published_definitions, published_tables
from .timer import BackPressure, Timer, TimingRecord, TimingSink, null_sink

if TYPE_CHECKING:
    from astropy.time import Time

__all__ = [
    "L1db",
    "latest_versions",
]

_LOG = logging.getLogger(__name__)

def latest_versions(objects: pd.DataFrame) -> pd.DataFrame:
    """Keep, per diaObjectId, the row with the latest validityStartMjdTai."""
    order = np.lexsort((objects["validityStartMjdTai"].to_numpy(), objects["diaObjectId"].to_numpy()))
    ids = objects["diaObjectId"].to_numpy()[order]
    last = np.ones(len(ids), dtype=bool)
    last[:-1] = ids[1:] != ids[:-1]
    return objects.iloc[order[last]].reset_index(drop=True)


class L1db(abc.ABC):
    """Client of one L1 database, whatever the backend.

    `l1db.factory.open_l1db` returns the implementation for a config's URL.

    Parameters
    ----------
    config : `str`, `pathlib.Path` or `L1dbConfig`
        Configuration file or validated configuration.
    monitor : callable, optional
        Default sink for the `TimingRecord` of every store (``store``) and
        of every table operation inside the stores (``obj_insert``,
        ``src_insert``, ...); `timing` replaces it for a block of calls. The
        reads are timed by the caller.

    Attributes
    ----------
    config : `L1dbConfig`
        The validated configuration.
    definitions : `dict` [`str`, `TableDef`]
        Definitions of DiaObject, DiaSource and DiaForcedSource from the
        schema file: the columns a caller's frames hold.
    tables : `dict` [`str`, `sqlalchemy.Table`]
        The same tables as column models: reads return exactly these columns
        (in this order, with `l1db.frames.column_dtype` dtypes), whatever the
        backend adds to them.
    """

    def __init__(self, config: str | Path | L1dbConfig, monitor: TimingSink | None = None) -> None:
        if not isinstance(config, L1dbConfig):
            config = load_config(config)
        self.config = config
        schema_def = load_definitions(config)
        self.schema_def = schema_def
        self.definitions: dict[str, TableDef] = published_definitions(schema_def)
        self.tables: dict[str, sa.Table] = published_tables(schema_def)
        self._sink: TimingSink = monitor or null_sink
        # The block around a commit and the hand-over of its records (`timing`'s ``committing``).
        self._committing: Callable[[], contextlib.AbstractContextManager[Any]] = contextlib.nullcontext
        self._pending: list[TimingRecord] | None = None
        #: Timing records of the operations a failed store had finished: if its
        #: rows turn out stored after all (the connection was lost during the
        #: commit), they are what the store did.
        self.unconfirmed_records: list[TimingRecord] = []
        #: Waits on the database's back-pressure, added to by the backend's
        #: execution layer (Cassandra's; SQL waits inside its driver, unseen),
        #: and shared out to the timing records by `_timed`.
        self.back_pressure = BackPressure()

    # -- timing ------------------------------------------------------------------

    @contextlib.contextmanager
    def timing(self, sink: TimingSink,
               committing: Callable[[], contextlib.AbstractContextManager[Any]] | None = None) -> Iterator[None]:
        """Send the timing records of the calls made inside the block to ``sink``.

        ``committing`` makes a block entered just before the commit of the
        nightly merge (`dailyJob`) and left once its records are handed to
        ``sink``: the caller's way to keep the commit and the records
        together (ap_proto defers stop signals in it, so that a merge is
        logged if and only if it is committed).
        """
        previous = self._sink, self._committing
        self._sink, self._committing = sink, committing or contextlib.nullcontext
        try:
            yield
        finally:
            self._sink, self._committing = previous

    def _timed(self, op: str, rows: int | None = None) -> Timer:
        """A timer whose record waits for the commit when one is pending."""
        return Timer(op, self._pending.append if self._pending is not None else self._sink, rows=rows,
                     pressure=self.back_pressure)

    @contextlib.contextmanager
    def _records_after_store(self) -> Iterator[Callable[[], None]]:
        """Hold the timing records of a store until its rows are stored.

        A record handed to the sink says the rows were stored: a store that
        fails, or a process killed before the rows are safe, must leave none.
        Yields a function to call just before the commit: it enters
        `timing`'s ``committing`` block, left once the records are handed over.
        """
        self._pending = []
        with contextlib.ExitStack() as committing:
            try:
                yield lambda: committing.enter_context(self._committing())
            except BaseException:
                self.unconfirmed_records, self._pending = self._pending, None
                raise
            records, self._pending = self._pending, None
            for record in records:
                self._sink(record)

    # -- input checks shared by the backends ---------------------------------------

    @staticmethod
    def _object_ids(objects: pd.DataFrame | np.ndarray | Any) -> np.ndarray:
        """Sorted unique diaObjectIds of a frame with that column, or of an array."""
        if isinstance(objects, pd.DataFrame):
            if "diaObjectId" not in objects:
                raise L1dbInputError("objects frame has no diaObjectId column")
            ids = objects["diaObjectId"].to_numpy()
        else:
            ids = np.asarray(objects)
        if ids.size and not np.issubdtype(ids.dtype, np.integer):
            raise L1dbInputError(f"diaObjectIds must be integers, not {ids.dtype}")
        return np.unique(ids.astype(np.int64))

    @staticmethod
    def _positions(table: str, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """The ``ra``, ``dec`` columns of ``frame`` as float64; every backend places rows on the sky by them.

        Raises
        ------
        L1dbInputError
            If a column is missing, not numeric, or not finite (NULL included).
        """
        missing = [c for c in ("ra", "dec") if c not in frame]
        if missing:
            raise L1dbInputError(f"{table}: missing required columns {missing}")
        try:
            ra = frame["ra"].to_numpy(dtype=np.float64, na_value=np.nan)
            dec = frame["dec"].to_numpy(dtype=np.float64, na_value=np.nan)
        except (TypeError, ValueError):
            raise L1dbInputError(f"{table}: columns ra, dec must be numbers") from None
        if not (np.isfinite(ra).all() and np.isfinite(dec).all()):
            raise L1dbInputError(f"{table}: columns ra, dec must be finite (non-null): "
                                 "they place each row in its sky pixel")
        return ra, dec

    #: Columns a backend adds to the published tables and sets itself (e.g. SQL's
    #: sky-pixel column): a stored frame that holds one has it dropped, not refused.
    _backend_columns: frozenset[str] = frozenset()

    @abc.abstractmethod
    def _pixelization_of(self, table: str) -> Pixelization | None:
        """The pixelization the backend places the rows of ``table`` on the sky by, or `None`.

        The stores check the positions of the rows of such a table (every
        row needs one) and compute their pixels once (`PreparedRows.pixels`).
        """

    def _prepare_rows(self, table: str, frame: pd.DataFrame, **set_by_store: Any) -> PreparedRows:
        """Check the rows of a store once, before anything is written, and place them on the sky.

        ``set_by_store`` holds the columns the store sets itself (DiaObject's
        validity), replacing the caller's.

        Raises
        ------
        L1dbInputError
            If ``frame`` is not a DataFrame, a position the backend needs is
            missing or not finite, or `check_frame` refuses it.
        """
        if not isinstance(frame, pd.DataFrame):
            raise L1dbInputError(f"{table}: expected a pandas DataFrame, not {type(frame).__name__}")
        own = [c for c in frame.columns if c in self._backend_columns]
        if own:
            frame = frame.drop(columns=own)
        if set_by_store:
            frame = frame.assign(**set_by_store)
        pixelization = self._pixelization_of(table)
        if pixelization is None:
            return PreparedRows(table, check_frame(self.tables[table], frame))
        ra, dec = self._positions(table, frame)
        checked = check_frame(self.tables[table], frame)
        return PreparedRows(table, checked, pixelization.pixel_index(ra, dec))

    def _prepare_objects(self, objects: pd.DataFrame, visit_mjd: float) -> PreparedRows:
        """`_prepare_rows` for new DiaObject versions of a visit at ``visit_mjd``.

        The store owns validity: a new version starts at the visit and is open.
        A visit holds one version per object.
        """
        if not isinstance(objects, pd.DataFrame):
            raise L1dbInputError(f"DiaObject: expected a pandas DataFrame, not {type(objects).__name__}")
        rows = self._prepare_rows("DiaObject", objects, validityStartMjdTai=visit_mjd, validityEndMjdTai=np.nan)
        if rows.frame["diaObjectId"].duplicated().any():
            raise L1dbInputError("DiaObject: duplicate diaObjectId values in one visit")
        return rows

    def _prepare_visit(
        self,
        visit_time: Time | datetime.datetime | float,
        objects: pd.DataFrame | None,
        sources: pd.DataFrame | None,
        forced: pd.DataFrame | None,
        visit_id: int | None,
        tile: int,
        n_tiles: int,
        out_of_order: bool = False,
    ) -> PreparedVisit:
        """Every frame of a `store` checked and placed, before anything is written."""
        visit_mjd = to_mjd_tai(visit_time)
        return PreparedVisit(
            visit_mjd,
            None if objects is None else self._prepare_objects(objects, visit_mjd),
            None if sources is None else self._prepare_rows("DiaSource", sources),
            None if forced is None else self._prepare_rows("DiaForcedSource", forced),
            visit_id,
            tile,
            n_tiles,
            out_of_order,
        )

    def _object_columns(self) -> list[sa.Column]:
        """The published DiaObject columns that `getDiaObjects` returns (see ``read_full_objects``)."""
        table = self.tables["DiaObject"]
        if self.config.read_full_objects:
            return list(table.columns)
        return [table.c[name] for name in AP_OBJECT_COLUMNS]

    # -- life cycle ----------------------------------------------------------------

    @abc.abstractmethod
    def close(self) -> None:
        """Close the connections of this client."""

    def __enter__(self) -> L1db:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @abc.abstractmethod
    def serverVersion(self) -> tuple[str, str]:
        """Backend name and server version, e.g. ``("postgresql", "15.18")``."""

    def restart_seconds(self) -> float | None:
        """Seconds the database's servers took to start last time, where the backend can tell; else `None`.

        What a client retrying through a server restart must outlast. Only
        local Cassandra nodes of the default run dir tell it
        (`l1db.cassandra.start_times`); the SQL servers restart in a few
        seconds and are not asked.
        """
        return None

    @abc.abstractmethod
    def warm_up(self) -> None:
        """Compile (or load from numba's cache) every kernel this backend's reads and stores run.

        Call it once before the first timed operation (the AP loop does),
        so that no visit's timing includes a kernel's compilation. It needs
        no database and changes nothing.
        """

    # -- schema --------------------------------------------------------------------

    @abc.abstractmethod
    def makeSchema(self, drop: bool = False, first_visit_mjd: float | None = None) -> list[str]:
        """Create the L1 schema (re-create it with ``drop``); return table names.

        With time partitions (PostgreSQL's ``history_partition_days``,
        Cassandra's ``time_partition_tables``) and ``first_visit_mjd`` (MJD
        TAI of the first visit), also make the partitions of that time and of
        the partition length after it; without it none are made here (every
        store makes those it needs).

        Raises
        ------
        l1db.errors.SchemaError
            If the schema exists and ``drop`` is false; nothing is touched.
        l1db.errors.DatabaseUnreachable
            If the database cannot be reached.
        """

    @abc.abstractmethod
    def describeSchema(self) -> list[str]:
        """One line per table of the schema: name, columns, keys, indexes (for ``create_l1_schema``)."""

    @abc.abstractmethod
    def checkSchema(self) -> None:
        """Verify once that the database holds the configured schema.

        Raises
        ------
        l1db.errors.DatabaseUnreachable, l1db.errors.SchemaError
        """

    # -- reads ---------------------------------------------------------------------

    def getDiaObjects(self, region: Any, explain: bool = False) -> pd.DataFrame:
        """Latest version of every DiaObject whose position lies in ``region``.

        Parameters
        ----------
        region : `lsst.sphgeom.Region`
            Circle, ConvexPolygon or Box.
        explain : `bool`
            Log the backend's query plan, where it has one.

        Returns
        -------
        objects : `pandas.DataFrame`
            `AP_OBJECT_COLUMNS` (``read_full_objects = 0``) or every column;
            exactly the objects inside the region.
        """
        check_region(region)
        self.checkSchema()
        objects = self._read_objects(region, explain)
        inside = region_contains(region, objects["ra"].to_numpy(), objects["dec"].to_numpy())
        return objects[inside].reset_index(drop=True)

    def getDiaSources(
        self,
        region: Any,
        objects: pd.DataFrame | np.ndarray,
        visit_time: Time | datetime.datetime | float,
        explain: bool = False,
    ) -> pd.DataFrame:
        """DiaSource history of ``objects`` within ``read_sources_months`` before the visit.

        Parameters
        ----------
        region : `lsst.sphgeom.Region`
            The field.
        objects : `pandas.DataFrame` or array of `int`
            Objects (with a diaObjectId column) or their IDs.
        visit_time : `astropy.time.Time`, `datetime.datetime` or `float`
            The visit's time; the window is (visit - months * 30 days, visit).
        explain : `bool`
            Log the backend's query plan, where it has one.

        Returns
        -------
        sources : `pandas.DataFrame`
            Every DiaSource column; empty (with the columns) when the window is 0.
        """
        return self._history("DiaSource", region, objects, self.config.read_sources_months, visit_time, explain)

    def getDiaForcedSources(
        self,
        region: Any,
        objects: pd.DataFrame | np.ndarray,
        visit_time: Time | datetime.datetime | float,
        explain: bool = False,
    ) -> pd.DataFrame:
        """DiaForcedSource history of ``objects`` within ``read_forced_sources_months``.

        Parameters are as for `getDiaSources`.
        """
        return self._history(
            "DiaForcedSource", region, objects, self.config.read_forced_sources_months, visit_time, explain
        )

    def _history(
        self,
        table: str,
        region: Any,
        objects: pd.DataFrame | np.ndarray,
        months: int,
        visit_time: Time | datetime.datetime | float,
        explain: bool,
    ) -> pd.DataFrame:
        """Rows of ``table`` for ``objects`` in the window of ``months`` before the visit, exactly."""
        check_region(region)
        self.checkSchema()
        ids = self._object_ids(objects)
        visit_mjd = to_mjd_tai(visit_time)
        if months == 0 or len(ids) == 0:
            return empty_frame(list(self.tables[table].columns))
        start = visit_mjd - months * MONTH_DAYS
        found, by_id = self._read_history(table, region, ids, start, visit_mjd, explain)
        mjd = found["midpointMjdTai"].to_numpy(dtype=np.float64, na_value=np.nan)
        keep = (mjd > start) & (mjd < visit_mjd)
        if not by_id:
            keep &= np.isin(found["diaObjectId"].to_numpy(dtype=np.int64, na_value=-1), ids)
        if not keep.all():
            found = found[keep]
        return found.reset_index(drop=True)

    @abc.abstractmethod
    def _read_objects(self, region: Any, explain: bool) -> pd.DataFrame:
        """The latest version of every DiaObject that may lie in ``region`` (`getDiaObjects` trims them to it).

        Returns a frame of `_object_columns` with their dtypes; may hold
        objects outside the region (those of the pixels that cover it).
        """

    @abc.abstractmethod
    def _read_history(
        self, table: str, region: Any, ids: np.ndarray, start_mjd: float, end_mjd: float, explain: bool
    ) -> tuple[pd.DataFrame, bool]:
        """Rows of the history ``table`` of the objects ``ids`` between ``start_mjd`` and ``end_mjd``, or more.

        ``ids`` are sorted, unique and not empty; ``region`` is the field
        (a backend may select by it instead of by ID).

        Returns
        -------
        rows : `pandas.DataFrame`
            The published columns of ``table`` with their dtypes; may hold
            rows outside the window (exclusive at both ends) and, unless
            ``by_id``, rows of other objects: `getDiaSources` and
            `getDiaForcedSources` trim them away.
        by_id : `bool`
            Whether the rows were selected by object ID (every row is of one
            of ``ids``), which spares the trim by ID.
        """

    def getDiaFSources(self, *args: Any, **kwargs: Any) -> pd.DataFrame:
        """Name kept from the original API: `getDiaForcedSources`."""
        return self.getDiaForcedSources(*args, **kwargs)

    # -- stores --------------------------------------------------------------------

    def store(
        self,
        visit_time: Time | datetime.datetime | float,
        objects: pd.DataFrame | None,
        sources: pd.DataFrame | None = None,
        forced: pd.DataFrame | None = None,
        visit_id: int | None = None,
        tile: int = 0,
        n_tiles: int = 1,
        explain: bool = False,
        out_of_order: bool = False,
    ) -> None:
        """Store one visit's new DiaObject versions, DiaSources and DiaForcedSources.

        Every frame is validated before anything is written. After a failure,
        a crash or Ctrl-C the visit is either fully stored (and recorded) or
        not recorded: SQL backends store it in one transaction, Cassandra
        stores it idempotently so that storing it again completes it.

        Parameters
        ----------
        visit_time : `astropy.time.Time`, `datetime.datetime` or `float`
            Start of validity of the new DiaObject versions.
        objects, sources, forced : `pandas.DataFrame` or `None`
            New rows; `None` when the visit has none of that kind (an empty
            frame is refused as a likely mistake).
        visit_id : `int`, optional
            If given, the visit (and ``tile``) is recorded in L1dbVisit once
            its rows are stored, so that a resumed run knows it is done.
        tile : `int`
            Tile number of the visit (0 without tiles).
        n_tiles : `int`
            Number of tiles of the visit, so that a resumed run can tell a
            complete visit from a partly stored one.
        explain : `bool`
            Log the backend's plan of the statements that look rows up (the
            versions a new DiaObject version replaces).
        out_of_order : `bool`
            The store may come after the store of a later visit (overlapping
            visits of an open-loop run, or a visit an earlier run left
            incomplete): the latest-version table and the validity intervals
            then keep the latest version whatever the order of the stores (on
            SQL at the cost of a conditional upsert, or a look-up of later
            versions; Cassandra's writes are ordered by their timestamps
            anyway).

        Raises
        ------
        l1db.frames.L1dbInputError
            For a frame that does not fit its table; nothing is written.
        """
        visit = self._prepare_visit(visit_time, objects, sources, forced, visit_id, tile, n_tiles, out_of_order)
        self.checkSchema()
        with self._records_after_store(), self._timed("store"):
            self._write_visit(visit, explain)

    @abc.abstractmethod
    def _write_visit(self, visit: PreparedVisit, explain: bool) -> None:
        """Write a checked visit: all of it, in the backend's way (one transaction, or idempotently).

        Called inside the ``store`` timing, with the timing records held until
        it returns (`_records_after_store`); it times each table operation
        (``obj_insert``, `_APPEND_OPS`, ``visit_insert``, ...) with `_timed`.
        """

    #: Timing operation of the append of each history table.
    _APPEND_OPS = {"DiaSource": "src_insert", "DiaForcedSource": "fsrc_insert"}

    def _timed_append(self, rows: PreparedRows) -> Timer:
        """The timer of the append of ``rows`` to their history table (``src_insert``, ``fsrc_insert``)."""
        return self._timed(self._APPEND_OPS[rows.table], len(rows))

    @abc.abstractmethod
    def _append(self, rows: PreparedRows) -> None:
        """Store checked DiaSources or DiaForcedSources alone (`storeDiaSources`), timed by `_timed_append`."""

    def storeDiaObjects(
        self, objects: pd.DataFrame, visit_time: Time | datetime.datetime | float, explain: bool = False
    ) -> None:
        """Store new DiaObject versions; see `store`."""
        self.store(visit_time, objects, None, None, explain=explain)

    def storeDiaSources(self, sources: pd.DataFrame) -> None:
        """Store DiaSources (appended in bulk: no statement looks rows up, so nothing to explain)."""
        self._store_history(self._prepare_rows("DiaSource", sources))

    def storeDiaForcedSources(self, forced: pd.DataFrame) -> None:
        """Store DiaForcedSources (appended in bulk, as `storeDiaSources`)."""
        self._store_history(self._prepare_rows("DiaForcedSource", forced))

    def _store_history(self, rows: PreparedRows) -> None:
        """`storeDiaSources` and `storeDiaForcedSources` once their rows are checked."""
        self.checkSchema()
        with self._records_after_store():
            self._append(rows)

    # -- visits --------------------------------------------------------------------

    @abc.abstractmethod
    def saveVisit(
        self, visit_id: int, visit_time: Time | datetime.datetime | float, tile: int = 0, n_tiles: int = 1
    ) -> None:
        """Record that a visit (tile) was processed."""

    def lastVisit(self) -> tuple[int, Time] | None:
        """The highest stored visit ID and its time, or `None` for an empty database."""
        return self._end_visit(last=True)

    def firstVisit(self) -> tuple[int, Time] | None:
        """The lowest stored visit ID and its time (as stored, to the bit), or `None` for an empty database."""
        return self._end_visit(last=False)

    @abc.abstractmethod
    def _end_visit(self, last: bool) -> tuple[int, Time] | None:
        """The last (or first) stored visit ID and its time, or `None` for an empty database."""

    @abc.abstractmethod
    def storedTiles(self, visit_id: int) -> tuple[set[int], int]:
        """Tiles of ``visit_id`` already stored, and the visit's number of tiles (0 if none stored)."""

    # -- maintenance -----------------------------------------------------------------

    @abc.abstractmethod
    def dailyJob(self) -> int:
        """The once-a-day maintenance of the backend; return the rows it touched."""

    @abc.abstractmethod
    def tableRowCount(self, exact: bool = True) -> dict[str, int]:
        """Number of rows in each table of the schema, counted or estimated.

        Parameters
        ----------
        exact : `bool`
            `True`: every row counted (a full scan of each table, slow on a
            large database; what a saved state is checked with). `False`: the
            server's estimates, without a full scan (what a long run's periodic
            counts use): PostgreSQL's ``pg_class.reltuples`` scaled to the
            table's current size, MariaDB's ``information_schema.TABLES.TABLE_ROWS``,
            Cassandra's sampled partitions (`l1db.cassandra.counts`); SQLite
            counts exactly either way.

        Returns
        -------
        counts : `dict` [`str`, `int`]
            Rows by table name.
        """
