"""The timing log: the one place that writes and parses its lines.

Format (version 1)
------------------
JSON Lines: every record is one line holding one JSON object whose first key
is ``"record"``, the record kind. Lines that hold no record (ordinary log
messages written to the same stream) are allowed anywhere and ignored by the
parser. A record may be preceded on its line by a prefix (a logging
formatter's time stamp, say): the record is the JSON object starting at the
first ``{"record"`` of the line.

``provenance``, written once at the start of every run::

    {"record": "provenance", "format": 1, "run": "20261121T101500Z-5f3a9c01",
     "time": "2026-11-21T10:15:00.123456+00:00", "toolkit_version": "0.1.0",
     "git_commit": "80d64d9...", "config": {"database": {...}, "l1db": {...}},
     "backend": "postgresql", "server_version": "15.8",
     "machine": {"cpus": 2, "memory_bytes": 25769803776, "platform": "Linux-..."},
     "seed": 1, "argv": ["ap_proto", "-n", "100", "sources.npy"]}

``record`` (``"provenance"``), ``format`` (int, this module's
`FORMAT_VERSION`), ``run`` (str, run id) and ``time`` (ISO 8601 UTC, when the
record was written) are required; every other key is free-form and kept as
written. The keys listed above are the ones the toolkit writes.

``timing``, one per measured operation::

    {"record": "timing", "run": "20261121T101500Z-5f3a9c01", "visit": 42,
     "tile": 0, "op": "obj_select", "real": 0.812345, "user": 0.25,
     "sys": 0.02, "rows": 14873}

======  ===========  ====================================================
field   type         meaning
======  ===========  ====================================================
run     str          run id: same as the run's provenance record
visit   int          visit id
tile    int          tile index within the visit (0 without tiles)
op      str          operation name, one of `OPERATIONS`
real    float        wall-clock seconds (rounded to 1 microsecond)
user    float        user CPU seconds of the process that ran it
sys     float        system CPU seconds of the process that ran it
rows    int or null  rows read or written, null if the operation has none
======  ===========  ====================================================

Back-pressure fields of a timing record, written only when not zero (a
record without them parses as 0)::

    {"record": "timing", ..., "op": "store", "real": 9.5, ..., "wait": 1.25, "resent": 12}

======  =====  ==========================================================
field   type   meaning
======  =====  ==========================================================
wait    float  seconds of ``real`` spent waiting on the database's
               back-pressure (busy connection, overloaded node, dropped
               read) before requests were sent again
resent  int    requests sent again after the database refused or dropped
               them
======  =====  ==========================================================

The daily job's records (the loop's own work between nights, run before
``visit`` and logged under it) say so, written only on them (a record
without it parses as false)::

    {"record": "timing", ..., "visit": 43, "tile": 0, "op": "obj_insert", ..., "daily": true}

======  =====  ==========================================================
field   type   meaning
======  =====  ==========================================================
daily   bool   the daily job's work (``daily_merge`` and the operations
               inside it), not the visit's own
======  =====  ==========================================================

``failure``, one per failed attempt of a visit's tile (or of the loop's own
database work: the row counts, the daily job), written when the attempt is
given up; the failed attempt's timings are not written (they would add to the
retried visit's), its cost is here::

    {"record": "failure", "run": "20261121T101500Z-5f3a9c01", "visit": 42,
     "tile": 0, "op": "src_insert", "error": "AdminShutdown",
     "reason": "terminating connection due to administrator command",
     "attempt": 1, "lost": 1.234567, "wait": 2.0, "retry": true}

=======  =====  ============================================================
field    type   meaning
=======  =====  ============================================================
run      str    run id
visit    int    visit id
tile     int    tile index (0 without tiles, and for the loop's own work)
op       str    what was running: an operation of `OPERATIONS`, ``connect``
                (reconnecting before the visit's work) or ``counts``
error    str    class of the error (the driver's own where it has one)
reason   str    the error in one line
attempt  int    1 for the first failed attempt of this work, then 2, ...
lost     float  wall-clock seconds of the failed attempt, until the error
wait     float  seconds waited before the next attempt (0 if none follows)
retry    bool   whether another attempt follows (false: the run stops)
=======  =====  ============================================================

``counts``, the number of rows in every table, written every so many visits::

    {"record": "counts", "run": "20261121T101500Z-5f3a9c01", "visit": 100,
     "exact": false, "tables": {"DiaObject": 1520344, "DiaSource": 1498211, ...}}

``exact`` says how the rows were had: ``true`` counted (a full scan of each
table), ``false`` the server's estimates (``L1db.tableRowCount`` says which
per backend). Logs written before the field existed counted exactly: a
record without it is read as ``"exact": true``.

``latency``, one per visit of an open-loop run (``ap_proto --cadence``),
written once the visit's last tile is stored; times are Unix seconds (the
driver's clock for the release, the worker hosts' clocks for the others)::

    {"record": "latency", "run": "20261121T101500Z-5f3a9c01", "visit": 42,
     "released": 1795428900.0, "began": 1795428901.25, "stored": 1795428931.5}

========  =====  ===========================================================
field     type   meaning
========  =====  ===========================================================
run       str    run id
visit     int    visit id
released  float  when the visit was released: the run's start + k x cadence
began     float  when its first tile began on a worker (queue wait before)
stored    float  when its last tile's store was acknowledged
========  =====  ===========================================================

The parser adds ``queue_wait`` (began - released) and ``latency`` (stored -
released), seconds.

``behind``, once at the end of an open-loop run that fell behind: the release
of ``visit`` found ``in_flight`` visits released and not yet stored, the
run's bound, and the run stopped there::

    {"record": "behind", "run": "20261121T101500Z-5f3a9c01", "visit": 53, "in_flight": 10}

Parsing rules: a line is a *record candidate* if it contains ``{"record"``
or, after leading white space, starts with ``{``. A candidate that is not
valid JSON, or whose fields are missing or of the wrong type, is *malformed*:
it is counted, never raised. A run killed mid-write therefore leaves at most
one malformed (truncated) last line. Records of a kind this version does not
know are skipped and counted separately, so that newer logs still parse.

Writing: `TimingLogWriter` writes each record with a single ``write()`` call
on a file opened with ``O_APPEND`` and no user-space buffering, so several
processes may append to the same file without interleaving within lines, and
a killed process loses at most the line it was writing. Work done elsewhere
(a tile on a Dask worker, maybe on another host) holds its records in
`HeldRecords` and hands them to the one process that writes the log. A
writer that opens a file whose last line is unfinished (torn by a kill)
ends that line first, so that every record starts on a fresh
line and the torn one stays one malformed line.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import logging
import math
import os
import platform
import re
import subprocess
import threading
import uuid
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, TextIO, TypeGuard

import pandas as pd

from .timer import TimingRecord, TimingSink

__all__ = [
    "FORMAT_VERSION",
    "OPERATIONS",
    "TIMING_COLUMNS",
    "FAILURE_COLUMNS",
    "LOOP_OPERATIONS",
    "LATENCY_COLUMNS",
    "latency_frame",
    "TimingLogWriter",
    "TimingLogError",
    "HeldRecords",
    "ParsedLog",
    "new_run_id",
    "parse_log",
    "parse_logs",
    "machine_info",
    "toolkit_info",
]

_LOG = logging.getLogger(__name__)

#: Version of the line format written by this module (the provenance ``format`` key).
FORMAT_VERSION = 1

#: Every operation name the toolkit writes, with what it measures.
OPERATIONS: dict[str, str] = {
    "sim": "simulation of one visit or tile: the sum of the three sim_* steps (DB time excluded)",
    "sim_detect": "simulate the visit's DiaSources: catalogue sources in the field, noise, transients "
                  "(rows: detections)",
    "sim_associate": "match the DiaSources to the DiaObjects read, by position (rows: sources matched)",
    "sim_rows": "build the new DiaObject versions, DiaSources and DiaForcedSources (rows: DiaObject versions)",
    "obj_select": "read the latest DiaObject versions in the field (rows: objects read)",
    "src_select": "read the DiaSource history of the objects in the field (rows: sources read)",
    "fsrc_select": "read the DiaForcedSource history of the objects in the field (rows: forced sources read)",
    "obj_insert": "insert new DiaObject versions into DiaObject, the table of every version (with enable_replica, "
                  "also into its replica-chunk table) (rows: versions inserted)",
    "obj_validity_update": "close the validity interval of the previous DiaObject versions (rows: updated)",
    "obj_last_delete": "delete previous versions from DiaObjectLast (Cassandra: the rows of objects that moved "
                       "to another sky pixel, found through DiaObjectLastToPartition) (rows: deleted)",
    "obj_last_insert": "insert the new versions into DiaObjectLast (rows: inserted)",
    "obj_last_upsert": "upsert the new versions into DiaObjectLast (SQL: the native upsert; Cassandra: the insert, "
                       "and DiaObjectLastToPartition) (rows)",
    "obj_nightly_insert": "insert new DiaObject versions into DiaObjectNightly (rows: inserted)",
    "src_insert": "insert the visit's DiaSources (with enable_replica, also into its replica-chunk table) "
                  "(rows: inserted)",
    "fsrc_insert": "insert the visit's DiaForcedSources (with enable_replica, also into its replica-chunk table) "
                   "(rows: inserted)",
    "visit_insert": "record the visit as stored (rows: 1)",
    "store": "the whole store of the visit (all the operations above): SQL's transaction with its commit; "
             "Cassandra's writes until every row is acknowledged and the visit applied",
    "daily_merge": "the nightly job merging DiaObjectNightly into DiaObject (rows: merged)",
    "daily_partitions": "the nightly job's time-partition maintenance: create the next partitions, drop those "
                        "past retention_days (rows: partitions created and dropped)",
    "visit": "the whole visit: simulation, reads and store",
    "connect": "connect to the database, when a tile's attempt finds no connection (a worker's first tile, or the "
               "retry after a failure), back-pressure waits included; outside the tile's visit record",
}

#: Columns of `ParsedLog.timings`, in order.
TIMING_COLUMNS: tuple[str, ...] = ("run", "visit", "tile", "op", "real", "user", "sys", "rows",
                                   # back-pressure (optional in a record, 0 when absent)
                                   "wait", "resent",
                                   # the daily job's work (optional, false when absent)
                                   "daily")

#: The ``op`` of the failure records of the loop's own database work (the row counts after a visit, the daily
#: job before one): logged under that visit, but none of the visit's own attempts.
LOOP_OPERATIONS: tuple[str, ...] = ("counts", "daily_merge")

#: Columns of `ParsedLog.failures` (the fields of a failure record after ``record``), in order.
FAILURE_COLUMNS: tuple[str, ...] = ("run", "visit", "tile", "op", "error", "reason", "attempt", "lost", "wait",
                                    "retry")

#: Columns of `ParsedLog.latencies`: the latency record's fields, then ``queue_wait`` and ``latency`` (seconds).
LATENCY_COLUMNS: tuple[str, ...] = ("run", "visit", "released", "began", "stored", "queue_wait", "latency")

_RECORD_START = re.compile(r'\{\s*"record"\s*:')


def new_run_id() -> str:
    """Return a new run id: UTC start time plus a random suffix.

    Ids sort in start order and are unique across machines, e.g.
    ``"20261121T101500Z-5f3a9c01"``.
    """
    now = datetime.datetime.now(datetime.UTC)
    return f"{now:%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}"


def _utc_now() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat()


def _json_default(value: Any) -> Any:
    # numpy scalars and arrays, paths and the like: the config may hold them.
    if hasattr(value, "item") and callable(value.item):
        try:
            return value.item()
        except (TypeError, ValueError):
            pass
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    return str(value)


def _dumps(record: Mapping[str, Any]) -> str:
    return json.dumps(record, default=_json_default, allow_nan=False, ensure_ascii=False)


class TimingLogError(ValueError):
    """The timing log cannot be opened for writing (a directory, a path under a file, no permission); one line."""


class TimingLogWriter:
    """Writes provenance and timing records of one run.

    Parameters
    ----------
    target : `str`, `os.PathLike` or text stream
        A path is opened for appending (``O_APPEND``, unbuffered): each record
        goes to the file in one ``write()`` call, so processes may share the
        file. A text stream (``sys.stderr``, a log stream) is written and
        flushed once per line; share it between processes only through a path.
    run : `str`, optional
        Run id; a new one (`new_run_id`) if not given. The processes of a tiled
        run pass the same id.

    Raises
    ------
    TimingLogError
        If the path cannot be opened for appending.

    Examples
    --------
    >>> with TimingLogWriter("timing.log") as log:         # doctest: +SKIP
    ...     log.provenance({"backend": "sqlite", "seed": 1})
    ...     with Timer("obj_select", log.sink(visit=42)) as t:
    ...         t.rows = len(read_objects())
    """

    def __init__(self, target: str | os.PathLike | TextIO, run: str | None = None) -> None:
        self.run = run or new_run_id()
        self._lock = threading.Lock()
        self._fd: int | None = None
        self._stream: TextIO | None = None
        if isinstance(target, (str, os.PathLike)):
            self.path: Path | None = Path(target)
            try:
                self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
            except OSError as exc:
                raise TimingLogError(f"{target}: cannot write the timing log there: {exc.strerror}") from None
            self._end_torn_line()
        else:
            self.path = None
            self._stream = target

    def _end_torn_line(self) -> None:
        """End the file's last line if a killed writer left it unfinished.

        Otherwise this writer's first record would be appended to the torn
        line and be lost with it.
        """
        assert self.path is not None and self._fd is not None
        try:
            with open(self.path, "rb") as stream:
                stream.seek(0, os.SEEK_END)
                if stream.tell() == 0:
                    return
                stream.seek(-1, os.SEEK_END)
                last = stream.read(1)
        except OSError:
            return
        if last != b"\n":
            os.write(self._fd, b"\n")

    def __enter__(self) -> TimingLogWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the file if the writer opened one (a stream is left open)."""
        with self._lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None
            self._stream = None

    def _write_line(self, record: Mapping[str, Any]) -> None:
        line = _dumps(record) + "\n"
        with self._lock:
            if self._fd is not None:
                data = line.encode("utf-8")
                written = os.write(self._fd, data)
                if written != len(data):  # Only on a full disk or a signal: finish the line.
                    os.write(self._fd, data[written:])
            elif self._stream is not None:
                self._stream.write(line)
                self._stream.flush()
            else:
                raise ValueError("timing log writer is closed")

    def provenance(self, info: Mapping[str, Any]) -> None:
        """Write the run's provenance record.

        Parameters
        ----------
        info : mapping
            Provenance keys (``toolkit_version``, ``git_commit``, ``config``,
            ``backend``, ``server_version``, ``machine``, ``seed``, ``argv``,
            and any others); must be JSON-serializable (numpy scalars and
            paths are converted). ``record``, ``format`` and ``run`` are set
            by the writer; ``time`` defaults to now.
        """
        record: dict[str, Any] = {"record": "provenance", "format": FORMAT_VERSION, "run": self.run}
        record["time"] = info.get("time") or _utc_now()
        for key, value in info.items():
            if key not in record:
                record[key] = value
        self._write_line(record)

    def timing(self, record: TimingRecord, visit: int, tile: int = 0, daily: bool = False) -> None:
        """Write one timing record for ``visit`` and ``tile``; ``daily``: of the daily job run before ``visit``."""
        rows = record.rows
        line = {
            "record": "timing",
            "run": self.run,
            "visit": int(visit),
            "tile": int(tile),
            "op": record.op,
            "real": round(float(record.real), 6),
            "user": round(float(record.user), 6),
            "sys": round(float(record.sys), 6),
            "rows": None if rows is None else int(rows),
        }
        # -- back-pressure: only when the database made the operation wait --
        if record.wait > 0 or record.resent > 0:
            line["wait"] = round(float(record.wait), 6)
            line["resent"] = int(record.resent)
        # -- end of back-pressure --
        if daily:
            line["daily"] = True
        self._write_line(line)

    def failure(self, visit: int, tile: int, op: str, error: str, reason: str, attempt: int, lost: float,
                wait: float, retry: bool) -> None:
        """Write a failure record: an attempt of ``visit``'s ``tile`` failed in ``op`` (see the module docstring)."""
        self._write_line({
            "record": "failure",
            "run": self.run,
            "visit": int(visit),
            "tile": int(tile),
            "op": str(op),
            "error": str(error),
            "reason": " ".join(str(reason).split()),
            "attempt": int(attempt),
            "lost": round(float(lost), 6),
            "wait": round(float(wait), 6),
            "retry": bool(retry),
        })

    def counts(self, visit: int, tables: Mapping[str, int], *, exact: bool) -> None:
        """Write the row count of every table, as seen after ``visit``, and whether it was counted or estimated."""
        self._write_line({"record": "counts", "run": self.run, "visit": int(visit), "exact": bool(exact),
                          "tables": {str(k): int(v) for k, v in tables.items()}})

    # -- open-loop runs (see the module docstring: latency, behind) --

    def latency(self, visit: int, released: float, began: float, stored: float) -> dict[str, Any]:
        """Write an open-loop visit's release, first tile's start and last store (Unix seconds); return the record."""
        record = {"record": "latency", "run": self.run, "visit": int(visit), "released": round(float(released), 6),
                  "began": round(float(began), 6), "stored": round(float(stored), 6)}
        self._write_line(record)
        return record

    def behind(self, visit: int, in_flight: int) -> None:
        """Write that the release of ``visit`` found ``in_flight`` visits in flight: the run fell behind."""
        self._write_line({"record": "behind", "run": self.run, "visit": int(visit), "in_flight": int(in_flight)})

    def sink(self, visit: int, tile: int = 0, daily: bool = False) -> TimingSink:
        """Return a `TimingSink` writing records tagged with this run, ``visit``, ``tile`` (and ``daily``)."""
        visit, tile = int(visit), int(tile)

        def sink(record: TimingRecord) -> None:
            self.timing(record, visit, tile, daily)

        return sink


