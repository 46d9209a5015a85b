"""The simulated Alert Production loop: visits, tiles, database calls, timing.

Per visit (and per tile with ``divide > 1``), in the original prototype's order:

1. simulate the DiaSources of the field (``sim_detect``);
2. read the DiaObjects in the field (``obj_select``);
3. associate DiaSources with DiaObjects by position (``sim_associate``);
4. read the DiaSource and DiaForcedSource history (``src_select``, ``fsrc_select``);
5. build new DiaObject versions, DiaSources and DiaForcedSources (``sim_rows``);
6. store the visit atomically, recording it in L1dbVisit (``store`` and the
   per-table operations timed inside `l1db.L1db.store`).

Every step writes a timing record (`l1db.timing_log`), once the tile has
succeeded. Everything random is drawn from generators seeded by (seed, visit)
and (seed, visit, tile), so a visit is the same whether it runs in the first
run, after a resume, or in a retry.

Failures: a connection-level database error (a server restart, a failover, a
Cassandra node gone: `l1db.errors.is_retryable`) ends the tile's attempt; the
connections are closed and the tile is tried again, up to ``retry_attempts``
times after waits of ``retry_wait`` seconds doubling each time
(`run_with_retries`). Every failed attempt writes a failure record; its
timing records are dropped, so that the retried visit's operations hold only
the attempt that succeeded. When the retries are exhausted the run stops
(`VisitFailed`) and can be resumed later. A store whose commit was cut off is
looked up before the retry: if it was stored after all, it is not stored twice.

Tiles: the field is split into N x N squares or the camera's 189 detectors
(``divide``: `dia_sim.tiling`, `dia_sim.field.field_tiles`). The
tiles of a visit are tasks of a pool of workers (`dia_sim.tile_pool`: a Dask
cluster, local or distributed, of ``workers`` processes however many tiles
there are); each worker keeps its catalogue, database connection and warmed
simulator from tile to tile (`dia_sim.tile_task`). A visit ends when all its tiles
are stored. A task returns its tile's timing and failure records with its
result, once its data is stored, and the driver writes them to the run's one
timing log. An object near a tile edge belongs to exactly one tile, so a
source detected across the edge from its object starts a new object, as at a
detector edge.
"""

from __future__ import annotations

import dataclasses
import logging
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar, overload

import numpy as np
import pandas as pd
from astropy.time import Time

from l1db import MONTH_DAYS, L1db, open_l1db
from l1db.config import L1dbConfig
from l1db.errors import describe_error, is_retryable
from l1db.timer import Timer, TimingRecord, TimingSink
from l1db.timing_log import HeldRecords, TimingLogWriter, machine_info, toolkit_info

from .catalog import CatalogError, SourceCatalog
from .field import FieldTile
from .ids import MAX_VISIT
from .options import RunOptions
from .pointing import random_pointings
from .rows import BANDS
from .schedule import SECONDS_PER_DAY, VisitSchedule
from .tile_pool import TilePool
from .tile_task import RemoteTraceback, TileJob, TileOutcome, process_tile, release_worker_state, share_catalog
from .tiling import divide_of
from .visit_sim import VisitSimulator

__all__ = ["RunOptions", "VisitPlan", "TileResult", "TileProcessor", "ApLoop", "VisitFailed", "plan_visit",
           "run_with_retries"]

_LOG = logging.getLogger(__name__)

T = TypeVar("T")

@dataclasses.dataclass(frozen=True)
class VisitPlan:
    """What one visit is: its ID, time, pointing, band and the tiles to process."""

    visit_id: int
    mjd: float
    ra: float
    dec: float
    band: str
    tiles: tuple[int, ...]

    @property
    def time(self) -> Time:
        """Visit time (TAI)."""
        return Time(self.mjd, format="mjd", scale="tai")


@dataclasses.dataclass(frozen=True)
class TileResult:
    """Counts of one processed tile."""

    visit_id: int
    tile: int
    objects_read: int
    sources: int
    new_objects: int
    forced: int


