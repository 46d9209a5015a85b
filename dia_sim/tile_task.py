"""What a pool worker does with a tile: the Dask task, and the state a worker keeps from tile to tile.

A tile's task (`process_tile`) gets a `TileJob` (the run's config, catalogue
path and options: small, sent with every task), finds or makes the worker's
`dia_sim.tile_processor.TileProcessor` for that run (catalogue loaded and database
connected once per worker, the simulator's kernels compiled once), processes
the tile and returns a `TileOutcome`: its result or error, and its timing and
failure records (`l1db.timing_log.HeldRecords`) for the driver to write. The
same task runs in a remote ``dask worker``, in a local pool's process, or in
ap_proto's own process (a pool of one).

A run abandoned by a second Ctrl-C or SIGTERM (`abandon_run`, run on every
worker by the driver) starts no more tiles: each task not yet begun returns at
once, not started, while the tiles already being stored finish and return
their records, so that the driver logs every tile that is stored.
"""

from __future__ import annotations

import dataclasses
import os
import pickle
import socket
import threading
import time
import traceback

from l1db.config import L1dbConfig
from l1db.errors import L1dbError, describe_error, driver_error_reason
from l1db.timing_log import HeldRecords

from .catalog import CatalogError, SourceCatalog
from .options import RunOptions
from .tile_processor import TileProcessor
from .visit_plan import TileResult, VisitPlan

__all__ = ["TileJob", "TileOutcome", "RemoteTraceback", "abandon_run", "process_tile", "release_worker_state",
           "share_catalog", "warm_worker"]


@dataclasses.dataclass(frozen=True)
class TileJob:
    """What a worker needs to process the tiles of a run; sent with every task (it is small)."""

    #: Run id: a worker keeps its `TileProcessor` for the tasks of one run.
    run: str
    config: L1dbConfig
    #: Absolute path of the catalogue: the same on every worker host.
    catalog_path: str
    options: RunOptions


@dataclasses.dataclass
class TileOutcome:
    """What a tile's task returns to the driver: its result or error, and its records to write."""

    visit_id: int
    tile: int
    result: TileResult | None
    records: HeldRecords
    #: The error that ended the tile (picklable: the driver raises it), `None` if it was stored.
    error: BaseException | None = None
    #: The worker's traceback of ``error``.
    traceback: str = ""
    #: False for a task of an abandoned run that was not begun (`abandon_run`): nothing stored, nothing to log.
    started: bool = True
    #: Wall-clock times (Unix seconds, the worker host's clock) when the task began and when it ended, its
    #: store acknowledged: an open-loop run's queue wait and latency (`dia_sim.open_loop`).
    began_at: float = 0.0
    ended_at: float = 0.0


class RemoteTraceback(Exception):
    """The traceback of a worker's error, shown as its cause (as `concurrent.futures` does)."""

    def __str__(self) -> str:
        return self.args[0]


#: Catalogues loaded in this process, by file (`_file_key`): shared by its worker threads (read only).
_CATALOGS: dict[tuple[str, int, int], SourceCatalog] = {}
_CATALOGS_LOCK = threading.Lock()
#: Each worker thread's run and `TileProcessor`, by thread: the worker's state from tile to tile.
_PROCESSORS: dict[int, tuple[str, TileProcessor]] = {}
_PROCESSORS_LOCK = threading.Lock()
#: Runs abandoned by the driver (`abandon_run`): their tasks not yet begun start nothing.
_ABANDONED: set[str] = set()


def _file_key(path: str) -> tuple[str, int, int]:
    """The file at ``path`` as it is now: a catalogue written again (gen_sources --force) is another one."""
    try:
        stat = os.stat(path)
    except OSError:
        return path, -1, -1
    return path, stat.st_mtime_ns, stat.st_size


def share_catalog(path: str, catalog: SourceCatalog) -> None:
    """Let this process's workers use ``catalog``, already loaded from ``path``, instead of loading it again."""
    with _CATALOGS_LOCK:
        _CATALOGS[_file_key(path)] = catalog


