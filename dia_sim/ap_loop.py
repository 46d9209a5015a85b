"""The driver of the simulated Alert Production loop: visits, resume, retries, the pool, the timing log, signals.

`ApLoop` runs ``num_visits`` visits, resuming after the last one stored. Per
visit it plans the pointing and band (`dia_sim.visit_plan.plan_visit`, seeded
by (seed, visit), so a visit is the same whether it runs in the first run,
after a resume, or in a retry), runs the daily job between nights, hands the
visit's tiles to the pool of workers, and writes what they return to the
run's one timing log (`l1db.timing_log`). What a worker does with a tile
(simulate, read, associate, read the history, build rows, store) is
`dia_sim.tile_processor.TileProcessor`.

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

Signals: see `ApLoop.run`. The log accounts for every tile stored, also
when a visit is abandoned.

Failures: a connection-level database error (a server restart, a failover, a
Cassandra node gone: `l1db.errors.is_retryable`) ends a tile's attempt, or
the driver's own database work (resuming, row counts, the daily job); it is
tried again, up to ``retry_attempts`` times after waits of ``retry_wait``
seconds doubling each time (`dia_sim.retries.run_with_retries`). Every failed
attempt writes a failure record. When the retries are exhausted the run
stops (`dia_sim.retries.VisitFailed`) and can be resumed later.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import signal
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, NoReturn, TypeVar

from l1db import MONTH_DAYS, L1db, open_l1db
from l1db.config import L1dbConfig
from l1db.constants import mjd_tai_time
from l1db.timing_log import TimingLogWriter, latency_frame, machine_info, toolkit_info

from .catalog import CatalogError, SourceCatalog
from .ids import MAX_VISIT
from .open_loop import OpenVisit, ReleaseClock, Verdict, verdict
from .options import MAX_IN_FLIGHT, RunOptions
from .retries import RESTART_MARGIN, fitted_retry_wait, retry_budget, run_with_retries
from .schedule import SECONDS_PER_DAY, VisitSchedule
from .tile_pool import POLL, PoolError, TilePool
from .tile_task import (
    RemoteTraceback,
    TileJob,
    TileOutcome,
    abandon_run,
    process_tile,
    release_worker_state,
    share_catalog,
    warm_worker,
)
from .tiling import divide_of
from .visit_plan import TileResult, VisitPlan, plan_visit

__all__ = ["ApLoop", "VisitAbandoned", "VisitsAbandoned"]

_LOG = logging.getLogger(__name__)

#: What a first stop signal lets an open-loop run finish while it waits for its next release.
NOTHING_IN_FLIGHT = "nothing (no visit in flight)"

T = TypeVar("T")


class VisitAbandoned(KeyboardInterrupt):
    """A second stop signal abandoned a visit: which of its tiles are stored (and logged), which are not.

    Parameters
    ----------
    visit_id : `int`
        The visit abandoned.
    n_tiles : `int`
        Its tiles.
    stored : `list` [`int`]
        Its tiles stored, each with its records in the timing log.
    cut : `bool`
        A third signal stopped the wait for the tiles being stored: they may
        be stored without their records.
    """

    def __init__(self, visit_id: int, n_tiles: int, stored: list[int], cut: bool = False) -> None:
        super().__init__(visit_id, n_tiles, stored, cut)
        self.visit_id = visit_id
        self.n_tiles = n_tiles
        self.stored = stored
        self.cut = cut

    def __str__(self) -> str:
        if len(self.stored) == self.n_tiles:
            return f"visit {self.visit_id} completed after all: its {self.n_tiles} tiles stored and logged"
        if self.stored:
            kept = (f"{len(self.stored)} of its {self.n_tiles} tiles kept, stored and logged "
                    f"({', '.join(map(str, self.stored))})")
        else:
            kept = f"none of its {self.n_tiles} tile(s) kept"
        if self.cut:
            return (f"visit {self.visit_id} abandoned: {kept}; stopped at once, so the tiles being stored then "
                    f"may be stored without their records in the timing log")
        return f"visit {self.visit_id} abandoned: {kept}; the others were not stored"


class VisitsAbandoned(VisitAbandoned):
    """A second stop signal abandoned the visits in flight of an open-loop run: each one's `VisitAbandoned`."""

    def __init__(self, visits: list[VisitAbandoned]) -> None:
        first = visits[0]
        super().__init__(first.visit_id, first.n_tiles, first.stored, first.cut)
        self.visits = visits

    def __str__(self) -> str:
        return "; ".join(str(v) for v in self.visits)


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
            self.options = options = self._fit_retry_budget(options)
            # Everything that can refuse the run is decided before anything is written.
            self.schedule: VisitSchedule
            #: Visits left incomplete (their ID and missing tiles, None for all), then the next new visit's ID.
            self.resume, self.next_visit = self.first_visit()
            extra = options.num_visits - len(self.resume)
            last = self.next_visit + extra - 1 if extra > 0 else 0
            if last >= MAX_VISIT:
                raise ValueError(f"visit IDs would reach {last}; the largest is {MAX_VISIT - 1} "
                                 f"(-n/--num-visits or --start-visit-id too large)")
        except BaseException:
            self._reset()
            raise
        self.writer: TimingLogWriter | None = None
        #: The signal (SIGINT or SIGTERM) that asked the run to stop after the current visit.
        self.stop_signal: signal.Signals | None = None
        #: What the run finished before stopping on `stop_signal`: the current visit, the daily job, or in
        #: an open loop the visits in flight (`_finishing`).
        self.finishing = "the current visit"
        # An open-loop run's visits in flight (None in a closed loop): what a first stop signal lets finish.
        self._in_flight: Mapping[int, OpenVisit] | None = None
        # A block a second signal must not cut (`_signals_deferred`), and a signal that came during it.
        self._deferring = False
        self._deferred = False
        # Whether a further signal in the current deferred block stops at once (a tile run in this
        # process: `_run_visit`), and whether one did.
        self._third_cuts = False
        self._cut = False
        # Whether the daily job runs: what a first stop signal lets finish (the run ends after it).
        self._in_daily_job = False
        #: An open-loop run's verdict (`dia_sim.open_loop.Verdict`), once it has ended.
        self.verdict: Verdict | None = None

    def _log_counts(self, visit_id: int) -> None:
        """Log every table's row count after ``visit_id`` (``row_count_every``)."""
        # Estimates: a full count of every table every N visits would grow with the database.
        counts = self._retrying(lambda: self.l1db.tableRowCount(exact=False), visit_id, "counts")
        assert self.writer is not None  # done while the run's log is open
        self.writer.counts(visit_id, counts, exact=False)

    def _fit_retry_budget(self, options: RunOptions) -> RunOptions:
        """``options`` with ``retry_wait`` raised to outlast the servers' measured restart (`fitted_retry_wait`)."""
        restart = self.l1db.restart_seconds()
        wait = fitted_retry_wait(options.retry_attempts, options.retry_wait, restart)
        if wait == options.retry_wait:
            return options
        _LOG.warning("the database's nodes took %.1f s to start last time: retry_wait raised from %g to %g s "
                     "(%d retries over %.0f s, %g times that)", restart, options.retry_wait, wait,
                     options.retry_attempts, retry_budget(options.retry_attempts, wait), RESTART_MARGIN)
        return options.model_copy(update={"retry_wait": wait})

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

    def first_visit(self) -> tuple[list[tuple[int, tuple[int, ...] | None]], int]:
        """The visits left incomplete (ID, missing tiles or None for all), and the next new visit; sets `schedule`.

        The schedule starts at ``start_time`` and ``start_visit_id`` for an
        empty database, at the first stored visit otherwise: every visit's
        time is computed from its ID, never from the visit before.

        A closed-loop run leaves at most its last visit incomplete; an
        open-loop run (``cadence``) may leave any of its visits in flight, at
        most `MAX_IN_FLIGHT` before the last visit stored, partly or not at all
        stored. Those are looked up (a visit's tiles in L1dbVisit) and run
        first, so that a resumed run stores exactly the visits missing.

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
            self.schedule = opts.schedule(opts.start_visit_id, opts.start_time)
            return [], opts.start_visit_id
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
                f"{first_time.tai.isot} puts it at {mjd_tai_time(expected).isot}; resume with "
                f"the cadence the database was made with (--interval and --days-between-nights, or the same "
                f"--observations-per-year and --pointing-area)"
            )
        incomplete: list[tuple[int, tuple[int, ...] | None]] = []
        for visit in range(max(first_id, visit_id - MAX_IN_FLIGHT + 1), visit_id + 1):
            done, n_tiles = self.l1db.storedTiles(visit)
            if not n_tiles:  # released by an open-loop run, none of its tiles stored
                incomplete.append((visit, None))
                continue
            # A visit is finished with the tiling it was started with.
            missing = tuple(t for t in range(n_tiles) if t not in done)
            if missing:
                if n_tiles != opts.n_tiles:
                    raise ValueError(
                        f"visit {visit} was started with {n_tiles} tiles and is incomplete; "
                        f"resume it with --divide {divide_of(n_tiles)}"
                    )
                incomplete.append((visit, missing))
        return incomplete, visit_id + 1

    def _plan(self, visit_id: int, tiles: tuple[int, ...] | None) -> VisitPlan:
        """The plan of a visit; stored out of order in an open-loop run, or when a later visit is stored already."""
        out_of_order = bool(self.options.cadence) or visit_id < self.next_visit - 1
        return plan_visit(visit_id, self.schedule.mjd(visit_id), self.options, tiles, out_of_order)

    def _visits(self) -> Iterator[tuple[int, tuple[int, ...] | None]]:
        """The run's ``num_visits`` visits (ID, tiles to run or None for all): the incomplete ones first."""
        new = ((visit, None) for visit in itertools.count(self.next_visit))
        return itertools.islice(itertools.chain(self.resume, new), self.options.num_visits)

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
        lets the current visit (or daily job) finish and then stops
        (`stop_signal` says which); a second one abandons the visit (`VisitAbandoned`): no tile
        is begun any more, and the tiles being stored finish and are logged
        (on the pool's workers, or the one run in this process by a pool of
        one). A third one stops at once (`KeyboardInterrupt`; a tile cut in
        this process rolls back, or on Cassandra is left unrecorded).

        Raises
        ------
        dia_sim.tile_pool.PoolError
            The pool cannot be made (no scheduler at the address, no worker),
            or loses every worker or a tile's task too many times.
        """
        opts = self.options
        # Before anything is written: a scheduler that cannot be reached leaves no log record.
        # An open-loop run's visits overlap: up to max_in_flight visits' tiles share the workers.
        tasks = opts.n_tiles * (opts.max_in_flight if opts.cadence else 1)
        pool = TilePool(opts.workers, opts.scheduler, n_tasks=tasks,
                        lost_after=max(30.0, retry_budget(opts.retry_attempts, opts.retry_wait)))
        share_catalog(self.catalog_path, self.catalog)  # a worker thread of this process needs no second copy
        abandoned = False
        old_handlers: dict[int, Any] = {}
        try:
            info = self.provenance(pool)
            self.writer = TimingLogWriter(self.log_path)
            self.writer.provenance(info)
            job = TileJob(self.writer.run, self.config, self.catalog_path, opts)
            previous_mjd: float | None = None
            done = 0
            old_handlers = {sig: signal.signal(sig, self._on_stop_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
            try:
                if opts.cadence:
                    return self._run_open_loop(pool, job, progress)
                for i, (visit_id, tiles) in enumerate(self._visits()):
                    if self.stop_signal is not None:
                        break
                    plan = self._plan(visit_id, tiles)
                    if self._daily_job_due(i, plan.mjd, previous_mjd):
                        self._daily_job(plan)
                        if self.stop_signal is not None:  # came during the daily job: the visit is not begun
                            break
                    results = self._run_visit(pool, job, plan)
                    done += 1
                    if opts.row_count_every and (i + 1) % opts.row_count_every == 0:
                        self._log_counts(visit_id)
                    if progress is not None:
                        progress(plan, results)
                    previous_mjd = plan.mjd
            except KeyboardInterrupt:
                abandoned = True
                raise
        finally:
            # The run is ending: a signal now waits until it has (the handlers stay ours until then, so
            # that a second signal does not kill the process before the log is closed and the end said).
            self._deferring = True
            try:
                run = self.writer.run if self.writer is not None else None
                pool.close(abandon=abandoned, teardown=(release_worker_state, run) if run else None)
                if run:
                    release_worker_state(run)  # the tiles run in this process by a pool of one
                self._reset()
                if self.writer is not None:
                    self.writer.close()
            finally:
                for sig, handler in old_handlers.items():
                    signal.signal(sig, handler)
                self._deferring = self._deferred = False
        return done

    def _run_visit(self, pool: TilePool, job: TileJob, plan: VisitPlan) -> list[TileResult]:
        """Run the tiles of a visit on the pool; write each tile's records as it comes back.

        Raises the first tile's error once every tile has come back (the
        others' stores, and their records, are kept). A second stop signal
        abandons the visit: no tile is begun any more, the tiles being stored
        finish and are logged, and `VisitAbandoned` says which tiles are kept.
        """
        tasks = [(f"tile-{job.run}-{plan.visit_id}-{tile}", process_tile, (job, plan, tile)) for tile in plan.tiles]
        results: list[TileResult] = []
        failed: TileOutcome | None = None

        def take(outcome: TileOutcome) -> None:
            nonlocal failed
            # Written whole or not at all: a signal now waits (`_on_stop_signal`), and an outcome
            # handed over again by `TilePool.drain` is written once.
            with self._signals_deferred():
                if not outcome.started or outcome.tile in logged:
                    return
                assert self.writer is not None  # the run's log is open
                outcome.records.write_to(self.writer)
                logged.add(outcome.tile)
                if outcome.error is not None:
                    failed = failed or outcome
                else:
                    assert outcome.result is not None  # a tile stored has its result
                    results.append(outcome.result)

        logged: set[int] = set()
        outcomes = iter(pool.run(tasks))
        try:
            while True:
                # A tile run in this process (a pool of one) is run whole, stored and logged, before a
                # second stop signal takes effect: between its commit and its records there is no gap
                # for the signal to fall into; a third one stops it at once. A pool's workers are waited
                # for interruptibly.
                with self._signals_deferred(enabled=pool.client is None, third_cuts=True):
                    outcome = next(outcomes, None)
                    if outcome is None:
                        break
                    take(outcome)
        except KeyboardInterrupt:
            if pool.client is not None:
                print(f"\nabandoning visit {plan.visit_id}: no tile is begun any more; the tiles being stored "
                      f"finish and are logged (stop signal again to stop at once)", file=sys.stderr)
            cut = self._drain(pool, job, take)
            n_tiles = self.options.n_tiles
            before = set(range(n_tiles)) - set(plan.tiles)  # stored by the run that began the visit
            raise VisitAbandoned(plan.visit_id, n_tiles, sorted(before | {r.tile for r in results}), cut) from None
        if failed is not None:
            _raise_failure(failed)
        return sorted(results, key=lambda r: r.tile)

    def _drain(self, pool: TilePool, job: TileJob, take: Callable[[TileOutcome], None]) -> bool:
        """After a second stop signal: begin no more tiles, ``take`` those being stored; whether a third cut it."""
        cut = False
        try:
            for outcome in pool.drain((abandon_run, job.run)):
                take(outcome)
        except KeyboardInterrupt:
            cut = True
        cut = cut or self._cut
        self._cut = False
        return cut

    def _run_open_loop(self, pool: TilePool, job: TileJob,
                       progress: Callable[[VisitPlan, list[TileResult]], None] | None) -> int:
        """Release the run's visits on the clock (`dia_sim.open_loop`); return how many were completed.

        Visit k is released at start + k x ``cadence`` and its tiles queued
        for the pool behind those of the visits in flight. A release that
        finds ``max_in_flight`` visits in flight stops the releases (a
        ``behind`` record): the run ends once the visits in flight are stored
        and logged. A first stop signal stops the releases too; a second one
        abandons every visit in flight (`VisitsAbandoned`). Each completed
        visit writes its ``latency`` record; the run's `verdict` is set at
        the end. The daily job runs between nights with nothing in flight, and
        the clock restarts after it. Row counts wait for a moment with nothing
        in flight (they would delay the releases).
        """
        opts = self.options
        writer = self.writer
        assert writer is not None  # the run's log is open
        visits = self._visits()
        upcoming = next(visits, None)
        plan: VisitPlan | None = None  # the next visit to release, once planned
        clock = ReleaseClock(opts.cadence, time.time())
        in_flight: dict[int, OpenVisit] = {}
        logged: set[tuple[int, int]] = set()
        records: list[dict[str, Any]] = []
        behind: list[int] = []
        failed: TileOutcome | None = None
        previous_mjd: float | None = None
        counts_due: int | None = None
        k = done = 0
        self._in_flight = in_flight
        pool.on_every_worker(warm_worker, job)
        clock.restart(0, time.time())
        daily_done = -1  # the release index whose daily job has run

        def take(outcome: TileOutcome) -> None:
            nonlocal failed, done, counts_due
            # As in `_run_visit`: written whole or not at all, and once.
            with self._signals_deferred():
                key = (outcome.visit_id, outcome.tile)
                if not outcome.started or key in logged:
                    return
                outcome.records.write_to(writer)
                logged.add(key)
                visit = in_flight[outcome.visit_id]
                visit.waiting.discard(outcome.tile)
                visit.began = min(visit.began, outcome.began_at)
                if outcome.error is not None:
                    failed = failed or outcome
                    visit.failed = True
                else:
                    assert outcome.result is not None  # a tile stored has its result
                    visit.results.append(outcome.result)
                    visit.stored = max(visit.stored, outcome.ended_at)
                if visit.waiting:
                    return
                del in_flight[outcome.visit_id]
                if visit.failed:
                    return
                # The verdict is made of the records as written (`verdict` of the log gives the same).
                records.append(writer.latency(outcome.visit_id, visit.released, visit.began, visit.stored))
                done += 1
                if opts.row_count_every and done % opts.row_count_every == 0:
                    counts_due = outcome.visit_id
                if progress is not None:
                    progress(visit.plan, sorted(visit.results, key=lambda r: r.tile))

        try:
            while True:
                releasing = (upcoming is not None and not behind and failed is None and pool.lost is None
                             and self.stop_signal is None)
                held = False
                if releasing and time.time() >= clock.due(k):
                    assert upcoming is not None  # releasing
                    visit_id, tiles = upcoming
                    if plan is None:
                        plan = self._plan(visit_id, tiles)
                    if daily_done != k and self._daily_job_due(k, plan.mjd, previous_mjd):
                        held = bool(in_flight)  # the daily job waits for the visits in flight
                        if not held:
                            self._daily_job(plan)
                            daily_done = k
                            clock.restart(k, time.time())
                            continue
                    elif len(in_flight) >= opts.max_in_flight:
                        writer.behind(visit_id, len(in_flight))
                        behind.append(visit_id)
                        continue
                    else:
                        in_flight[visit_id] = OpenVisit(plan, clock.due(k), set(plan.tiles))
                        pool.submit([(f"tile-{job.run}-{visit_id}-{tile}", process_tile, (job, plan, tile))
                                     for tile in plan.tiles])
                        previous_mjd, plan = plan.mjd, None
                        upcoming = next(visits, None)
                        k += 1
                        continue
                if counts_due is not None and not in_flight:
                    self._log_counts(counts_due)
                    counts_due = None
                if not pool.pending and not releasing:
                    break
                wait = clock.due(k) - time.time() if releasing and not held else POLL
                # A tile run in this process (a pool of one) is run whole, as in `_run_visit`.
                with self._signals_deferred(enabled=pool.client is None and pool.pending > 0, third_cuts=True):
                    for outcome in pool.completed(max(wait, 0.0)):
                        take(outcome)
        except KeyboardInterrupt:
            if not in_flight:
                raise
            if pool.client is not None:
                print(f"\nabandoning the {len(in_flight)} visit(s) in flight: no tile is begun any more; the tiles "
                      f"being stored finish and are logged (stop signal again to stop at once)", file=sys.stderr)
            cut = self._drain(pool, job, take)
            n_tiles = opts.n_tiles
            raise VisitsAbandoned([
                VisitAbandoned(v.plan.visit_id, n_tiles,
                               sorted((set(range(n_tiles)) - set(v.plan.tiles)) | {r.tile for r in v.results}), cut)
                for v in sorted(in_flight.values(), key=lambda v: v.plan.visit_id)
            ]) from None
        finally:
            self._in_flight = None
            self.verdict = verdict(latency_frame(records), opts.cadence, behind)
        if failed is not None:
            _raise_failure(failed)
        if pool.lost is not None:
            raise PoolError(pool.lost)
        return done

    def _daily_job_due(self, i: int, visit_mjd: float, previous_mjd: float | None) -> bool:
        """Every ``daily_job_every`` visits, or (0) when a new night starts."""
        every = self.options.daily_job_every
        if every:
            return i > 0 and i % every == 0
        # By night, not by the gap between visits: with an interval of hours
        # (time compression) a gap says nothing about a day having passed.
        return previous_mjd is not None and self.schedule.night(visit_mjd) != self.schedule.night(previous_mjd)

    def _daily_job(self, plan: VisitPlan) -> None:
        """Between nights: merge the nightly table (when configured); its records go under ``plan``'s visit.

        A first stop signal lets it finish (the run then ends); a second one
        abandons it (rolled back), except from its commit until its records
        are written: signals wait for their end there (`L1db.timing`'s
        ``committing``), so that the log holds the merge if and only if the
        database does.
        """
        if self.options.no_update:
            return

        def merge() -> None:
            assert self.writer is not None  # the run's log is open
            # Under the visit it runs before, told apart from the visit's own work (``daily``).
            with self.l1db.timing(self.writer.sink(plan.visit_id, 0, daily=True), committing=self._signals_deferred):
                self.l1db.dailyJob()

        self._in_daily_job = True
        try:
            self._retrying(merge, plan.visit_id, "daily_merge")
        finally:
            self._in_daily_job = False

    @property
    def stop_requested(self) -> bool:
        """Whether a signal asked the run to stop after the current visit."""
        return self.stop_signal is not None

    @contextlib.contextmanager
    def _signals_deferred(self, enabled: bool = True, third_cuts: bool = False) -> Iterator[None]:
        """A block a second stop signal does not interrupt: it takes effect at the block's end.

        With ``third_cuts`` a further signal stops the block at once (`_cut`).
        Nested blocks are one block: the signal takes effect at the outermost
        one's end, and an inner block without ``third_cuts`` is never cut.
        """
        if not enabled:
            yield
            return
        if self._deferring:
            outer = self._third_cuts
            self._third_cuts = outer and third_cuts
            try:
                yield
            finally:
                self._third_cuts = outer
            return
        self._deferring, self._third_cuts = True, third_cuts
        try:
            yield
        finally:
            self._deferring = self._third_cuts = False
        if self._deferred:
            self._deferred = False
            raise KeyboardInterrupt

    def _on_stop_signal(self, signum: int, frame: Any) -> None:
        if self.stop_signal is not None:
            if self._deferring:
                if self._deferred and self._third_cuts:
                    self._cut = True
                    raise KeyboardInterrupt
                if not self._deferred and self._third_cuts:
                    print("\nabandoning the visit: the tile being stored finishes and is logged "
                          "(stop signal again to stop at once)", file=sys.stderr)
                self._deferred = True
                return
            raise KeyboardInterrupt
        self.stop_signal = signal.Signals(signum)
        self.finishing = self._finishing()
        if signum == signal.SIGINT:
            # Someone at a terminal: say at once what happens. A SIGTERM is said once, at the end.
            if self.finishing == NOTHING_IN_FLIGHT:
                print("\ninterrupt: no visit in flight, stopping (Ctrl-C again to stop at once)", file=sys.stderr)
            else:
                them = "them" if self._in_flight and len(self._in_flight) > 1 else "it"
                print(f"\ninterrupt: finishing {self.finishing} (Ctrl-C again to abandon {them})", file=sys.stderr)

    def _finishing(self) -> str:
        """What a first stop signal lets finish now: the daily job, the visits in flight, or the current visit."""
        if self._in_daily_job:
            return "the daily job"
        if self._in_flight is None:
            return "the current visit"
        n = len(self._in_flight)
        if n == 0:  # an open loop waiting for its next release
            return NOTHING_IN_FLIGHT
        return "the visit in flight" if n == 1 else f"the {n} visits in flight"


def _raise_failure(failed: TileOutcome) -> NoReturn:
    """Raise the error of a tile that failed, with the worker's traceback as its cause."""
    error = failed.error
    assert error is not None  # an outcome with an error
    if failed.traceback:
        error.__cause__ = RemoteTraceback(failed.traceback)
    raise error