def plan_visit(visit_id: int, time: Time | float, options: RunOptions,
               tiles: tuple[int, ...] | None = None) -> VisitPlan:
    """Pointing and band of a visit, drawn from a generator seeded by (seed, visit).

    ``time`` is the visit's time, a `Time` or an MJD (TAI).
    """
    rng = np.random.default_rng([options.seed, visit_id])
    ra, dec = random_pointings(rng, 1, options.sky, options.pointing_area, options.fov)
    band = BANDS[int(rng.integers(len(BANDS)))]
    if tiles is None:
        tiles = tuple(range(options.n_tiles))
    mjd = float(time.tai.mjd) if isinstance(time, Time) else float(time)
    return VisitPlan(visit_id, mjd, float(ra[0]), float(dec[0]), band, tiles)


def _nonempty(frame: pd.DataFrame | None) -> pd.DataFrame | None:
    return frame if frame is not None and len(frame) else None


class VisitFailed(RuntimeError):
    """A visit's work failed for good: its retries after connection-level errors are exhausted.

    The message is one line for a user; the run can be resumed later.
    """


def run_with_retries(
    attempt: Callable[[int], T],
    *,
    options: RunOptions,
    writer: TimingLogWriter | HeldRecords,
    visit: int,
    tile: int,
    current_op: Callable[[], str],
    reset: Callable[[], None],
) -> T:
    """Run ``attempt`` until it succeeds, retrying after connection-level database errors.

    Every failed attempt writes a failure record (`TimingLogWriter.failure`)
    and calls ``reset`` (close the connections: the next attempt makes new
    ones). A connection-level error (`l1db.errors.is_retryable`: a server
    restart, a failover, a node gone) is retried up to ``retry_attempts``
    times, after ``retry_wait`` seconds, doubled each time.

    Parameters
    ----------
    attempt : callable
        The work; called with the number of attempts that failed before.
    options : `RunOptions`
        ``retry_attempts`` and ``retry_wait``.
    writer : `TimingLogWriter` or `HeldRecords`
        Where the failure records go.
    visit, tile : `int`
        The visit (and tile) the work belongs to.
    current_op : callable
        The operation in progress, for the failure record.
    reset : callable
        Called after every failed attempt.

    Raises
    ------
    VisitFailed
        When the retries are exhausted.
    Exception
        An error not worth a retry, as it was raised (after its failure
        record); a `KeyboardInterrupt` is never caught.
    """
    failed = 0
    began = time.perf_counter()
    while True:
        start = time.perf_counter()
        try:
            return attempt(failed)
        except Exception as exc:
            lost = time.perf_counter() - start
            op = current_op()
            error, reason = describe_error(exc)
            retryable = is_retryable(exc)
            retry = retryable and failed < options.retry_attempts
            wait = options.retry_wait * 2**failed if retry else 0.0
            writer.failure(visit, tile, op, error, reason, attempt=failed + 1, lost=lost, wait=wait, retry=retry)
            try:
                reset()
            except Exception:  # noqa: BLE001 - closing what is broken may fail too
                _LOG.debug("closing the connections after a failure failed too", exc_info=True)
            where = f"visit {visit}" + (f" tile {tile}" if options.n_tiles > 1 else "")
            if not retry:
                if not retryable:
                    raise  # Not the database going away: as it is (a driver's error is one line, a bug a traceback).
                raise VisitFailed(
                    f"{where}: {op} failed {failed + 1} times in {time.perf_counter() - began:.0f} s, the last "
                    f"time with {error}: {reason}; giving up (run again to resume)"
                ) from exc
            _LOG.warning("%s: %s failed (%s: %s); retry %d of %d in %g s", where, op, error, reason,
                         failed + 1, options.retry_attempts, wait)
            time.sleep(wait)
            failed += 1