def _catalog(path: str) -> SourceCatalog:
    key = _file_key(path)
    with _CATALOGS_LOCK:
        if key not in _CATALOGS:
            try:
                catalog = SourceCatalog.load(path)
            except CatalogError as exc:
                raise CatalogError(f"on worker host {socket.gethostname()}: {exc}") from None
            # Keep one version of a file: a long-lived worker sees many runs.
            for old in [k for k in _CATALOGS if k[0] == path]:
                del _CATALOGS[old]
            _CATALOGS[key] = catalog
        return _CATALOGS[key]


def _processor(job: TileJob) -> TileProcessor:
    """The worker's `TileProcessor` for ``job``'s run: made at its first tile, reused for every next one."""
    thread = threading.get_ident()
    with _PROCESSORS_LOCK:
        run, processor = _PROCESSORS.get(thread, (None, None))
        if run == job.run and processor is not None:  # stored with its run: never None then
            return processor
        _PROCESSORS.pop(thread, None)
    if processor is not None:
        processor.close()  # a previous run's: its options and database may not be this one's
    processor = TileProcessor(job.config, _catalog(job.catalog_path), job.options)
    with _PROCESSORS_LOCK:
        _PROCESSORS[thread] = (job.run, processor)
    return processor


def warm_worker(job: TileJob) -> None:
    """Make this worker's `TileProcessor` for ``job``'s run and connect it, before an open-loop run's clock starts.

    So that the first visits' latency holds no catalogue load, kernel
    compilation or connection (a closed-loop run pays them in its first
    tiles, outside its steady state). A failure here is left to the first
    tile's own retries.
    """
    try:
        _processor(job).l1db  # noqa: B018 - the property connects and warms the client up
    except Exception:  # noqa: BLE001 - the first tile tries again and reports
        pass


def abandon_run(run: str) -> None:
    """Start no more tiles of ``run`` in this process: its tasks not yet begun return not started."""
    with _PROCESSORS_LOCK:
        _ABANDONED.add(run)


def release_worker_state(run: str) -> None:
    """Close the database connections this process's workers keep for ``run`` (its tiles are done)."""
    with _PROCESSORS_LOCK:
        _ABANDONED.discard(run)
        ended = [thread for thread, (owner, _) in _PROCESSORS.items() if owner == run]
        processors = [_PROCESSORS.pop(thread)[1] for thread in ended]
    for processor in processors:
        processor.close()


def _same_message(exc: BaseException) -> BaseException | None:
    """An error of ``exc``'s own class with its message alone, or `None` if the class cannot be made so.

    What ``exc`` may carry besides its message (state that holds a driver's
    locks, e.g. a `VisitFailed` whose retries ended on a Cassandra error) does
    not pickle; its class and message are what the driver needs (the
    traceback travels as text in `TileOutcome`).
    """
    try:
        return type(exc)(str(exc))
    except Exception:  # noqa: BLE001 - a class whose constructor takes other arguments
        return None


def _portable(exc: BaseException) -> BaseException:
    """``exc`` if it survives pickling (to reach the driver); else an error saying the same in one line."""
    for candidate in (exc, _same_message(exc)):
        if candidate is None:
            continue
        try:
            pickle.loads(pickle.dumps(candidate))
            return candidate
        except Exception:  # noqa: BLE001 - any failure to pickle means: try the next, then send a description
            pass
    reason = driver_error_reason(exc)
    if reason is not None:
        return L1dbError(reason)
    error, reason = describe_error(exc)
    return RuntimeError(f"{error}: {reason}")


def process_tile(job: TileJob, plan: VisitPlan, tile: int) -> TileOutcome:
    """The task of one tile, run by a pool worker: process it and return its outcome and records.

    Never raises for the tile's own failure: the error and the failure
    records come back in the `TileOutcome`, for the driver to write and raise.
    """
    held = HeldRecords()
    with _PROCESSORS_LOCK:
        if job.run in _ABANDONED:
            return TileOutcome(plan.visit_id, tile, None, held, started=False)
    began = time.time()
    try:
        result = _processor(job).process(plan, tile, held)
    except Exception as exc:
        return TileOutcome(plan.visit_id, tile, None, held, _portable(exc), traceback.format_exc(),
                           began_at=began, ended_at=time.time())
    return TileOutcome(plan.visit_id, tile, result, held, began_at=began, ended_at=time.time())
