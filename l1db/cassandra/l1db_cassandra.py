"""The Apache Cassandra implementation of the L1 API.

The layout is production's (`l1db.cassandra.schema`): latest DiaObject
versions partitioned by sky pixel, the history tables by (sky pixel, time
partition). A read queries every partition its region (and window) touches,
concurrently, and trims the rows to the exact region, object IDs and window.

Stores: Cassandra has no multi-partition transactions, so a visit cannot be
atomic as on SQL. It is made safe instead, in three steps:

1. the visit's DiaObject versions, DiaSources and DiaForcedSources are written
   (prepared statements in single-partition batches, sent concurrently, never
   a NULL: an unset column is left unset, since a NULL is a tombstone);
2. once every row is acknowledged at the write consistency, the visit (tile)
   is recorded in ``L1dbVisit``: from then on it counts as stored;
3. the new versions are applied to ``DiaObjectLast`` (an object that moved to
   another sky pixel has its old row deleted, through
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
"""

from __future__ import annotations

import datetime
import logging
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa
from astropy.time import Time
from cassandra import InvalidRequest
from cassandra.query import UNSET_VALUE, BatchStatement, BatchType, PreparedStatement, SimpleStatement

from ..api import AP_OBJECT_COLUMNS, MONTH_DAYS, L1db, to_mjd_tai
from ..config import L1dbConfig, parse_cassandra_url
from ..errors import SchemaError
from ..frames import L1dbInputError, check_frame, column_kind, empty_frame
from ..pixelization import check_region, region_contains
from ..timer import TimingSink
from .partitions import PART_COLUMN, TIME_PART_COLUMN, Partitioning
from .schema import SCHEMA_OPTIONS, TABLES, quote, schema_ddl
from .session import columns_of, connect, consistency, execute_concurrently, typed_frame

__all__ = ["L1dbCassandra", "RECOVERY_ROWS", "MAX_BATCH_ROWS"]

_LOG = logging.getLogger(__name__)

#: Newest L1dbVisit rows a client looks through for visits stored but not yet
#: applied to DiaObjectLast (a run stops at its first failure, so only the
#: tiles of its last visit can be left so).
RECOVERY_ROWS = 5000

#: Largest number of statements in one batch (Cassandra refuses more than 65,535).
MAX_BATCH_ROWS = 5000

#: Bytes a value of each column kind takes on the wire (strings: a guess), for
#: sizing batches.
_KIND_BYTES = {"bool": 5, "int8": 5, "int16": 6, "int32": 8, "int64": 12, "float32": 8, "float64": 12, "str": 16}

# Rows of DiaObjectLastToPartition (one partition each) sent in one request.
_MAPPING_GROUP = 100

# Microseconds per day: DiaObjectLast writes are timestamped with the validity
# start in microseconds of MJD, so that the newest version always wins.
_US_PER_DAY = 86_400_000_000


def _version_timestamps(mjd: np.ndarray) -> np.ndarray:
    return np.round(np.asarray(mjd, dtype=np.float64) * _US_PER_DAY).astype(np.int64)


def _bind_values(frame: pd.DataFrame) -> list[np.ndarray]:
    """One object array per column, NULLs replaced by ``UNSET_VALUE`` (never a tombstone)."""
    arrays = []
    for name in frame.columns:
        series = frame[name]
        if isinstance(series.dtype, np.dtype) and series.dtype.kind == "f":
            values = series.to_numpy()
            nulls = np.isnan(values)
            array = values.astype(object)
            if nulls.any():
                array[nulls] = UNSET_VALUE
        else:
            array = series.to_numpy(dtype=object, na_value=UNSET_VALUE)
        arrays.append(array)
    return arrays