class HeldRecords:
    """Timing and failure records held for a `TimingLogWriter` elsewhere.

    A tile processed on a Dask worker (another process or host) cannot write
    to the driver's log: it collects its records here, with the same calls
    as on a writer (`sink`, `failure`), and returns them with its result; the
    driver then writes them in order with `write_to`. The object pickles, so
    it travels with a task's result.
    """

    def __init__(self) -> None:
        #: ``("timing", (record, visit, tile, daily))`` and ``("failure", {field: value})`` in the order made.
        self.items: list[tuple[str, Any]] = []

    def __len__(self) -> int:
        return len(self.items)

    def sink(self, visit: int, tile: int = 0, daily: bool = False) -> TimingSink:
        """Return a `TimingSink` holding records for ``visit`` and ``tile`` (and ``daily``)."""
        visit, tile = int(visit), int(tile)

        def sink(record: TimingRecord) -> None:
            self.items.append(("timing", (record, visit, tile, daily)))

        return sink

    def failure(self, visit: int, tile: int, op: str, error: str, reason: str, attempt: int, lost: float,
                wait: float, retry: bool) -> None:
        """Hold a failure record (the arguments of `TimingLogWriter.failure`)."""
        self.items.append(("failure", {"visit": visit, "tile": tile, "op": op, "error": error, "reason": reason,
                                       "attempt": attempt, "lost": lost, "wait": wait, "retry": retry}))

    def write_to(self, writer: TimingLogWriter) -> None:
        """Write every held record through ``writer``, in the order held."""
        for kind, args in self.items:
            if kind == "timing":
                writer.timing(*args)
            else:
                writer.failure(**args)


