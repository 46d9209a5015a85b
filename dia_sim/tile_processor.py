"""The worker's half of the AP loop: one tile of a visit, simulated, read, associated and stored.

Per tile of a visit (the whole field with ``divide = 1``), in the original
prototype's order (`TileProcessor.process`):

1. simulate the DiaSources of the field (``sim_detect``);
2. read the DiaObjects in the field (``obj_select``);
3. associate DiaSources with DiaObjects by position (``sim_associate``);
4. read the DiaSource and DiaForcedSource history (``src_select``, ``fsrc_select``);
5. build new DiaObject versions, DiaSources and DiaForcedSources (``sim_rows``);
6. store them, recording the tile in L1dbVisit (``store`` and the per-table
   operations timed inside `l1db.L1db.store`): one transaction on the SQL
   backends, idempotent steps on Cassandra (`l1db.cassandra.writes`).

Every step writes a timing record (`l1db.timing_log`), once the tile has
succeeded. Everything random is drawn from generators seeded by (seed,
visit, tile), so a tile is the same whether it runs in the first run, after
a resume, or in a retry. A connection-level database error ends the tile's
attempt and the tile is tried again (`dia_sim.retries.run_with_retries`);
the failed attempt's timing records are dropped, so that the retried tile's
operations hold only the attempt that succeeded. A store whose end was cut
off is looked up before the retry: if it was stored after all, it is not
stored twice.

A pool worker keeps one `TileProcessor` (catalogue, database connection,
warmed simulator) from tile to tile (`dia_sim.tile_task`); the driver
(`dia_sim.ap_loop`) reaches it only through the pool's tasks (run in the
driver's own process by a pool of one).
"""

from __future__ import annotations

from pathlib import Path
from typing import overload

import numpy as np
import pandas as pd

from l1db import L1db, open_l1db
from l1db.config import L1dbConfig
from l1db.timer import BackPressure, Timer, TimingRecord, TimingSink, null_sink
from l1db.timing_log import HeldRecords, TimingLogWriter

from .catalog import SourceCatalog
from .field import FieldTile
from .options import RunOptions
from .retries import run_with_retries
from .visit_plan import TileResult, VisitPlan
from .visit_sim import VisitSimulator

__all__ = ["TileProcessor"]


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
            self._connect(null_sink)
        assert self._l1db is not None
        return self._l1db

    def _connect(self, sink: TimingSink) -> None:
        """Connect, timed as ``connect`` into ``sink`` with the waits on back-pressure it took."""
        self._op = "connect"
        # The client's totals start with it: they are the connect's waits, handed to the timer before it closes.
        waited = BackPressure()
        with Timer("connect", sink, pressure=waited):
            db = open_l1db(self.config)
            waited.wait, waited.resent = db.back_pressure.wait, db.back_pressure.resent
        # Its numba kernels too, before its first timed read (already compiled after a reconnect).
        db.warm_up()
        self._l1db = db

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
            if self._l1db is None:
                self._connect(records.append)
            if not opts.no_update:
                self._op = "connect"
                done, _ = self.l1db.storedTiles(plan.visit_id)
                if tile in done:
                    # The store committed although the connection (or the worker) was lost: keep what it did
                    # (and this attempt's connect).
                    _write(writer, failed_records + records, plan.visit_id, tile)
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
        """A `Timer` of ``op``, which is from now on the operation in progress.

        The reads are timed here, not in the database client: the timer takes
        the client's waits on back-pressure (`l1db.api.L1db.back_pressure`).
        """
        self._op = op
        return Timer(op, sink, pressure=self.l1db.back_pressure)

    def _process(self, plan: VisitPlan, tile: int, field: FieldTile, sink: TimingSink) -> TileResult:
        opts = self.options
        sim_records: list[TimingRecord] = []
        rng = np.random.default_rng([opts.seed, plan.visit_id, tile + 1])
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
                src_history = self.l1db.getDiaSources(field.region, objects, plan.mjd, explain=explain)
                timer.rows = len(src_history)
            with self._timer("fsrc_select", sink) as timer:
                fsrc_history = self.l1db.getDiaForcedSources(field.region, objects, plan.mjd, explain=explain)
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
                self.l1db.store(plan.mjd, _nonempty(new_objects), _nonempty(sources), _nonempty(forced),
                                visit_id=plan.visit_id, tile=tile, n_tiles=opts.n_tiles, explain=explain,
                                out_of_order=plan.out_of_order)
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


def _nonempty(frame: pd.DataFrame | None) -> pd.DataFrame | None:
    return frame if frame is not None and len(frame) else None