class TileProcessor:
    """One worker's share of the loop: an L1db connection, the catalogue, a simulator.

    Parameters
    ----------
    config : `L1dbConfig`
        Database configuration.
    catalog : `SourceCatalog` or path
        The variable-source catalogue.
    options : `RunOptions`
        Run options.
    """

    def __init__(self, config: L1dbConfig, catalog: SourceCatalog | str | Path, options: RunOptions) -> None:
        self.config = config
        self.options = options
        self._l1db: L1db | None = None  # connected at the first visit, within its retries
        self.catalog = catalog if isinstance(catalog, SourceCatalog) else SourceCatalog.load(catalog)
        self.sim = VisitSimulator(options.sim)
        # Compile the numba kernels now, so that no visit's timing includes it.
        self.sim.warm_up()
        self._op = "connect"

    @property
    def l1db(self) -> L1db:
        """The database client, connected again after a failure."""
        if self._l1db is None:
            self._op = "connect"
            self._l1db = open_l1db(self.config)
            # Its numba kernels too, before its first timed read (already compiled after a reconnect).
            self._l1db.warm_up()
        return self._l1db

    def close(self) -> None:
        """Close the database connections."""
        if self._l1db is not None:
            self._l1db.close()
            self._l1db = None

    def process(self, plan: VisitPlan, tile: int, writer: TimingLogWriter | HeldRecords) -> TileResult:
        """Simulate, read and store one tile of a visit, timing every step.

        A connection-level database error ends the attempt: the connections
        are closed, and the tile is tried again (`run_with_retries`). The
        timing records of an attempt are held until it succeeds, so that a
        failed attempt's reads never add to the retried visit's; its cost is
        in the failure record. Before every attempt, the first one included,
        the tile is looked up in L1dbVisit: a store whose commit was cut off,
        or a task that Dask runs again because the worker running it was lost
        after its commit, is not stored twice.

        Parameters
        ----------
        plan : `VisitPlan`
            The visit.
        tile : `int`
            The tile to process.
        writer : `TimingLogWriter` or `HeldRecords`
            Where the tile's timing and failure records go; timing records
            only once the tile is stored.

        Raises
        ------
        VisitFailed
            When the retries are exhausted (the tile was not stored).
        """
        opts = self.options
        field = FieldTile(plan.ra, plan.dec, opts.fov, opts.divide, tile)
        # Records of the attempt that failed last, and of its store's finished operations.
        failed_records: list[TimingRecord] = []

        def attempt(failed: int) -> TileResult:
            records: list[TimingRecord] = []
            if not opts.no_update:
                self._op = "connect"
                done, _ = self.l1db.storedTiles(plan.visit_id)
                if tile in done:
                    # The store committed although the connection (or the worker) was lost: keep what it did.
                    _write(writer, failed_records, plan.visit_id, tile)
                    return TileResult(plan.visit_id, tile, 0, 0, 0, 0)
            try:
                with self.l1db.timing(records.append):
                    result = self._process(plan, tile, field, records.append)
            except BaseException:
                failed_records[:] = records + (self._l1db.unconfirmed_records if self._l1db is not None else [])
                raise
            _write(writer, records, plan.visit_id, tile)
            return result

        return run_with_retries(attempt, options=opts, writer=writer, visit=plan.visit_id, tile=tile,
                                current_op=lambda: self._op, reset=self.close)

    def _timer(self, op: str, sink: TimingSink) -> Timer:
        """A `Timer` of ``op``, which is from now on the operation in progress."""
        self._op = op
        return Timer(op, sink)

    def _process(self, plan: VisitPlan, tile: int, field: FieldTile, sink: TimingSink) -> TileResult:
        opts = self.options
        sim_records: list[TimingRecord] = []
        rng = np.random.default_rng([opts.seed, plan.visit_id, tile + 1])
        visit_time = plan.time
        explain = opts.explain
        with Timer("visit", sink):
            with self._timer("sim_detect", _both(sink, sim_records)) as timer:
                cat_ra, cat_dec, _ = self.catalog.sources_in_region(field)
                detections = self.sim.detect(rng, field, cat_ra, cat_dec)
                timer.rows = len(detections)
            with self._timer("obj_select", sink) as timer:
                objects = self.l1db.getDiaObjects(field.region, explain=explain)
                objects = objects[field.contains(objects["ra"].to_numpy(), objects["dec"].to_numpy())]
                objects = objects.reset_index(drop=True)
                timer.rows = len(objects)
            with self._timer("sim_associate", _both(sink, sim_records)) as timer:
                objects = _canonical(objects)
                association = self.sim.associate(detections, objects)
                timer.rows = association.n_matched
            with self._timer("src_select", sink) as timer:
                src_history = self.l1db.getDiaSources(field.region, objects, visit_time, explain=explain)
                timer.rows = len(src_history)
            with self._timer("fsrc_select", sink) as timer:
                fsrc_history = self.l1db.getDiaForcedSources(field.region, objects, visit_time, explain=explain)
                timer.rows = len(fsrc_history)
            with self._timer("sim_rows", _both(sink, sim_records)) as timer:
                src_history, fsrc_history = _canonical(src_history), _canonical(fsrc_history)
                new_objects, sources, forced = self.sim.build_rows(
                    rng, plan.visit_id, tile, plan.mjd, plan.band, detections, association, objects,
                    src_history, fsrc_history,
                )
                timer.rows = len(new_objects)
            sink(TimingRecord(
                "sim",
                real=sum(r.real for r in sim_records),
                user=sum(r.user for r in sim_records),
                sys=sum(r.sys for r in sim_records),
                rows=len(detections),
            ))
            if not opts.no_update:
                self._op = "store"
                self.l1db.store(visit_time, _nonempty(new_objects), _nonempty(sources), _nonempty(forced),
                                visit_id=plan.visit_id, tile=tile, n_tiles=opts.n_tiles, explain=explain)
        return TileResult(plan.visit_id, tile, len(objects), len(sources), len(new_objects), len(forced))