class L1dbCassandra(L1db):
    """Client of one L1 database on Apache Cassandra (parameters as for `L1db`).

    The URL is ``cassandra://HOST[:PORT][,HOST...]/KEYSPACE``; the
    ``[cassandra]`` section sets replication, consistency, partitioning,
    concurrency, batch size and timeouts.
    """

    def __init__(self, config: str | Path | L1dbConfig, monitor: TimingSink | None = None) -> None:
        super().__init__(config, monitor)
        self.url = parse_cassandra_url(self.config.url)
        self.keyspace = self.url.keyspace
        self.options = dict(self.config.cassandra)
        self.partitioning = Partitioning(self.options)
        self._cluster, self._session, self._plain = connect(self.url, self.options)
        self._read_cl = consistency(self.options["read_consistency"])
        self._write_cl = consistency(self.options["write_consistency"])
        self._prepared: dict[str, PreparedStatement] = {}
        self._schema_checked = False
        self._needs_recovery = True

    # -- small helpers ---------------------------------------------------------------

    def _name(self, table: str) -> str:
        return f"{quote(self.keyspace)}.{quote(table)}"

    def _prepare(self, key: str, cql: str, write: bool) -> PreparedStatement:
        statement = self._prepared.get(key)
        if statement is None:
            statement = self._session.prepare(cql)
            statement.consistency_level = self._write_cl if write else self._read_cl
            self._prepared[key] = statement
        return statement

    def _run(self, statements: Sequence[tuple[Any, Any]] | Iterator[tuple[Any, Any]], write: bool) -> list[Any]:
        timeout = self.options["write_timeout"] if write else self.options["read_timeout"]
        return execute_concurrently(self._session, statements, self.options["read_concurrency"], timeout)

    def _simple(self, cql: str, parameters: Any = None, write: bool = False, timeout: float | None = None) -> Any:
        """Run one small statement (schema, visits, counts) on the plain session."""
        statement = SimpleStatement(cql, consistency_level=self._write_cl if write else self._read_cl)
        default = self.options["write_timeout"] if write else self.options["read_timeout"]
        return self._plain.execute(statement, parameters, timeout=timeout or default)

    @staticmethod
    def _rows(result: Any) -> dict[str, list[Any]]:
        """The columns of a small result of the plain session, by name."""
        rows = list(result)
        names = result.column_names or []
        return {name: [row[i] for row in rows] for i, name in enumerate(names)}

    # -- life cycle ---------------------------------------------------------------------

    def close(self) -> None:
        self._cluster.shutdown()

    def serverVersion(self) -> tuple[str, str]:
        rows = self._rows(self._plain.execute("SELECT release_version FROM system.local"))
        return "cassandra", str(rows["release_version"][0])

    # -- schema --------------------------------------------------------------------------

    def _keyspace_tables(self) -> list[str] | None:
        """Tables of the keyspace, or `None` if it does not exist."""
        rows = self._rows(self._simple(
            "SELECT keyspace_name FROM system_schema.keyspaces WHERE keyspace_name = %s", [self.keyspace]))
        if not len(rows.get("keyspace_name", [])):
            return None
        rows = self._rows(self._simple(
            "SELECT table_name FROM system_schema.tables WHERE keyspace_name = %s", [self.keyspace]))
        return sorted(str(n) for n in rows.get("table_name", []))

    def makeSchema(self, drop: bool = False) -> list[str]:
        existing = self._keyspace_tables()
        if existing and not drop:
            present = [t for t in TABLES if t in existing] or existing
            raise SchemaError(f"tables already exist in keyspace {self.keyspace}: {', '.join(present)}; "
                              "use --drop to re-create them")
        ddl_timeout = 120.0
        if existing is not None and drop:
            self._simple(f"DROP KEYSPACE {quote(self.keyspace)}", write=True, timeout=ddl_timeout)
            _LOG.info("dropped keyspace %s", self.keyspace)
            existing = None
        if existing is None:
            self._simple(
                f"CREATE KEYSPACE {quote(self.keyspace)} WITH replication = "
                f"{{'class': 'SimpleStrategy', 'replication_factor': {int(self.options['replication_factor'])}}}",
                write=True, timeout=ddl_timeout)
        for ddl in schema_ddl(self.keyspace, self.schema_def):
            self._simple(ddl, write=True, timeout=ddl_timeout)
        for name, value in self._schema_options().items():
            self._simple(f"INSERT INTO {self._name('L1dbMetadata')} (name, value) VALUES (%s, %s)", (name, value),
                         write=True)
        self._prepared.clear()
        self._schema_checked = True
        self._needs_recovery = False
        return list(TABLES)

    def describeSchema(self) -> list[str]:
        lines = []
        for table in TABLES:
            rows = self._rows(self._simple(
                "SELECT column_name, kind, position FROM system_schema.columns "
                "WHERE keyspace_name = %s AND table_name = %s", [self.keyspace, table]))
            names = [str(n) for n in rows["column_name"]]
            kinds = [str(k) for k in rows["kind"]]
            positions = np.asarray(rows["position"], dtype=np.int64)

            def key(kind: str) -> list[str]:
                picked = [(p, n) for n, k, p in zip(names, kinds, positions) if k == kind]
                return [n for _, n in sorted(picked)]

            clustering = key("clustering")
            lines.append(f"{table}: {len(names)} columns, partition key ({', '.join(key('partition_key'))})"
                         + (f", clustering ({', '.join(clustering)})" if clustering else ""))
        return lines

    def _schema_options(self) -> dict[str, str]:
        return {name: str(self.options[name]) for name in SCHEMA_OPTIONS}

    def checkSchema(self) -> None:
        if not self._schema_checked:
            try:
                rows = self._rows(self._simple(f"SELECT name, value FROM {self._name('L1dbMetadata')}"))
            except InvalidRequest:
                raise SchemaError(f"the L1 schema does not exist in keyspace {self.keyspace}; "
                                  "run create_l1_schema first") from None
            stored = {str(n): str(v) for n, v in zip(rows.get("name", []), rows.get("value", []))}
            diffs = [f"{k}: database {stored.get(k)!r}, config {v!r}"
                     for k, v in self._schema_options().items() if stored.get(k) != v]
            if diffs:
                raise SchemaError("the schema was created with other options (" + "; ".join(diffs)
                                  + "); re-create it with create_l1_schema --drop or fix the config")
            missing = [t for t in TABLES if t not in (self._keyspace_tables() or [])]
            if missing:
                raise SchemaError(f"the L1 schema is incomplete (missing tables: {', '.join(missing)}); "
                                  "re-create it with create_l1_schema --drop")
            self._schema_checked = True
        if self._needs_recovery:
            self._apply_unapplied_visits()
            self._needs_recovery = False

    # -- reads ---------------------------------------------------------------------------

    def _select(self, table: str, columns: Sequence[sa.Column], by_time: bool) -> PreparedStatement:
        names = ", ".join(quote(c.name) for c in columns)
        where = f"{quote(PART_COLUMN)} = ?" + (f" AND {quote(TIME_PART_COLUMN)} IN ?" if by_time else "")
        key = f"select:{table}:{names}:{by_time}"
        return self._prepare(key, f"SELECT {names} FROM {self._name(table)} WHERE {where}", write=False)

    def _read_partitions(self, table: str, columns: Sequence[sa.Column], pixels: np.ndarray,
                         time_parts: list[int] | None) -> pd.DataFrame:
        """Every row of ``table`` in the partitions (pixel x time partitions), typed."""
        statement = self._select(table, columns, time_parts is not None)
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
        objects = self._read_partitions("DiaObjectLast", self._object_columns(), pixels, None)
        inside = region_contains(region, objects["ra"].to_numpy(), objects["dec"].to_numpy())
        return objects[inside].reset_index(drop=True)

    def _history(self, table: str, region: Any, ids: np.ndarray, months: int,
                 visit_time: Time | datetime.datetime) -> pd.DataFrame:
        columns = list(self.tables[table].columns)
        visit_mjd = to_mjd_tai(visit_time)
        if months == 0 or len(ids) == 0:
            return empty_frame(columns)
        start = visit_mjd - months * MONTH_DAYS
        pixels = self.partitioning.region_pixels(region)
        found = self._read_partitions(table, columns, pixels, self.partitioning.window_partitions(start, visit_mjd))
        mjd = found["midpointMjdTai"].to_numpy(dtype=np.float64, na_value=np.nan)
        keep = (mjd > start) & (mjd < visit_mjd)
        keep &= np.isin(found["diaObjectId"].to_numpy(dtype=np.int64, na_value=-1), ids)
        return found[keep].reset_index(drop=True)

    def getDiaSources(self, region: Any, objects: pd.DataFrame | np.ndarray,
                      visit_time: Time | datetime.datetime, explain: bool = False) -> pd.DataFrame:
        check_region(region)
        self.checkSchema()
        return self._history("DiaSource", region, self._object_ids(objects), self.config.read_sources_months,
                             visit_time)

    def getDiaForcedSources(self, region: Any, objects: pd.DataFrame | np.ndarray,
                            visit_time: Time | datetime.datetime, explain: bool = False) -> pd.DataFrame:
        check_region(region)
        self.checkSchema()
        return self._history("DiaForcedSource", region, self._object_ids(objects),
                             self.config.read_forced_sources_months, visit_time)

    # -- checking what is stored ------------------------------------------------------------

    def _positions(self, table: str, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
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
                                 "they place each row in its spatial partition")
        return ra, dec

    def _checked(self, table: str, frame: pd.DataFrame | None) -> pd.DataFrame | None:
        if frame is None:
            return None
        if not isinstance(frame, pd.DataFrame):
            raise L1dbInputError(f"{table}: expected a pandas DataFrame, not {type(frame).__name__}")
        self._positions(table, frame)
        return check_frame(self.tables[table], frame)

    def _checked_objects(self, objects: pd.DataFrame | None, visit_mjd: float) -> pd.DataFrame | None:
        if objects is None:
            return None
        if not isinstance(objects, pd.DataFrame):
            raise L1dbInputError(f"DiaObject: expected a pandas DataFrame, not {type(objects).__name__}")
        # The store owns validity: a new version starts now and is open.
        objects = objects.assign(validityStartMjdTai=visit_mjd, validityEndMjdTai=np.nan)
        checked = self._checked("DiaObject", objects)
        if checked["diaObjectId"].duplicated().any():
            raise L1dbInputError("DiaObject: duplicate diaObjectId values in one visit")
        return checked

    # -- writing ------------------------------------------------------------------------------

    def _insert(self, table: str, columns: Sequence[str], timestamped: bool = False) -> PreparedStatement:
        names = ", ".join(quote(c) for c in columns)
        marks = ", ".join("?" for _ in columns)
        using = " USING TIMESTAMP ?" if timestamped else ""
        key = f"insert:{table}:{names}:{timestamped}"
        return self._prepare(key, f"INSERT INTO {self._name(table)} ({names}) VALUES ({marks}){using}", write=True)

    def _rows_per_batch(self, frame: pd.DataFrame) -> int:
        table_columns = {c.name: c for t in self.tables.values() for c in t.columns}
        row_bytes = 32 + sum(_KIND_BYTES.get(column_kind(table_columns[n]), 12) if n in table_columns else 12
                             for n in frame.columns)
        return int(max(1, min(MAX_BATCH_ROWS, self.options["batch_max_kib"] * 1024 // row_bytes)))

    def _batches(self, statement: PreparedStatement, frame: pd.DataFrame, partition: Sequence[np.ndarray],
                 extra: Sequence[np.ndarray] = (), per_batch: int | None = None,
                 ) -> Iterator[tuple[BatchStatement, None]]:
        """Batches of the rows of ``frame``, one partition each; ``partition`` holds its key columns.

        ``frame``'s columns come first in each statement's values, ``extra``
        arrays (e.g. write timestamps) after them.
        """
        order = np.lexsort(tuple(reversed(partition)))
        columns = [a[order] for a in (*_bind_values(frame), *(np.asarray(e, dtype=object) for e in extra))]
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
                batch = BatchStatement(batch_type=BatchType.UNLOGGED, consistency_level=self._write_cl)
                for row in zip(*(c[first:last] for c in columns)):
                    batch.add(statement, row)
                yield batch, None

    def _write_table(self, table: str, frame: pd.DataFrame, time_column: str) -> None:
        """Write rows of a history table to their (sky pixel, time partition) partitions."""
        ra, dec = self._positions(table, frame)
        pixels = self.partitioning.pixels(ra, dec)
        times = self.partitioning.time_partitions(frame[time_column].to_numpy(dtype=np.float64))
        keyed = frame.assign(**{PART_COLUMN: pixels, TIME_PART_COLUMN: times})
        columns = [PART_COLUMN, TIME_PART_COLUMN, *frame.columns]
        statement = self._insert(table, columns)
        self._run(self._batches(statement, keyed[columns], (pixels, times)), write=True)

    def _apply_versions(self, objects: pd.DataFrame) -> None:
        """Make ``objects`` (new DiaObject versions) the latest ones in DiaObjectLast.

        Every write carries the version's validity start as its timestamp, so
        that this may run more than once, or late, and never replaces a newer
        version. An object whose sky pixel changed has its old row deleted.
        """
        ids = objects["diaObjectId"].to_numpy(dtype=np.int64)
        ra, dec = self._positions("DiaObject", objects)
        pixels = self.partitioning.pixels(ra, dec)
        stamps = _version_timestamps(objects["validityStartMjdTai"].to_numpy(dtype=np.float64))
        with self._timed("obj_last_delete") as timer:
            lookup = self._prepare(
                "select:last_partition",
                f'SELECT "diaObjectId", {quote(PART_COLUMN)} FROM {self._name("DiaObjectLastToPartition")} '
                f'WHERE "diaObjectId" IN ?', write=False)
            chunks = [ids[i : i + 100].tolist() for i in range(0, len(ids), 100)]
            found = self._rows_of_results(self._run(((lookup, (chunk,)) for chunk in chunks), write=False))
            old_ids = np.asarray(found.get("diaObjectId", np.empty(0)), dtype=np.int64)
            old_parts = np.asarray(found.get(PART_COLUMN, np.empty(0)), dtype=np.int64)
            order = np.argsort(ids)
            where = order[np.searchsorted(ids, old_ids, sorter=order)] if len(old_ids) else np.empty(0, np.int64)
            moved = old_parts != pixels[where]
            delete = self._prepare(
                "delete:last",
                f'DELETE FROM {self._name("DiaObjectLast")} USING TIMESTAMP ? '
                f'WHERE {quote(PART_COLUMN)} = ? AND "diaObjectId" = ?', write=True)
            self._run(((delete, (int(stamps[w]), int(p), int(i)))
                       for w, p, i in zip(where[moved], old_parts[moved], old_ids[moved])), write=True)
            timer.rows = int(moved.sum())
        with self._timed("obj_last_upsert", len(objects)):
            columns = [PART_COLUMN, *objects.columns]
            statement = self._insert("DiaObjectLast", columns, timestamped=True)
            keyed = objects.assign(**{PART_COLUMN: pixels})[columns]
            self._run(self._batches(statement, keyed, (pixels,), extra=[stamps]), write=True)
            # One partition per object: sent in groups, each group one request.
            mapping = self._insert("DiaObjectLastToPartition", ["diaObjectId", PART_COLUMN], timestamped=True)
            groups = np.arange(len(ids)) // _MAPPING_GROUP
            frame = pd.DataFrame({"diaObjectId": ids, PART_COLUMN: pixels})
            self._run(self._batches(mapping, frame, (groups,), extra=[stamps], per_batch=_MAPPING_GROUP),
                      write=True)

    def _rows_of_results(self, results: Sequence[Any]) -> dict[str, np.ndarray]:
        pages = columns_of(results)
        return {name: np.concatenate([np.ma.getdata(p) for p in parts]) for name, parts in pages.items()}

    def _record_visit(self, visit_id: int, visit_mjd: float, tile: int, n_tiles: int, parts: set[int],
                      applied: bool) -> None:
        statement = self._insert("L1dbVisit", ["bucket", "visitId", "tile", "visitTimeMjdTai", "nTiles", "parts",
                                               "applied"])
        self._plain.execute(statement, (0, int(visit_id), int(tile), float(visit_mjd), int(n_tiles),
                                        parts or UNSET_VALUE, applied),
                            timeout=self.options["write_timeout"])

    def _mark_applied(self, visit_id: int, tile: int) -> None:
        statement = self._prepare(
            "update:applied",
            f'UPDATE {self._name("L1dbVisit")} SET applied = true WHERE bucket = 0 AND "visitId" = ? AND tile = ?',
            write=True)
        self._plain.execute(statement, (int(visit_id), int(tile)), timeout=self.options["write_timeout"])

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
        visit_mjd = to_mjd_tai(visit_time)
        prepared = {
            "DiaObject": self._checked_objects(objects, visit_mjd),
            "DiaSource": self._checked("DiaSource", sources),
            "DiaForcedSource": self._checked("DiaForcedSource", forced),
        }
        self.checkSchema()
        try:
            with self._records_after_store(), self._timed("store"):
                self._store(prepared, visit_mjd, visit_id, tile, n_tiles)
        except BaseException:
            # Whatever was half-done is finished (or redone) before the next read.
            self._needs_recovery = True
            raise

    def _store(self, prepared: dict[str, pd.DataFrame | None], visit_mjd: float, visit_id: int | None,
               tile: int, n_tiles: int) -> None:
        objects = prepared["DiaObject"]
        if objects is not None:
            with self._timed("obj_insert", len(objects)):
                self._write_table("DiaObject", objects, "validityStartMjdTai")
        if prepared["DiaSource"] is not None:
            with self._timed("src_insert", len(prepared["DiaSource"])):
                self._write_table("DiaSource", prepared["DiaSource"], "midpointMjdTai")
        if prepared["DiaForcedSource"] is not None:
            with self._timed("fsrc_insert", len(prepared["DiaForcedSource"])):
                self._write_table("DiaForcedSource", prepared["DiaForcedSource"], "midpointMjdTai")
        parts: set[int] = set()
        if objects is not None:
            ra, dec = self._positions("DiaObject", objects)
            parts = set(np.unique(self.partitioning.pixels(ra, dec)).tolist())
        if visit_id is not None:
            # Every row is acknowledged: from here on the visit counts as stored.
            with self._timed("visit_insert", 1):
                self._record_visit(visit_id, visit_mjd, tile, n_tiles, parts, applied=objects is None)
        if objects is not None:
            self._apply_versions(objects)
            if visit_id is not None:
                self._mark_applied(visit_id, tile)

    def _apply_unapplied_visits(self) -> None:
        """Apply to DiaObjectLast the versions of visits recorded but not applied (a store cut short)."""
        result = self._simple(
            f'SELECT "visitId", tile, "visitTimeMjdTai", parts, applied FROM {self._name("L1dbVisit")} '
            f"WHERE bucket = 0 LIMIT {RECOVERY_ROWS}")
        rows = self._rows(result)
        if not len(rows.get("visitId", [])):
            return
        applied = np.array([bool(a) for a in rows["applied"]])
        for k in np.flatnonzero(~applied):
            visit_id, tile = int(rows["visitId"][k]), int(rows["tile"][k])
            visit_mjd = float(rows["visitTimeMjdTai"][k])
            parts = np.array(sorted(rows["parts"][k] or ()), dtype=np.int64)
            _LOG.warning("visit %d tile %d was stored but not applied to DiaObjectLast: applying it now",
                         visit_id, tile)
            columns = list(self.tables["DiaObject"].columns)
            time_part = self.partitioning.time_partitions(np.array([visit_mjd]))[0]
            versions = self._read_partitions("DiaObject", columns, parts, [int(time_part)])
            versions = versions[versions["validityStartMjdTai"].to_numpy() == visit_mjd].reset_index(drop=True)
            if len(versions):
                self._apply_versions(versions)
            self._mark_applied(visit_id, tile)

    def storeDiaSources(self, sources: pd.DataFrame, explain: bool = False) -> None:
        checked = self._checked("DiaSource", sources)
        self.checkSchema()
        with self._records_after_store(), self._timed("src_insert", len(checked)):
            self._write_table("DiaSource", checked, "midpointMjdTai")

    def storeDiaForcedSources(self, forced: pd.DataFrame, explain: bool = False) -> None:
        checked = self._checked("DiaForcedSource", forced)
        self.checkSchema()
        with self._records_after_store(), self._timed("fsrc_insert", len(checked)):
            self._write_table("DiaForcedSource", checked, "midpointMjdTai")

    # -- visits ---------------------------------------------------------------------------------

    def saveVisit(self, visit_id: int, visit_time: Time | datetime.datetime, tile: int = 0,
                  n_tiles: int = 1) -> None:
        self.checkSchema()
        self._record_visit(visit_id, to_mjd_tai(visit_time), tile, n_tiles, set(), applied=True)

    def _end_visit(self, last: bool) -> tuple[int, Time] | None:
        self.checkSchema()
        # The partition is clustered newest first.
        order = "" if last else ' ORDER BY "visitId" ASC'
        rows = self._rows(self._simple(
            f'SELECT "visitId", "visitTimeMjdTai" FROM {self._name("L1dbVisit")} WHERE bucket = 0{order} LIMIT 1'))
        if not len(rows.get("visitId", [])):
            return None
        return int(rows["visitId"][0]), Time(float(rows["visitTimeMjdTai"][0]), format="mjd", scale="tai")

    def lastVisit(self) -> tuple[int, Time] | None:
        return self._end_visit(last=True)

    def firstVisit(self) -> tuple[int, Time] | None:
        return self._end_visit(last=False)

    def storedTiles(self, visit_id: int) -> tuple[set[int], int]:
        self.checkSchema()
        rows = self._rows(self._simple(
            f'SELECT tile, "nTiles" FROM {self._name("L1dbVisit")} WHERE bucket = 0 AND "visitId" = %s',
            [int(visit_id)]))
        tiles = {int(t) for t in rows.get("tile", [])}
        return tiles, max((int(n) for n in rows.get("nTiles", [])), default=0)

    # -- maintenance ------------------------------------------------------------------------------

    def dailyJob(self) -> int:
        """Nothing to do on Cassandra (no nightly table); returns 0."""
        return 0

    def tableRowCount(self) -> dict[str, int]:
        """Rows of each table: full scans, slow on a large database (``row_count_every``)."""
        self.checkSchema()
        counts = {}
        for table in TABLES:
            result = self._simple(f"SELECT COUNT(*) FROM {self._name(table)}",
                                  timeout=max(600.0, self.options["read_timeout"]))
            counts[table] = int(result.one()[0])
        return counts
