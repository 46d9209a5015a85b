"""Benchmark: this toolkit's Cassandra backend against production's ApdbCassandra, side by side.

One run, one Cassandra node, one workload. Each visit of the AP loop
(``dia_sim``: a full-density catalogue on a small pointing patch, the whole
field one tile) makes the same three reads and the same store on both
clients:

- ``toolkit``: `l1db.L1db` on a ``cassandra://`` URL (`l1db.cassandra.l1db_cassandra`);
- ``apdb``: ``lsst.dax.apdb.cassandra.ApdbCassandra`` from PyPI's
  lsst-dax-apdb, through its public API only (``ApdbCassandra.init_database``,
  ``Apdb.from_config``, ``getDiaObjects``, ``getDiaSources``,
  ``getDiaForcedSources``, ``store``).

Each client has its own keyspace (neither sees the other's rows), made with
the same replication factor, consistency level, spatial partitioning
(pixelization and level) and 30-day time partitions, and the same 12-month
history windows. Per visit, both clients read the same region at the same
visit time and are handed the same object IDs (those of the toolkit's
``getDiaObjects``); the visit's new DiaObjects, DiaSources and
DiaForcedSources are built once by the toolkit's `VisitSimulator` from the
toolkit's read results and stored by both. Which client goes first alternates
from visit to visit, for every operation.

Every operation is timed by wall clock and by this process's CPU time
(``os.times``' user and system seconds, every thread: the driver's I/O and callback threads
included); the server runs in other processes, so the CPU share is the
client's. The server's CPU (its JVM's utime + stime from /proc) is shown too
when its pid is known. The table gives per-visit medians over the second half
of the run.

Both clients live in this one process, so the script needs a Python that has
both lsst-dax-apdb and this toolkit (the ``apdb`` extra of setup.py); keep it
out of the project venv::

    python3 -m venv /tmp/apdb-venv
    /tmp/apdb-venv/bin/pip install -e ".[apdb]"
    /tmp/apdb-venv/bin/python benchmarks/bench_vs_apdb_cassandra.py --visits 30

(A Cassandra node must answer on the contact point: ``cassandra_nodes start``.)
"""

from __future__ import annotations

import argparse
import cProfile
import datetime
import os
import platform
import pstats
import signal
import socket
import sys
import tempfile
import time
import traceback
import warnings
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from _common import add_results_option, keep_results
from astropy.time import Time

from dia_sim.catalog import SourceCatalog, generate_catalog
from dia_sim.field import FieldTile
from dia_sim.options import RunOptions
from dia_sim.schedule import VisitSchedule
from dia_sim.visit_plan import plan_visit
from dia_sim.visit_sim import VisitSimulator
from l1db import L1db, open_l1db
from l1db.cassandra.server import default_run_dir
from l1db.scratch import Servers, drop_keyspace
from l1db.timer import TimingRecord
from l1db.timing_log import TimingLogWriter, machine_info, toolkit_info

CLIENTS = ("toolkit", "apdb")
#: Each client's name in the report (`write_timing_logs`).
CLIENT_LABELS = {"toolkit": "toolkit", "apdb": "ApdbCassandra"}
OPS = ("obj_select", "src_select", "fsrc_select", "store")
READS = OPS[:3]
TOOLKIT_KEYSPACE = "l1db_bench_vs"
APDB_KEYSPACE = "apdb_bench_vs"
#: Time partitions of both clients, days: dax_apdb's init_database has no
#: parameter for it, and its default is 30 (the toolkit's too).
TIME_PARTITION_DAYS = 30
#: With --time-partition-tables, the tables both clients make before the run cover the first visit's
#: history window and this many days after the first visit (a run lasts hours to days): the same dates
#: on both, so that both read the same number of per-period tables (dax_apdb reads every existing
#: table of a window, the toolkit those of its periods that exist).
PERIOD_MARGIN_DAYS = 60

EPILOG = """\
what is compared, and what is not the same on both sides (also printed with the results):
  - keyspaces: --toolkit-keyspace and --apdb-keyspace, both re-created at the start (replication
    factor --replication-factor, SimpleStrategy) and dropped at the end unless --keep;
  - partitioning: --pixelization/--pixel-level for both, 30-day time partitions (the toolkit counts
    them from MJD 0, dax_apdb from 1970-01-01: the boundaries differ, the lengths do not); dax_apdb with
    time_partition_tables=False (one table per kind, like the toolkit), or with --time-partition-tables
    both with one table per time partition, the same dates covered on both (PERIOD_MARGIN_DAYS);
  - reads: the toolkit reads 7 DiaObjectLast columns, dax_apdb the 10 of its DiaObjectLast; both read
    every DiaSource and DiaForcedSource column; dax_apdb returns every object of the covering pixels and
    is trimmed to the field here, inside its timing (the toolkit trims inside the call);
  - stores: the same frames (column names and types of both schemas agree: both come from
    lsst-sdm-schemas' apdb.yaml); dax_apdb also writes DiaSourceToPartition, ApdbVisitDetector and
    DiaObjectDedup (its production layout), the toolkit L1dbVisit;
  - replica chunks (--replica, off by default on both): both also write each visit's rows into their
    replica-chunk tables (600-s chunks), dax_apdb's enable_replica and the toolkit's enable_replica.

examples:
  bench_vs_apdb_cassandra.py --visits 30 --catalog /tmp/sources.npy
  bench_vs_apdb_cassandra.py --visits 6 --consistency ONE --profile /tmp/toolkit.prof
  bench_vs_apdb_cassandra.py --visits 30 --replica --results benchmarks/results/vs_apdb_replica
"""