@dataclasses.dataclass
class ParsedLog:
    """Content of one or more timing logs.

    Attributes
    ----------
    provenance : `list` [`dict`]
        Provenance records in the order read, exactly as written.
    timings : `pandas.DataFrame`
        One row per timing record, columns `TIMING_COLUMNS`: ``run`` (str),
        ``visit``, ``tile`` (int64), ``op`` (str), ``real``, ``user``, ``sys``
        (float64, seconds), ``rows`` (nullable Int64), ``wait`` (float64,
        seconds) and ``resent`` (int64): back-pressure, 0 where not written;
        ``daily`` (bool): the daily job's work, logged under the visit after it.
    malformed : `int`
        Record candidates that did not parse or validate (a truncated last
        line among them).
    unknown : `int`
        Well-formed records of a kind this version does not know (skipped).
    counts : `list` [`dict`]
        ``counts`` records (``run``, ``visit``, ``exact``, ``tables``) in the
        order read; ``exact`` is `True` where an older log has no such field.
    failures : `pandas.DataFrame`
        One row per failure record, columns `FAILURE_COLUMNS`: ``run``,
        ``op``, ``error``, ``reason`` (str), ``visit``, ``tile``, ``attempt``
        (int64), ``lost``, ``wait`` (float64, seconds), ``retry`` (bool).
    latencies : `pandas.DataFrame`
        One row per latency record (open-loop runs), columns
        `LATENCY_COLUMNS`: ``run`` (str), ``visit`` (int64), the rest float64
        (Unix seconds, then ``queue_wait`` and ``latency`` in seconds).
    behind : `list` [`dict`]
        ``behind`` records (``run``, ``visit``, ``in_flight``) in the order read.
    """

    provenance: list[dict[str, Any]]
    timings: pd.DataFrame
    malformed: int = 0
    unknown: int = 0
    counts: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    failures: pd.DataFrame = dataclasses.field(default_factory=lambda: _failure_frame([]))
    latencies: pd.DataFrame = dataclasses.field(default_factory=lambda: latency_frame([]))
    behind: list[dict[str, Any]] = dataclasses.field(default_factory=list)

    def runs(self) -> list[str]:
        """Run ids seen in provenance or timing records, in first-seen order."""
        seen = dict.fromkeys(p["run"] for p in self.provenance)
        seen.update(dict.fromkeys(self.timings["run"].tolist()))
        return list(seen)