@overload
def _canonical(frame: None) -> None: ...
@overload
def _canonical(frame: pd.DataFrame) -> pd.DataFrame: ...
def _canonical(frame: pd.DataFrame | None) -> pd.DataFrame | None:
    """``frame`` sorted by all its columns: the simulation then never depends on the order a database returns rows.

    IDs and random draws follow the row order (a forced source per object, in
    order), and float sums depend on it; without this, two databases holding
    the same rows (or one database's two query plans) would make different rows.
    """
    if frame is None or len(frame) < 2:
        return frame
    # diaObjectId alone orders the DiaObjects (one version each); history rows need every column.
    keys = ["diaObjectId"] if frame["diaObjectId"].is_unique else list(frame.columns)
    return frame.sort_values(keys, kind="stable", ignore_index=True)


def _write(writer: TimingLogWriter | HeldRecords, records: list[TimingRecord], visit: int, tile: int) -> None:
    sink = writer.sink(visit, tile)
    for record in records:
        sink(record)


def _both(sink: TimingSink, records: list[TimingRecord]) -> TimingSink:
    def both(record: TimingRecord) -> None:
        records.append(record)
        sink(record)

    return both


class ApLoop:
    """The AP loop over visits, resuming after the last stored visit.

    Parameters
    ----------
    config : `L1dbConfig`
        Database configuration.
    catalog_path : path
        The variable-source catalogue (``gen_sources`` output).
    options : `RunOptions`
        Run options.
    log_path : path
        Timing log, appended to.
    argv : `list` [`str`], optional
        Command line, for the provenance record.
    """

    def __init__(self, config: L1dbConfig, catalog_path: str | Path, options: RunOptions, log_path: str | Path,
                 argv: list[str] | None = None) -> None:
        self.config = config
        # Absolute: the pool's workers may run elsewhere (another directory, another host with the same path).
        self.catalog_path = str(Path(catalog_path).resolve())
        self.options = options
        self.log_path = str(log_path)
        self.argv = argv or []
        # Input files first: a bad one should not wait on a database.
        self.catalog = SourceCatalog.load(catalog_path)
        if len(self.catalog) == 0:
            raise CatalogError(f"{catalog_path}: the catalogue holds no source (gen_sources --per-visit > 0)")
        self._l1db: L1db | None = open_l1db(config)
        try:
            self.l1db.checkSchema()
            # Everything that can refuse the run is decided before anything is written.
            self.schedule: VisitSchedule
            self.start = self.first_visit()
            last = self.start[0] + options.num_visits - 1
            if last >= MAX_VISIT:
                raise ValueError(f"visit IDs would reach {last}; the largest is {MAX_VISIT - 1} "
                                 f"(-n/--num-visits or --start-visit-id too large)")
        except BaseException:
            self._reset()
            raise
        self.writer: TimingLogWriter | None = None
        #: The signal (SIGINT or SIGTERM) that asked the run to stop after the current visit.
        self.stop_signal: signal.Signals | None = None

    @property
    def l1db(self) -> L1db:
        """The loop's own database client (resuming, row counts, daily job), connected again after a failure."""
        if self._l1db is None:
            self._l1db = open_l1db(self.config)
            # The daily job is timed: its kernels too (the tiles' processes warm up their own).
            self._l1db.warm_up()
        return self._l1db

    def _reset(self) -> None:
        """Close the loop's connections (after a failure: the next use makes new ones)."""
        if self._l1db is not None:
            self._l1db.close()
            self._l1db = None

    def _retrying(self, work: Callable[[], T], visit: int, op: str) -> T:
        """The loop's own database work (``op``), retried as a tile is."""
        assert self.writer is not None  # done while the run's log is open
        return run_with_retries(lambda failed: work(), options=self.options, writer=self.writer, visit=visit,
                                tile=0, current_op=lambda: op, reset=self._reset)

    # -- where to start ---------------------------------------------------------

    def first_visit(self) -> tuple[int, tuple[int, ...] | None]:
        """ID and pending tiles of the first visit to run; sets `schedule`.

        The schedule starts at ``start_time`` and ``start_visit_id`` for an
        empty database, at the first stored visit otherwise: every visit's
        time is computed from its ID, never from the visit before.

        Raises
        ------
        ValueError
            If the stored visits do not follow the schedule (another
            ``interval``), or a partly stored visit was started with another
            ``divide``.
        """
        opts = self.options
        last = self.l1db.lastVisit()
        if last is None:
            self.schedule = opts.schedule(opts.start_visit_id, float(opts.start_time.tai.mjd))
            return opts.start_visit_id, None
        first = self.l1db.firstVisit()
        assert first is not None  # the database holds a last visit, so a first one
        first_id, first_time = first
        self.schedule = opts.schedule(first_id, float(first_time.tai.mjd))
        visit_id, visit_time = last
        expected = self.schedule.mjd(visit_id)
        if abs(expected - visit_time.tai.mjd) * SECONDS_PER_DAY > 1e-3:
            raise ValueError(
                f"visit {visit_id} is stored at {visit_time.tai.isot} TAI but a schedule of one visit every "
                f"{opts.interval:g} s, a night every {opts.days_between_nights} day(s), from visit {first_id} at "
                f"{first_time.tai.isot} puts it at {Time(expected, format='mjd', scale='tai').isot}; resume with "
                f"the cadence the database was made with (--interval and --days-between-nights, or the same "
                f"--observations-per-year and --pointing-area)"
            )
        done, n_tiles = self.l1db.storedTiles(visit_id)
        # A visit is finished with the tiling it was started with.
        missing = tuple(t for t in range(n_tiles) if t not in done)
        if missing:
            if n_tiles != opts.n_tiles:
                raise ValueError(
                    f"visit {visit_id} was started with {n_tiles} tiles and is incomplete; "
                    f"resume it with --divide {divide_of(n_tiles)}"
                )
            return visit_id, missing
        return visit_id + 1, None

    def provenance(self, pool: TilePool | None = None) -> dict[str, Any]:
        """The run's provenance record (without the fields the writer adds); ``pool`` adds its workers."""
        backend, version = self.l1db.serverVersion()
        config = self.config.as_dict()
        config["ap_proto"] = self.options.as_dict()
        return {
            **toolkit_info(),
            "config": config,
            "backend": backend,
            "server_version": version,
            "machine": machine_info(),
            "seed": self.options.seed,
            "argv": self.argv,
            "catalog": {"path": self.catalog_path, "sources": len(self.catalog)},
            "per_visit": round(self.catalog.per_visit(self.options.fov), 1),
            "python": sys.version.split()[0],
            "time_compression": self.compression_info(),
            **({"pool": pool.describe()} if pool is not None else {}),
        }

    def compression_info(self) -> dict[str, Any] | None:
        """The time compression of the run (`Cadence.as_dict` with the history window), None without."""
        cadence = self.options.compression
        if cadence is None:
            return None
        return cadence.as_dict(window_days=self.window_days)

    @property
    def window_days(self) -> float:
        """The longer of the DiaSource and DiaForcedSource history windows, days."""
        return MONTH_DAYS * max(self.config.read_sources_months, self.config.read_forced_sources_months)

    # -- running -------------------------------------------------------------------

    def run(self, progress: Callable[[VisitPlan, list[TileResult]], None] | None = None) -> int:
        """Run ``num_visits`` visits; return how many were completed.

        The tiles of each visit are tasks of the pool (`TilePool`); the
        visit ends when all of them are stored, and their records are
        written to the timing log as each tile comes back. A first Ctrl-C
        (SIGINT) or SIGTERM (what schedulers and container platforms send)
        lets the current visit finish and then stops (`stop_signal` says
        which); a second one abandons the visit (`KeyboardInterrupt`): the
        local pool's workers are stopped and their transactions roll back.

        Raises
        ------
        dia_sim.tile_pool.PoolError
            The pool cannot be made (no scheduler at the address, no worker),
            or loses every worker or a tile's task too many times.
        """
        opts = self.options
        # Before anything is written: a scheduler that cannot be reached leaves no log record.
        pool = TilePool(opts.workers, opts.scheduler, n_tasks=opts.n_tiles,
                        lost_after=max(30.0, opts.retry_wait * (2**opts.retry_attempts - 1)))
        share_catalog(self.catalog_path, self.catalog)  # a worker thread of this process needs no second copy
        abandoned = False
        try:
            info = self.provenance(pool)
            self.writer = TimingLogWriter(self.log_path)
            self.writer.provenance(info)
            job = TileJob(self.writer.run, self.config, self.catalog_path, opts)
            visit_id, tiles = self.start
            previous_mjd: float | None = None
            done = 0
            old_handlers = {sig: signal.signal(sig, self._on_stop_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
            try:
                for i in range(opts.num_visits):
                    if self.stop_signal is not None:
                        break
                    plan = plan_visit(visit_id, self.schedule.mjd(visit_id), opts, tiles)
                    if self._daily_job_due(i, plan.mjd, previous_mjd):
                        self._daily_job(plan)
                    results = self._run_visit(pool, job, plan)
                    done += 1
                    if opts.row_count_every and (i + 1) % opts.row_count_every == 0:
                        counts = self._retrying(lambda: self.l1db.tableRowCount(), visit_id, "counts")
                        self.writer.counts(visit_id, counts)
                    if progress is not None:
                        progress(plan, results)
                    previous_mjd = plan.mjd
                    visit_id += 1
                    tiles = None
            except KeyboardInterrupt:
                abandoned = True
                raise
            finally:
                for sig, handler in old_handlers.items():
                    signal.signal(sig, handler)
        finally:
            run = self.writer.run if self.writer is not None else None
            pool.close(abandon=abandoned, teardown=(release_worker_state, run) if run else None)
            if run:
                release_worker_state(run)  # the tiles run in this process by a pool of one
            self._reset()
            if self.writer is not None:
                self.writer.close()
        return done

    def _run_visit(self, pool: TilePool, job: TileJob, plan: VisitPlan) -> list[TileResult]:
        """Run the tiles of a visit on the pool; write each tile's records as it comes back.

        Raises the first tile's error once every tile has come back (the
        others' stores, and their records, are kept).
        """
        tasks = [(f"tile-{job.run}-{plan.visit_id}-{tile}", process_tile, (job, plan, tile)) for tile in plan.tiles]
        results: list[TileResult] = []
        failed: TileOutcome | None = None
        for outcome in pool.run(tasks):
            outcome.records.write_to(self.writer)
            if outcome.error is not None:
                failed = failed or outcome
            else:
                results.append(outcome.result)
        if failed is not None:
            error = failed.error
            assert error is not None  # failed is the first outcome with an error
            if failed.traceback:
                error.__cause__ = RemoteTraceback(failed.traceback)
            raise error
        return sorted(results, key=lambda r: r.tile)

    def _daily_job_due(self, i: int, visit_mjd: float, previous_mjd: float | None) -> bool:
        """Every ``daily_job_every`` visits, or (0) when a new night starts."""
        every = self.options.daily_job_every
        if every:
            return i > 0 and i % every == 0
        # By night, not by the gap between visits: with an interval of hours
        # (time compression) a gap says nothing about a day having passed.
        return previous_mjd is not None and self.schedule.night(visit_mjd) != self.schedule.night(previous_mjd)

    def _daily_job(self, plan: VisitPlan) -> None:
        """Between nights: merge the nightly table (when configured)."""
        if self.options.no_update:
            return

        def merge() -> None:
            assert self.writer is not None  # the run's log is open
            with self.l1db.timing(self.writer.sink(plan.visit_id, 0)):
                self.l1db.dailyJob()

        self._retrying(merge, plan.visit_id, "daily_merge")

    @property
    def stop_requested(self) -> bool:
        """Whether a signal asked the run to stop after the current visit."""
        return self.stop_signal is not None

    def _on_stop_signal(self, signum: int, frame: Any) -> None:
        if self.stop_signal is not None:
            raise KeyboardInterrupt
        self.stop_signal = signal.Signals(signum)
        if signum == signal.SIGINT:
            # Someone at a terminal: say at once what happens. A SIGTERM is said once, at the end.
            print("\ninterrupt: finishing the current visit (Ctrl-C again to abandon it)", file=sys.stderr)
