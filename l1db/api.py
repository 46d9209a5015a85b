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

Timing: the per-table operations inside a store are timed by the backend and
handed to a sink; `L1db.timing` sets the sink for a block of calls, and a
record reaches it only once the rows it describes are stored.
"""

from __future__ import annotations

import abc
import contextlib
import datetime
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa
from astropy.time import Time

from .config import L1dbConfig, load_config
from .frames import L1dbInputError
from .schema_model import TableDef
from .tables import load_definitions, published_tables
from .timer import Timer, TimingRecord, TimingSink, null_sink

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
        Default sink for the `TimingRecord` of every table operation inside
        the stores (``obj_insert``, ``src_insert``, ...); `timing` replaces it
        for a block of calls. The reads and the whole store are timed by the
        caller.

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
        self.definitions: dict[str, TableDef] = {n: schema_def.tables[n] for n in ("DiaObject", "DiaSource",
                                                                                     "DiaForcedSource")}
        self.tables: dict[str, sa.Table] = published_tables(schema_def)
        self._sink: TimingSink = monitor or null_sink
        self._pending: list[TimingRecord] | None = None
        #: Timing records of the operations a failed store had finished: if its
        #: rows turn out stored after all (the connection was lost during the
        #: commit), they are what the store did.
        self.unconfirmed_records: list[TimingRecord] = []

    # -- timing ------------------------------------------------------------------

    @contextlib.contextmanager
    def timing(self, sink: TimingSink) -> Iterator[None]:
        """Send the timing records of the calls made inside the block to ``sink``."""
        previous, self._sink = self._sink, sink
        try:
            yield
        finally:
            self._sink = previous

    def _timed(self, op: str, rows: int | None = None) -> Timer:
        """A timer whose record waits for the commit when one is pending."""
        return Timer(op, self._pending.append if self._pending is not None else self._sink, rows=rows)

    @contextlib.contextmanager
    def _records_after_store(self) -> Iterator[None]:
        """Hold the timing records of a store until its rows are stored.

        A record handed to the sink says the rows were stored: a store that
        fails, or a process killed before the rows are safe, must leave none.
        """
        self._pending = []
        try:
            yield
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

        With time partitions (PostgreSQL's ``history_partition_days``) and
        ``first_visit_mjd`` (MJD TAI of the first visit), also make the
        partitions of that time and of the partition length after it;
        without it none are made here (every store makes those it needs).

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

    @abc.abstractmethod
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

    @abc.abstractmethod
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
            The field.
        objects : `pandas.DataFrame` or array of `int`
            Objects (with a diaObjectId column) or their IDs.
        visit_time : `astropy.time.Time` or `datetime.datetime`
            The visit's time; the window is (visit - months * 30 days, visit).
        explain : `bool`
            Log the backend's query plan, where it has one.

        Returns
        -------
        sources : `pandas.DataFrame`
            Every DiaSource column; empty (with the columns) when the window is 0.
        """

    @abc.abstractmethod
    def getDiaForcedSources(
        self,
        region: Any,
        objects: pd.DataFrame | np.ndarray,
        visit_time: Time | datetime.datetime,
        explain: bool = False,
    ) -> pd.DataFrame:
        """DiaForcedSource history of ``objects`` within ``read_forced_sources_months``.

        Parameters are as for `getDiaSources`.
        """

    def getDiaFSources(self, *args: Any, **kwargs: Any) -> pd.DataFrame:
        """Name kept from the original API: `getDiaForcedSources`."""
        return self.getDiaForcedSources(*args, **kwargs)

    # -- stores --------------------------------------------------------------------

    @abc.abstractmethod
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

        Every frame is validated before anything is written. After a failure,
        a crash or Ctrl-C the visit is either fully stored (and recorded) or
        not recorded: SQL backends store it in one transaction, Cassandra
        stores it idempotently so that storing it again completes it.

        Parameters
        ----------
        visit_time : `astropy.time.Time` or `datetime.datetime`
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

        Raises
        ------
        l1db.frames.L1dbInputError
            For a frame that does not fit its table; nothing is written.
        """

    def storeDiaObjects(
        self, objects: pd.DataFrame, visit_time: Time | datetime.datetime, explain: bool = False
    ) -> None:
        """Store new DiaObject versions; see `store`."""
        self.store(visit_time, objects, None, None, explain=explain)

    @abc.abstractmethod
    def storeDiaSources(self, sources: pd.DataFrame) -> None:
        """Store DiaSources (appended in bulk: no statement looks rows up, so nothing to explain)."""

    @abc.abstractmethod
    def storeDiaForcedSources(self, forced: pd.DataFrame) -> None:
        """Store DiaForcedSources (appended in bulk, as `storeDiaSources`)."""

    # -- visits --------------------------------------------------------------------

    @abc.abstractmethod
    def saveVisit(
        self, visit_id: int, visit_time: Time | datetime.datetime, tile: int = 0, n_tiles: int = 1
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
    def tableRowCount(self) -> dict[str, int]:
        """Number of rows in each table of the schema."""