def _is_int(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_seconds(value: Any) -> bool:
    return (_is_int(value) or isinstance(value, float)) and math.isfinite(value) and value >= 0


class _Columns:
    """Column-wise accumulator of timing records (no object per row kept)."""

    def __init__(self) -> None:
        self.data: dict[str, list[Any]] = {name: [] for name in TIMING_COLUMNS}

    def add(self, rec: Mapping[str, Any]) -> bool:
        run, visit, tile, op = rec.get("run"), rec.get("visit"), rec.get("tile"), rec.get("op")
        real, user, sys_, rows = rec.get("real"), rec.get("user"), rec.get("sys"), rec.get("rows")
        if not (isinstance(run, str) and run and isinstance(op, str) and op):
            return False
        if not (_is_int(visit) and _is_int(tile) and tile >= 0):
            return False
        if not (_is_seconds(real) and _is_seconds(user) and _is_seconds(sys_)):
            return False
        if not (rows is None or (_is_int(rows) and rows >= 0)):
            return False
        # -- back-pressure: optional, 0 when absent --
        wait, resent = rec.get("wait", 0.0), rec.get("resent", 0)
        if not (_is_seconds(wait) and _is_int(resent) and resent >= 0):
            return False
        # -- end of back-pressure --
        daily = rec.get("daily", False)
        if not isinstance(daily, bool):
            return False
        for name, value in zip(TIMING_COLUMNS, (run, visit, tile, op, real, user, sys_, rows, wait, resent, daily)):
            self.data[name].append(value)
        return True

    def frame(self) -> pd.DataFrame:
        d = self.data
        return pd.DataFrame({
            "run": pd.Series(d["run"], dtype="str"),
            "visit": pd.Series(d["visit"], dtype="int64"),
            "tile": pd.Series(d["tile"], dtype="int64"),
            "op": pd.Series(d["op"], dtype="str"),
            "real": pd.Series(d["real"], dtype="float64"),
            "user": pd.Series(d["user"], dtype="float64"),
            "sys": pd.Series(d["sys"], dtype="float64"),
            "rows": pd.Series(d["rows"], dtype="Int64"),
            "wait": pd.Series(d["wait"], dtype="float64"),
            "resent": pd.Series(d["resent"], dtype="int64"),
            "daily": pd.Series(d["daily"], dtype="bool"),
        })


def _valid_provenance(rec: Mapping[str, Any]) -> bool:
    return (
        isinstance(rec.get("run"), str) and bool(rec["run"])
        and _is_int(rec.get("format")) and rec["format"] >= 1
        and isinstance(rec.get("time"), str)
    )


def _valid_failure(rec: Mapping[str, Any]) -> bool:
    return (
        all(isinstance(rec.get(k), str) for k in ("run", "op", "error", "reason"))
        and bool(rec["run"]) and bool(rec["op"])
        and _is_int(rec.get("visit")) and _is_int(rec.get("tile")) and rec["tile"] >= 0
        and _is_int(rec.get("attempt")) and rec["attempt"] >= 1
        and _is_seconds(rec.get("lost")) and _is_seconds(rec.get("wait"))
        and isinstance(rec.get("retry"), bool)
    )


def _failure_frame(records: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    dtypes = {"run": "str", "visit": "int64", "tile": "int64", "op": "str", "error": "str", "reason": "str",
              "attempt": "int64", "lost": "float64", "wait": "float64", "retry": "bool"}
    return pd.DataFrame({name: pd.Series([r[name] for r in records], dtype=dtypes[name])
                         for name in FAILURE_COLUMNS})


def _valid_latency(rec: Mapping[str, Any]) -> bool:
    return (isinstance(rec.get("run"), str) and bool(rec["run"]) and _is_int(rec.get("visit"))
            and all(_is_seconds(rec.get(k)) for k in ("released", "began", "stored")))


def _valid_behind(rec: Mapping[str, Any]) -> bool:
    return (isinstance(rec.get("run"), str) and bool(rec["run"]) and _is_int(rec.get("visit"))
            and _is_int(rec.get("in_flight")) and rec["in_flight"] >= 0)


def latency_frame(records: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """`ParsedLog.latencies` of latency records (mappings with the fields of one, as written)."""
    frame = pd.DataFrame({
        "run": pd.Series([r["run"] for r in records], dtype="str"),
        "visit": pd.Series([r["visit"] for r in records], dtype="int64"),
        **{name: pd.Series([r[name] for r in records], dtype="float64") for name in ("released", "began", "stored")},
    })
    frame["queue_wait"] = frame["began"] - frame["released"]
    frame["latency"] = frame["stored"] - frame["released"]
    return frame.loc[:, list(LATENCY_COLUMNS)]


def _valid_counts(rec: Mapping[str, Any]) -> bool:
    tables = rec.get("tables")
    return (
        isinstance(rec.get("run"), str)
        and _is_int(rec.get("visit"))
        and isinstance(tables, dict)
        and all(isinstance(k, str) and _is_int(v) for k, v in tables.items())
        and isinstance(rec.get("exact", True), bool)
    )


def _iter_lines(source: str | os.PathLike | Iterable[str]) -> Iterable[str]:
    if isinstance(source, (str, os.PathLike)):
        # A killed writer may leave half a multi-byte character: replace, never raise.
        with open(source, encoding="utf-8", errors="replace") as stream:
            yield from stream
    else:
        yield from source


def parse_log(source: str | os.PathLike | Iterable[str]) -> ParsedLog:
    """Parse a timing log.

    Parameters
    ----------
    source : `str`, `os.PathLike` or iterable of `str`
        Path of a log file, or its lines (an open text file, a list).

    Returns
    -------
    log : `ParsedLog`
        Provenance and timing records; malformed candidates counted, lines
        that hold no record ignored.

    Raises
    ------
    OSError
        If the file cannot be read. Bad content never raises.
    """
    provenance: list[dict[str, Any]] = []
    counts: list[dict[str, Any]] = []
    failures: list[dict[str, Any]] = []
    latencies: list[dict[str, Any]] = []
    behind: list[dict[str, Any]] = []
    columns = _Columns()
    malformed = unknown = 0
    newer_formats: set[int] = set()
    for line in _iter_lines(source):
        match = _RECORD_START.search(line)
        if match is None:
            if line.lstrip().startswith("{"):
                malformed += 1
            continue
        try:
            rec = json.loads(line[match.start():])
        except ValueError:
            malformed += 1
            continue
        if not isinstance(rec, dict):
            malformed += 1
            continue
        kind = rec.get("record")
        if kind == "timing":
            if not columns.add(rec):
                malformed += 1
        elif kind == "provenance":
            if _valid_provenance(rec):
                provenance.append(rec)
                if rec["format"] > FORMAT_VERSION:
                    newer_formats.add(rec["format"])
            else:
                malformed += 1
        elif kind == "counts":
            if _valid_counts(rec):
                counts.append({**rec, "exact": rec.get("exact", True)})
            else:
                malformed += 1
        elif kind == "failure":
            if _valid_failure(rec):
                failures.append(rec)
            else:
                malformed += 1
        elif kind in ("latency", "behind"):
            valid, kept = (_valid_latency, latencies) if kind == "latency" else (_valid_behind, behind)
            if valid(rec):
                kept.append(rec)
            else:
                malformed += 1
        elif isinstance(kind, str) and kind:
            unknown += 1
        else:
            malformed += 1
    for fmt in sorted(newer_formats):
        _LOG.warning("timing log written in format %d, newer than %d: parsed as %d",
                     fmt, FORMAT_VERSION, FORMAT_VERSION)
    return ParsedLog(provenance=provenance, timings=columns.frame(), malformed=malformed, unknown=unknown,
                     counts=counts, failures=_failure_frame(failures), latencies=latency_frame(latencies),
                     behind=behind)


def parse_logs(sources: Iterable[str | os.PathLike | Iterable[str]]) -> ParsedLog:
    """Parse several logs (the files of a tiled run, or several runs) into one `ParsedLog`."""
    parsed = [parse_log(source) for source in sources]
    if not parsed:
        return parse_log([])
    frames = [p.timings for p in parsed if len(p.timings)]
    timings = pd.concat(frames, ignore_index=True) if frames else parsed[0].timings
    failure_frames = [p.failures for p in parsed if len(p.failures)]
    failures = pd.concat(failure_frames, ignore_index=True) if failure_frames else parsed[0].failures
    latency_frames = [p.latencies for p in parsed if len(p.latencies)]
    return ParsedLog(
        provenance=[rec for p in parsed for rec in p.provenance],
        timings=timings,
        malformed=sum(p.malformed for p in parsed),
        unknown=sum(p.unknown for p in parsed),
        counts=[rec for p in parsed for rec in p.counts],
        failures=failures,
        latencies=pd.concat(latency_frames, ignore_index=True) if latency_frames else parsed[0].latencies,
        behind=[rec for p in parsed for rec in p.behind],
    )


def machine_info() -> dict[str, Any]:
    """The ``machine`` provenance entry: CPU count, physical memory, platform."""
    try:
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        memory = None
    return {"cpus": os.cpu_count(), "memory_bytes": memory, "platform": platform.platform()}


def toolkit_info() -> dict[str, Any]:
    """The ``toolkit_version`` and ``git_commit`` provenance entries.

    ``git_commit`` is the commit of the source tree the package runs from
    (``-dirty`` appended when it has uncommitted changes), or `None` outside a
    git checkout.
    """
    from importlib import metadata

    try:
        version = metadata.version("l1dbproto")
    except metadata.PackageNotFoundError:
        version = None
    commit = None
    here = Path(__file__).resolve().parent
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip() or None
        if commit:
            status = subprocess.run(
                ["git", "status", "--porcelain", "--untracked-files=no"],
                cwd=here, capture_output=True, text=True, timeout=10, check=True,
            ).stdout
            if status.strip():
                commit += "-dirty"
    except (OSError, subprocess.SubprocessError):
        commit = None
    return {"toolkit_version": version, "git_commit": commit}