# -- timing -----------------------------------------------------------------------------


class ServerCpu:
    """CPU seconds (utime + stime) of the Cassandra server's process, from /proc; 0 without a pid."""

    def __init__(self, pid: int | None) -> None:
        self.pid = pid
        self._tick = os.sysconf("SC_CLK_TCK")

    def __call__(self) -> float:
        if self.pid is None:
            return 0.0
        try:
            fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return 0.0
        return (int(fields[11]) + int(fields[12])) / self._tick


def find_server_pid(text: str | None, run_dir: Path) -> int | None:
    """The server pid of ``--server-pid``, or of node 1 of ``run_dir``, or `None`."""
    if text:
        return int(text)
    pid_file = run_dir / "node1" / "cassandra.pid"
    try:
        pid = int(pid_file.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    return pid if Path(f"/proc/{pid}").exists() else None


def server_heap(pid: int | None) -> str:
    """The -Xmx of the server's JVM, or "?"."""
    if pid is None:
        return "?"
    try:
        args = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return "?"
    heaps = [a[4:].decode() for a in args if a.startswith(b"-Xmx")]
    return heaps[-1] if heaps else "?"


class RequestCounter:
    """Counts the requests the driver sends (a batch is one), through its request-init listener."""

    def __init__(self) -> None:
        self.n = 0

    def __call__(self, response_future: Any) -> None:
        self.n += 1

    def attach(self, session: Any) -> None:
        session.add_request_init_listener(self)


class Recorder:
    """Times operations: wall, client CPU and server CPU seconds, rows; one record per call.

    A call that fails with a driver error (e.g. ``ConnectionBusy`` when the
    node falls behind a burst of large batches) is tried again, up to
    ``retries`` times, after ``pause`` seconds: every operation is idempotent
    on both clients (a store rewrites the same keys). The failed attempts are
    kept in `failures`; the record times the attempt that succeeded.
    """

    def __init__(self, server_cpu: ServerCpu, profiler: cProfile.Profile | None, retries: int = 2,
                 pause: float = 5.0, csv: Path | None = None) -> None:
        self.csv = csv
        self.requests = RequestCounter()
        self.records: list[dict[str, Any]] = []
        self.failures: list[str] = []
        #: (visit, client, op, attempt, error, reason, seconds lost) of each failed attempt.
        self.failed: list[tuple[int, str, str, int, str, str, float]] = []
        self.server_cpu = server_cpu
        self.profiler = profiler
        self.retries = retries
        self.pause = pause

    def run(self, visit: int, client: str, op: str, first: bool, call: Callable[[], Any],
            rows: Callable[[Any], int]) -> Any:
        from cassandra import DriverException
        from cassandra.cluster import NoHostAvailable

        for attempt in range(self.retries + 1):
            tried = time.perf_counter()
            try:
                return self._timed(visit, client, op, first, call, rows, attempt)
            except (DriverException, NoHostAvailable) as exc:
                reason = " ".join(str(exc).split())[:200]
                self.failed.append((visit, client, op, attempt + 1, type(exc).__name__, reason,
                                    time.perf_counter() - tried))
                self.failures.append(f"visit {visit} {client} {op} attempt {attempt + 1}: "
                                     f"{type(exc).__name__}: {reason}")
                print(f"visit {visit}: {client} {op} failed ({type(exc).__name__}), "
                      f"{'retrying' if attempt < self.retries else 'giving up'}", file=sys.stderr, flush=True)
                if attempt == self.retries:
                    raise
                time.sleep(self.pause)
        raise AssertionError("unreachable")

    def _timed(self, visit: int, client: str, op: str, first: bool, call: Callable[[], Any],
               rows: Callable[[Any], int], attempt: int) -> Any:
        profile = self.profiler is not None and client == "toolkit"
        requests0 = self.requests.n
        server0 = self.server_cpu()
        times0 = os.times()
        wall0 = time.perf_counter()
        if profile:
            self.profiler.enable()
        try:
            result = call()
        finally:
            if profile:
                self.profiler.disable()
        wall = time.perf_counter() - wall0
        times1 = os.times()
        user, sys_ = times1.user - times0.user, times1.system - times0.system
        server = self.server_cpu() - server0
        record = {"visit": visit, "client": client, "op": op, "first": first, "attempt": attempt + 1,
                  "wall": wall, "cpu": user + sys_, "user": user, "sys": sys_, "server_cpu": server,
                  "rows": rows(result),
                  "requests": self.requests.n - requests0}
        self.records.append(record)
        if self.csv is not None:
            # Appended as it goes, so that a run cut short leaves what it measured.
            new = not self.records[:-1]
            pd.DataFrame([record]).to_csv(self.csv, mode="w" if new else "a", header=new, index=False)
        return result


# -- the two clients ----------------------------------------------------------------------


def period_dates(args: argparse.Namespace, first_visit_mjd: float) -> tuple[float, float] | None:
    """MJD TAI span of the per-period tables of both clients (``--time-partition-tables``); `None` without."""
    if not args.time_partition_tables:
        return None
    return first_visit_mjd - args.months * 30.0, first_visit_mjd + PERIOD_MARGIN_DAYS


def make_toolkit(args: argparse.Namespace, work: Path, periods: tuple[float, float] | None = None) -> L1db:
    """A toolkit client on a fresh keyspace; with ``periods``, its per-period tables of those dates made."""
    config = work / "toolkit.cfg"
    config.write_text(
        f"[database]\nurl = cassandra://{args.hosts}/{args.toolkit_keyspace}\n\n"
        f"[l1db]\nread_sources_months = {args.months}\nread_forced_sources_months = {args.months}\n"
        f"enable_replica = {int(args.replica)}\n\n"
        f"[cassandra]\nreplication_factor = {args.replication_factor}\n"
        f"read_consistency = {args.consistency}\nwrite_consistency = {args.consistency}\n"
        f"part_pixelization = {args.pixelization}\npart_pixel_level = {args.pixel_level}\n"
        f"time_partition_days = {TIME_PARTITION_DAYS}\n"
        f"time_partition_tables = {int(periods is not None)}\n"
    )
    l1db = open_l1db(config)
    l1db.makeSchema(drop=True)
    if periods is not None:
        from l1db.cassandra.l1db_cassandra import L1dbCassandra
        from l1db.cassandra.schema import PERIOD_TABLES

        assert isinstance(l1db, L1dbCassandra)
        first, last = (int(p) for p in l1db.partitioning.time_partitions(np.array(periods)))
        l1db.make_periods({table: range(first, last + 1) for table in PERIOD_TABLES})
    return l1db


def make_apdb(args: argparse.Namespace, periods: tuple[float, float] | None = None) -> Any:
    """An ApdbCassandra client on a fresh keyspace, configured like the toolkit's."""
    from lsst.dax.apdb import Apdb
    from lsst.dax.apdb.cassandra import ApdbCassandra

    # Its per-period tables of the same dates as the toolkit's (init_database makes them).
    dates = {} if periods is None else {
        f"time_partition_{end}": Time(mjd, format="mjd", scale="tai").isot
        for end, mjd in zip(("start", "end"), periods)}

    config = ApdbCassandra.init_database(
        tuple(args.hosts.split(",")),
        args.apdb_keyspace,
        read_sources_months=args.months,
        read_forced_sources_months=args.months,
        part_pixelization=args.pixelization,
        part_pix_level=args.pixel_level,
        time_partition_tables=periods is not None,
        **dates,
        enable_replica=args.replica,
        read_consistency=args.consistency,
        write_consistency=args.consistency,
        replication_factor=args.replication_factor,
        drop=True,
    )
    config.partitioning.query_per_spatial_part = args.apdb_query_per_spatial_part
    if config.partitioning.time_partition_days != TIME_PARTITION_DAYS:
        raise RuntimeError(f"dax_apdb time partitions are {config.partitioning.time_partition_days} days")
    return Apdb.from_config(config)


def apdb_frame(frame: pd.DataFrame | None, drop: tuple[str, ...] = ()) -> pd.DataFrame | None:
    """The toolkit's frame as dax_apdb's store takes it.

    The columns and types already agree (both schemas are lsst-sdm-schemas'
    apdb.yaml 10.0.0); only the columns the store owns are dropped, and the
    index is a plain range.
    """
    if frame is None:
        return None
    return frame.drop(columns=[c for c in drop if c in frame]).reset_index(drop=True)


# -- the run ----------------------------------------------------------------------------------


def run(args: argparse.Namespace, catalog: SourceCatalog, work: Path, recorder: Recorder,
        notes: dict[str, Any]) -> None:
    """Run ``args.visits`` visits on both clients, filling ``notes`` as it goes (for a report after a failure)."""
    options = RunOptions(num_visits=args.visits, pointing_area=tuple(float(x) for x in args.patch.split(",")),
                         seed=args.seed)
    sim = VisitSimulator(options.sim)
    sim.warm_up()
    periods = period_dates(args, float(options.start_time))
    toolkit = make_toolkit(args, work, periods)
    toolkit.warm_up()  # its numba kernels, as ap_proto does before the first visit
    notes["server_version"] = toolkit.serverVersion()[1]
    notes["toolkit_options"] = dict(toolkit.options)
    apdb = make_apdb(args, periods)
    notes["apdb_config"] = apdb.getConfig()
    # Instrumentation only (the driver's own listener hook, on each client's sessions): requests per call.
    for session in (toolkit._session, toolkit._plain, apdb._context.session):
        recorder.requests.attach(session)
    raw_apdb_objects: list[int] = notes["apdb_raw_objects"]
    mismatches: list[str] = notes["mismatches"]
    schedule = VisitSchedule(options.start_visit_id, float(options.start_time), options.interval)
    t_start = time.perf_counter()
    try:
        for i in range(args.visits):
            visit_id = options.start_visit_id + i
            plan = plan_visit(visit_id, schedule.mjd(visit_id), options)
            field = FieldTile(plan.ra, plan.dec, options.fov, 1, 0)
            region = field.region
            # dax_apdb takes astropy times (the toolkit MJDs too): both get this one.
            vtime = Time(plan.mjd, format="mjd", scale="tai")
            rng = np.random.default_rng([options.seed, visit_id, 1])
            cat_ra, cat_dec, _ = catalog.sources_in_region(field)
            detections = sim.detect(rng, field, cat_ra, cat_dec)
            order = CLIENTS if i % 2 == 0 else CLIENTS[::-1]

            def in_field(objects: pd.DataFrame, raw: list[int] | None = None) -> pd.DataFrame:
                if raw is not None:
                    raw.append(len(objects))
                keep = field.contains(objects["ra"].to_numpy(dtype=np.float64),
                                      objects["dec"].to_numpy(dtype=np.float64))
                return objects[keep].reset_index(drop=True)

            calls: dict[str, dict[str, Callable[[], Any]]] = {
                "toolkit": {"obj_select": lambda: in_field(toolkit.getDiaObjects(region))},
                "apdb": {"obj_select": lambda: in_field(apdb.getDiaObjects(region), raw_apdb_objects)},
            }
            objects: dict[str, pd.DataFrame] = {}
            for k, client in enumerate(order):
                objects[client] = recorder.run(visit_id, client, "obj_select", k == 0, calls[client]["obj_select"], len)
            # Both history reads get the same IDs: those of the toolkit's objects.
            ids = objects["toolkit"]["diaObjectId"]
            calls["toolkit"]["src_select"] = lambda: toolkit.getDiaSources(region, ids, vtime)
            calls["apdb"]["src_select"] = lambda: apdb.getDiaSources(region, ids, vtime)
            calls["toolkit"]["fsrc_select"] = lambda: toolkit.getDiaForcedSources(region, ids, vtime)
            calls["apdb"]["fsrc_select"] = lambda: apdb.getDiaForcedSources(region, ids, vtime)
            history: dict[str, dict[str, pd.DataFrame]] = {c: {} for c in CLIENTS}
            for op in ("src_select", "fsrc_select"):
                for k, client in enumerate(order):
                    history[client][op] = recorder.run(visit_id, client, op, k == 0, calls[client][op], len)
            check_same(visit_id, objects, history, mismatches)

            association = sim.associate(detections, objects["toolkit"])
            new_objects, sources, forced = sim.build_rows(
                rng, visit_id, 0, plan.mjd, plan.band, detections, association, objects["toolkit"],
                history["toolkit"]["src_select"], history["toolkit"]["fsrc_select"])
            new_objects = new_objects if len(new_objects) else None
            sources = sources if len(sources) else None
            forced = forced if len(forced) else None
            # Outside the timing: a pipeline would make dax_apdb's frames directly.
            apdb_objects = apdb_frame(new_objects, drop=("validityStartMjdTai", "validityEndMjdTai"))
            apdb_sources, apdb_forced = apdb_frame(sources), apdb_frame(forced)
            stored = sum(len(f) for f in (new_objects, sources, forced) if f is not None)
            calls["toolkit"]["store"] = lambda: toolkit.store(vtime, new_objects, sources, forced,
                                                              visit_id=visit_id, tile=0, n_tiles=1)
            calls["apdb"]["store"] = lambda: apdb.store(vtime, apdb_objects, apdb_sources, apdb_forced)
            for k, client in enumerate(order):
                recorder.run(visit_id, client, "store", k == 0, calls[client]["store"], lambda _: stored)
            if not args.quiet:
                last = {(r["client"], r["op"]): r["wall"] for r in recorder.records if r["visit"] == visit_id}
                print(f"visit {visit_id:3d}: objects {len(objects['toolkit']):6d}, "
                      f"history {len(history['toolkit']['src_select']):7d} + "
                      f"{len(history['toolkit']['fsrc_select']):7d}, stored {stored:6d}; DB s "
                      + ", ".join(f"{c} {sum(last[(c, op)] for op in OPS):.2f}" for c in CLIENTS)
                      + f"  [{time.perf_counter() - t_start:.0f} s]", file=sys.stderr, flush=True)
            notes["visits_done"] = i + 1
    finally:
        toolkit.close()


def check_same(visit: int, objects: dict[str, pd.DataFrame], history: dict[str, dict[str, pd.DataFrame]],
               mismatches: list[str]) -> None:
    """Note where the two clients read different rows (they hold the same data, so they should not)."""
    a = np.sort(objects["toolkit"]["diaObjectId"].to_numpy(dtype=np.int64))
    b = np.sort(objects["apdb"]["diaObjectId"].to_numpy(dtype=np.int64))
    if not np.array_equal(a, b):
        mismatches.append(f"visit {visit}: getDiaObjects {len(a)} (toolkit) vs {len(b)} (apdb) objects")
    for op, key in (("src_select", "diaSourceId"), ("fsrc_select", "diaForcedSourceId")):
        a = np.sort(history["toolkit"][op][key].to_numpy(dtype=np.int64))
        frame = history["apdb"][op]
        b = np.sort(frame[key].to_numpy(dtype=np.int64)) if frame is not None else np.empty(0, np.int64)
        if not np.array_equal(a, b):
            mismatches.append(f"visit {visit}: {op} {len(a)} (toolkit) vs {len(b)} (apdb) rows")


# -- the report ---------------------------------------------------------------------------


def write_timing_logs(records: pd.DataFrame, recorder: Recorder, out: Path,
                      provenance: dict[str, Any]) -> dict[str, Path]:
    """One timing log per client in ``out`` (`l1db.timing_log`'s format), for `keep_results`' report.

    Each operation's record is its attempt that succeeded. ``visit`` is the sum of the
    visit's three reads and its store: this benchmark simulates outside its timings, so
    the report's "visit" is the client's DB time per visit. Failed attempts are failure
    records (``wait``: the pause before the next attempt).

    Returns
    -------
    logs : `dict` [`str`, `pathlib.Path`]
        Client label (`CLIENT_LABELS`) -> its log.
    """
    logs = {}
    for client, label in CLIENT_LABELS.items():
        logs[label] = out / f"{label}.jsonl"
        logs[label].unlink(missing_ok=True)
        mine = records[records["client"] == client]
        with TimingLogWriter(logs[label]) as writer:
            writer.provenance({**provenance, "client": label})
            for visit, group in mine.groupby("visit", sort=True):
                for rec in group.itertuples():
                    writer.timing(TimingRecord(rec.op, rec.wall, rec.user, rec.sys, int(rec.rows)), int(visit))
                writer.timing(TimingRecord("visit", group["wall"].sum(), group["user"].sum(), group["sys"].sum()),
                              int(visit))
            for visit, who, op, attempt, error, reason, lost in recorder.failed:
                if who == client:
                    retried = attempt <= recorder.retries
                    writer.failure(visit, 0, op, error, reason, attempt, lost,
                                   wait=recorder.pause if retried else 0.0, retry=retried)
    return logs


def summarize(records: pd.DataFrame, visits: int) -> pd.DataFrame:
    """Per-visit medians of the second half of the run: one row per (op, client)."""
    late = records[records["visit"] > records["visit"].min() - 1 + visits // 2]
    db = (late.groupby(["visit", "client"])[["wall", "cpu", "server_cpu", "requests"]].sum().reset_index()
          .assign(op="db_total", rows=0))
    late = pd.concat([late, db], ignore_index=True)
    table = late.groupby(["op", "client"])[["wall", "cpu", "server_cpu", "rows", "requests"]].median()
    return table


def per_visit_ratios(records: pd.DataFrame, visits: int) -> pd.Series:
    """ApdbCassandra / toolkit DB time (3 reads + store) of each visit of the second half."""
    late = records[records["visit"] > records["visit"].min() - 1 + visits // 2]
    totals = late.groupby(["visit", "client"])["wall"].sum().unstack()
    return totals["apdb"] / totals["toolkit"]


def markdown(table: pd.DataFrame, server_cpu: bool) -> str:
    ops = (*OPS, "db_total")
    names = {"obj_select": "getDiaObjects", "src_select": "getDiaSources", "fsrc_select": "getDiaForcedSources",
             "store": "store", "db_total": "**DB total** (3 reads + store)"}
    head = ["operation", "rows (toolkit / apdb)", "requests (toolkit / apdb)", "toolkit s", "ApdbCassandra s",
            "ratio apdb/toolkit",
            "client CPU share toolkit", "client CPU share apdb"]
    if server_cpu:
        head += ["server CPU s toolkit", "server CPU s apdb"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for op in ops:
        tk, ap = table.loc[(op, "toolkit")], table.loc[(op, "apdb")]
        rows = "" if op == "db_total" else f"{int(tk['rows']):,} / {int(ap['rows']):,}"
        requests = f"{int(tk['requests']):,} / {int(ap['requests']):,}"
        cells = [names[op], rows, requests, f"{tk['wall']:.3f}", f"{ap['wall']:.3f}", f"{ap['wall'] / tk['wall']:.1f}x",
                 f"{tk['cpu'] / tk['wall']:.0%}", f"{ap['cpu'] / ap['wall']:.0%}"]
        if server_cpu:
            cells += [f"{tk['server_cpu']:.2f}", f"{ap['server_cpu']:.2f}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def versions() -> str:
    import cassandra

    names = ("lsst-dax-apdb", "lsst-sdm-schemas", "lsst-felis", "lsst-sphgeom", "numpy", "pandas", "astropy",
             "l1dbproto")
    found = []
    for name in names:
        try:
            found.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            found.append(f"{name} (not installed)")
    found.insert(0, f"cassandra-driver {cassandra.__version__}")
    commit = toolkit_info().get("git_commit")
    return ", ".join(found) + f" (toolkit git commit {commit or 'unknown'})"


def main() -> int:
    parser = argparse.ArgumentParser(
        description="This toolkit's Cassandra backend against production's ApdbCassandra (lsst-dax-apdb): "
                    "the same visits, node, consistency and partitioning; per-visit medians of the three reads "
                    "and the store, and the client CPU share of each.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--visits", type=int, default=30,
                        help="visits to run (default 30: ~40 s each on 2 cores, fields overlap from visit 5 on)")
    parser.add_argument("--catalog", type=Path, default=None,
                        help="full-density catalogue .npy (default: made with seed 1 in a temporary folder)")
    parser.add_argument("--patch", default="0,20,-30,-10",
                        help="pointing area RA_MIN,RA_MAX,DEC_MIN,DEC_MAX, degrees (default 0,20,-30,-10)")
    parser.add_argument("--seed", type=int, default=1, help="seed of pointings and simulation (default 1)")
    parser.add_argument("--hosts", default=Servers.cassandra_hosts,
                        help=f"Cassandra contact points, comma-separated (default {Servers.cassandra_hosts})")
    parser.add_argument("--consistency", default="QUORUM", choices=("ONE", "QUORUM", "ALL"),
                        help="read and write consistency of both clients (default QUORUM)")
    parser.add_argument("--replication-factor", type=int, default=1, help="replication factor of both keyspaces")
    parser.add_argument("--pixelization", default="mq3c", choices=("htm", "q3c", "mq3c", "healpix"),
                        help="spatial partitioning of both (default mq3c, the toolkit's default)")
    parser.add_argument("--pixel-level", type=int, default=7,
                        help="level of the spatial partitions of both (default 7, the toolkit's default; "
                             "dax_apdb's own default is MQ3C 11)")
    parser.add_argument("--months", type=int, default=12, help="history windows of both, 30-day months (default 12)")
    parser.add_argument("--apdb-query-per-spatial-part", action="store_true",
                        help="dax_apdb: one query per spatial partition instead of its default, one query "
                             "with apdb_part IN (...) over all of them")
    parser.add_argument("--time-partition-tables", action="store_true",
                        help="both clients keep one table per time partition (dax_apdb's time_partition_tables, "
                             "the default of its init_database; the toolkit's [cassandra] time_partition_tables), "
                             "made before the run for the same dates on both (default: one table per kind)")
    parser.add_argument("--replica", action="store_true",
                        help="both clients also write the replica chunks production keeps for the Prompt Products "
                             "Database (dax_apdb's enable_replica, the toolkit's [l1db] enable_replica; 600-s "
                             "chunks on both); default off on both")
    parser.add_argument("--toolkit-keyspace", default=TOOLKIT_KEYSPACE, help=f"(default {TOOLKIT_KEYSPACE})")
    parser.add_argument("--apdb-keyspace", default=APDB_KEYSPACE, help=f"(default {APDB_KEYSPACE})")
    parser.add_argument("--keep", action="store_true", help="keep both keyspaces at the end")
    parser.add_argument("--run-dir", type=Path, default=default_run_dir(),
                        help="cassandra_nodes run dir, to find the server's pid (default, as for cassandra_nodes: "
                             f"$L1DB_CASSANDRA_RUN_DIR if set, else run/cassandra: {default_run_dir()})")
    parser.add_argument("--server-pid", default=None,
                        help="pid of the Cassandra JVM, for its CPU time and heap (default: that of "
                             "RUN_DIR/node1/cassandra.pid if it runs; none found: no server CPU columns)")
    parser.add_argument("--profile", type=Path, default=None,
                        help="cProfile the toolkit's calls into this file and print the top functions "
                             "(slows the toolkit: use a separate run for the timings)")
    parser.add_argument("--csv", type=Path, default=None,
                        help="also write every timing record to this CSV, as the run goes")
    parser.add_argument("-q", "--quiet", action="store_true", help="no per-visit progress lines on stderr")
    add_results_option(parser)
    args = parser.parse_args()
    if args.visits < 2:
        parser.error("--visits must be at least 2")
    if args.toolkit_keyspace == args.apdb_keyspace:
        parser.error("the two clients need two keyspaces")
    try:
        import lsst.dax.apdb  # noqa: F401
    except ImportError:
        print("bench_vs_apdb_cassandra: lsst-dax-apdb is not installed in this Python: run it from a venv "
              "made with pip install -e '.[apdb]' (not the project venv; see the module docstring)", file=sys.stderr)
        return 2
    # dax_apdb warns about its own deprecations on every call; they say nothing about the timings.
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", category=DeprecationWarning)

    server_pid = find_server_pid(args.server_pid, args.run_dir)
    profiler = cProfile.Profile() if args.profile else None
    recorder = Recorder(ServerCpu(server_pid), profiler, csv=args.csv)

    def on_sigterm(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt("SIGTERM")

    # A SIGTERM (e.g. a job scheduler) ends the run with a report of the visits done.
    signal.signal(signal.SIGTERM, on_sigterm)
    started = datetime.datetime.now().astimezone()
    load_start = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        catalog_path = args.catalog or work / "sources.npy"
        if not catalog_path.exists():
            print(f"making the catalogue {catalog_path} ...", file=sys.stderr)
            generate_catalog(catalog_path, per_visit=10_000, seed=1)
        catalog = SourceCatalog.load(catalog_path)
        notes: dict[str, Any] = {"mismatches": [], "visits_done": 0, "apdb_raw_objects": []}
        stopped = None
        try:
            run(args, catalog, work, recorder, notes)
        except (Exception, KeyboardInterrupt) as exc:  # noqa: BLE001 - reported below with what was measured
            traceback.print_exc()
            stopped = f"{type(exc).__name__}: {' '.join(str(exc).split())[:300]}"
        finally:
            if not args.keep:
                for keyspace in (args.toolkit_keyspace, args.apdb_keyspace):
                    try:
                        drop_keyspace(args.hosts, keyspace)
                    except Exception as exc:  # noqa: BLE001 - the node may be gone
                        print(f"bench_vs_apdb_cassandra: could not drop keyspace {keyspace}: {exc}",
                              file=sys.stderr)
    load_end = os.getloadavg()
    records = pd.DataFrame(recorder.records)
    visits = notes["visits_done"]
    if visits < 2:
        print(f"bench_vs_apdb_cassandra: stopped after {visits} visit(s): {stopped}", file=sys.stderr)
        return 1
    records = records[records["visit"] <= visits]
    table = summarize(records, visits)
    apdb_config = notes["apdb_config"]
    first, last = visits // 2 + 1, visits
    print("## This toolkit's Cassandra backend vs ApdbCassandra (lsst-dax-apdb)\n")
    if stopped:
        print(f"**The run stopped after visit {visits} of {args.visits}** ({stopped}); the table is of the "
              f"visits completed.\n")
    print(f"{visits} visits of a full-density catalogue (per_visit 10,000, seed 1), patch {args.patch}, "
          f"seed {args.seed}, 3.5-degree field, one tile; medians per visit over visits {first}-{last}, "
          f"seconds. One Cassandra {notes['server_version']} node at {args.hosts} (heap {server_heap(server_pid)}), "
          f"replication factor "
          f"{args.replication_factor}, {args.consistency} reads and writes on both sides; "
          f"{args.pixelization.upper()} level {args.pixel_level} spatial partitions, {TIME_PARTITION_DAYS}-day "
          f"time partitions, {args.months}-month history windows. Client CPU share = this process's CPU "
          f"seconds (all threads) / wall seconds of the call.\n")
    print(markdown(table, server_pid is not None))
    tk_total = table.loc[("db_total", "toolkit"), "wall"]
    ap_total = table.loc[("db_total", "apdb"), "wall"]
    ratio = ap_total / tk_total
    per_visit = per_visit_ratios(records, visits)
    print(f"\nDB time per visit (medians): toolkit {tk_total:.3f} s, ApdbCassandra {ap_total:.3f} s: the toolkit is "
          f"{ratio:.2f}x faster (target 5x: {'met' if ratio >= 5 else 'NOT met'}). Visit by visit the ratio is "
          f"{per_visit.median():.2f}x in the median, {per_visit.min():.2f}x to {per_visit.max():.2f}x; "
          f"{int((per_visit < 3).sum())} of {len(per_visit)} visits are below 3x (target: none).")
    per_op = []
    for op in OPS:
        r = table.loc[(op, "apdb"), "wall"] / table.loc[(op, "toolkit"), "wall"]
        if r < 1:
            per_op.append(f"{op} ({1 / r:.1f}x slower)")
    if per_op:
        print("The toolkit is slower at: " + ", ".join(per_op) + ".")
    print("\nSetup and caveats:")
    print(f"- machine: {platform.node() or socket.gethostname()}, {os.cpu_count()} CPUs, "
          f"{os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.0f} GiB, {platform.platform()}, "
          f"Python {platform.python_version()}; {started:%Y-%m-%d %H:%M %Z}; load average "
          f"{load_start[0]:.2f} at start, {load_end[0]:.2f} at end (the server shares the cores with this client "
          f"and any other job)")
    print(f"- versions: {versions()}")
    print(f"- replica chunks: {'written by both (enable_replica)' if args.replica else 'off on both'}")
    print(f"- ApdbCassandra config: time_partition_tables={apdb_config.partitioning.time_partition_tables} "
          f"(the toolkit: {notes['toolkit_options'].get('time_partition_tables')}), "
          f"query_per_spatial_part={apdb_config.partitioning.query_per_spatial_part} "
          f"(the toolkit: spatial_queries={notes['toolkit_options'].get('spatial_queries')}), "
          f"query_per_time_part={apdb_config.partitioning.query_per_time_part}, "
          f"part_pix_max_ranges={apdb_config.partitioning.part_pix_max_ranges}, "
          f"protocol v{apdb_config.connection_config.protocol_version} (the toolkit: v5), read_concurrency "
          f"{apdb_config.connection_config.read_concurrency} (the toolkit: "
          f"{notes['toolkit_options'].get('read_concurrency')}), 100 writes in flight (the toolkit: "
          f"{notes['toolkit_options'].get('write_concurrency', 'read_concurrency')}), its own keyspace "
          f"{args.apdb_keyspace}; the toolkit's keyspace {args.toolkit_keyspace}")
    print("- same inputs: each visit's region, visit time and object IDs (the toolkit's getDiaObjects) go to "
          "both; the rows stored are built once, from the toolkit's reads, and handed to both stores "
          "(dax_apdb gets them without validityStart/EndMjdTai, which its store sets; no other column change "
          "was needed: both schemas are lsst-sdm-schemas apdb.yaml); which client goes first alternates per visit")
    print("- what differs by design: getDiaObjects reads 7 columns (toolkit) vs the 10 of dax_apdb's "
          "DiaObjectLast; dax_apdb returns every object of the covering partitions, trimmed to the field here "
          "inside its timing; both DiaObjectLast tables hold the 10 published columns; dax_apdb's store also "
          "writes DiaSourceToPartition, ApdbVisitDetector and "
          "DiaObjectDedup, one statement per object for DiaObjectLastToPartition, the toolkit's writes L1dbVisit")
    raw = notes["apdb_raw_objects"][first - 1:]
    if raw:
        print(f"- dax_apdb's getDiaObjects returned a median {int(np.median(raw)):,} objects per visit before the "
              f"trim to the field (the rows of every covering partition)")
    if recorder.failures:
        print(f"- {len(recorder.failures)} failed attempt(s), each tried again (the timings are those of the "
              f"attempt that succeeded): " + "; ".join(recorder.failures))
    else:
        print("- no operation failed")
    if notes["mismatches"]:
        print(f"- the two clients read different rows in {len(notes['mismatches'])} cases, e.g. "
              + "; ".join(notes["mismatches"][:3]))
    else:
        print("- check: every visit, both clients read exactly the same objects, DiaSources and DiaForcedSources")
    if args.results is not None:
        provenance = {**toolkit_info(), "backend": "cassandra", "server_version": notes["server_version"],
                      "machine": machine_info(), "seed": args.seed, "argv": sys.argv,
                      "benchmark": "bench_vs_apdb_cassandra", "per_visit": 10_000,
                      "config": {k: str(v) for k, v in vars(args).items()},
                      "load_average": [round(load_start[0], 2), round(load_end[0], 2)]}
        with tempfile.TemporaryDirectory() as tmp:
            logs = write_timing_logs(records, recorder, Path(tmp), provenance)
            keep_results(logs, args.results, f"This toolkit vs ApdbCassandra, {visits} visits")
    if profiler is not None:
        profiler.dump_stats(args.profile)
        print(f"\ncProfile of the toolkit's calls (all visits) in {args.profile}; the timings above include "
              f"its overhead. Top 25 by cumulative time:\n")
        pstats.Stats(profiler, stream=sys.stdout).sort_stats("cumulative").print_stats(25)
    return 0


if __name__ == "__main__":
    sys.exit(main())
