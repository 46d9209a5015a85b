"""The pool of workers that runs the tiles of a visit: a Dask cluster, local or distributed.

Without a scheduler address the pool is a `distributed.LocalCluster` made by
ap_proto and stopped at its end: ``workers`` processes of one thread each (at
most one per tile of a visit), forked from a server process that has imported the
tile's modules once (`FORKSERVER_PRELOAD`), not each spawned to import them anew.
A pool of one local worker is ap_proto's own process: the same task runs in it, with nothing to start, sharing the
catalogue already loaded, and a second Ctrl-C interrupts the tile's store
itself (its transaction rolls back at once). With a scheduler address (``tcp://HOST:PORT``) it is the workers of
a running Dask cluster, started with Dask's own commands (``dask scheduler``,
``dask worker``) on any hosts. Either way a tile is one Dask task, and each
worker keeps its state from task to task (`dia_sim.tile_task`).

Worker loss: Dask runs the task of a worker that died again on another one
(at most ``distributed.scheduler.allowed-failures`` times, then the task
fails with `distributed.KilledWorker`: a `PoolError` here). A local worker
that dies is restarted by its nanny. When a remote cluster has no worker
left for ``lost_after`` seconds the pool gives up with a `PoolError`.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import logging
import os
import socket
import time
import urllib.parse
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import distributed

__all__ = ["PoolError", "TilePool", "default_workers"]

_LOG = logging.getLogger(__name__)

#: Seconds to wait for the scheduler to answer, and for the first workers to join.
CONNECT_TIMEOUT = 30.0
#: Seconds between checks of the cluster's workers while tasks run.
POLL = 2.0


class PoolError(RuntimeError):
    """The worker pool cannot go on (no scheduler, no worker, a task whose workers keep dying); one line."""


def default_workers() -> int:
    """The machine's cores available to this process: the local pool's size by default."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def _import_dask() -> tuple[Any, Any]:
    """Dask and distributed, imported for a pool with workers only (a run without one does not pay for them).

    Importing distributed the first time sets its logger's level (INFO) from
    Dask's config: the level set before (ap_proto's ``-v``) is kept.
    """
    logger = logging.getLogger("distributed")
    level = logger.level
    import dask
    import distributed

    if level != logging.NOTSET:
        logger.setLevel(level)
    return dask, distributed


class TilePool:
    """The workers of a run, local or on a Dask cluster.

    Parameters
    ----------
    workers : `int`
        Local pool: number of worker processes (0: `default_workers`), at
        most ``n_tasks``. Remote cluster: the number of workers to wait for
        before starting (0: at least one).
    scheduler : `str`
        Address of a Dask scheduler (``tcp://HOST:PORT``); empty for a local pool.
    n_tasks : `int`
        Tasks of a visit (its tiles): a local pool has no more workers than that.
    lost_after : `float`
        Seconds a remote cluster may be without any worker while tasks wait.

    Raises
    ------
    PoolError
        If the scheduler cannot be reached or no worker joins in time.
    """

    def __init__(self, workers: int, scheduler: str = "", n_tasks: int = 1, lost_after: float = 60.0) -> None:
        self.scheduler = scheduler
        self.lost_after = lost_after
        self._cluster = None
        #: The Dask config of a local pool's worker processes, in force until `close`.
        self._config = contextlib.ExitStack()
        self.client: distributed.Client | None = None
        #: Futures of `run` or `submit` (future: key) whose results were not handed over yet (`drain`).
        self._unreturned: dict[Any, str] = {}
        #: A pool of one's tasks submitted and not yet run (`submit`).
        self._queued: list[tuple[str, Callable[..., Any], tuple[Any, ...]]] = []
        #: Why a submitted task was lost (its workers died, the scheduler cancelled it), if one was (`completed`).
        self.lost: str | None = None
        self._no_worker_since: float | None = None
        n = min(workers or default_workers(), max(n_tasks, 1))
        if not scheduler and n == 1:
            return  # the tasks run here, one after the other (`run`)
        dask, distributed = _import_dask()
        from .dask_worker_setup import WorkerSetup

        if scheduler:
            _refused(scheduler)
            try:
                self.client = distributed.Client(scheduler, timeout=CONNECT_TIMEOUT, set_as_default=False)
            except (OSError, TimeoutError) as exc:
                raise PoolError(f"cannot reach the Dask scheduler at {scheduler}: {_one_line(exc)} "
                                f"(start one with: dask scheduler --port PORT)") from None
            wanted = max(workers, 1)
            try:
                self.client.wait_for_workers(wanted, timeout=CONNECT_TIMEOUT)
            except (OSError, TimeoutError):
                have = len(self._workers())
                self.client.close()
                raise PoolError(f"{have} Dask worker(s) at {scheduler} after {CONNECT_TIMEOUT:g} s, {wanted} wanted "
                                f"(start them with: dask worker {scheduler} --nthreads 1)") from None
        else:
            # Local workers fork from one server process that has imported the tile's modules
            # (`_forkserver`), for the whole pool's life (a worker its nanny restarts too).
            self._config.enter_context(dask.config.set({"distributed.worker.multiprocessing-method": "forkserver"}))
            _forkserver(distributed)
            with dask.config.set({"distributed.worker.profile.enabled": False}):
                self._cluster = distributed.LocalCluster(
                    n_workers=n, threads_per_worker=1, processes=True, host="127.0.0.1", scheduler_port=0,
                    silence_logs=logging.CRITICAL,
                    # No dashboard; its HTTP server (health checks) on any free local port, not on a
                    # fixed 8787 that another run may hold.
                    dashboard_address=None, scheduler_kwargs={"dashboard_address": "127.0.0.1:0"},
                )
            self.client = distributed.Client(self._cluster, set_as_default=False)
        self.client.register_plugin(WorkerSetup(ignore_stop_signals=self._cluster is not None))
        # Futures of the standard library: waited on with a timeout, interrupted by Ctrl-C.
        self._executor = self.client.get_executor(pure=False)

    def _workers(self) -> dict[str, Any]:
        assert self.client is not None  # called only for a pool with a cluster
        return self.client.scheduler_info(n_workers=-1)["workers"]

    def describe(self) -> dict[str, Any]:
        """The pool for the provenance record: scheduler, number of workers, their hosts."""
        if self.client is None:
            return {"scheduler": "local", "workers": 1, "threads": 1, "hosts": [socket.gethostname()]}
        workers = self._workers()
        if self._cluster is not None:
            hosts = [socket.gethostname()]
        else:
            hosts = sorted({w["host"] for w in workers.values()})
        return {"scheduler": self.scheduler or "local", "workers": len(workers),
                "threads": sum(w.get("nthreads", 1) for w in workers.values()), "hosts": hosts}

    def run(self, tasks: Sequence[tuple[str, Callable[..., Any], tuple[Any, ...]]]) -> Iterator[Any]:
        """Run ``tasks`` (key, function, arguments); yield their results as they finish.

        A result is handed over once the loop over them asks for the next: a
        loop interrupted before that (`KeyboardInterrupt`) gets it again from
        `drain`.

        Raises
        ------
        PoolError
            After every other task finished: a task failed because the workers
            running it kept dying, or the cluster has had no worker for
            ``lost_after`` seconds (then without waiting for the rest).
        """
        if self.client is None:
            for _, fn, args in tasks:
                yield fn(*args)
            return
        futures = {self._executor.submit(fn, *args, key=key): key for key, fn, args in tasks}
        self._unreturned = dict(futures)
        yield from self._results(futures)

    # -- open loop: tasks submitted as their visits are released, results taken as they come --

    def submit(self, tasks: Sequence[tuple[str, Callable[..., Any], tuple[Any, ...]]]) -> None:
        """Queue ``tasks`` (key, function, arguments) behind those submitted before; see `completed`.

        The tasks of an open-loop run's visits, submitted at each release: they
        share the workers with the tasks already queued, in submission order.
        """
        if self.client is None:
            self._queued.extend(tasks)
            return
        for key, fn, args in tasks:
            self._unreturned[self._executor.submit(fn, *args, key=key)] = key

    def on_every_worker(self, fn: Callable[..., Any], arg: Any) -> None:
        """Run ``fn(arg)`` as a task on every worker (in the thread that runs its tiles), and wait for them all."""
        if self.client is None:
            fn(arg)
            return
        futures = [self.client.submit(fn, arg, workers=[address], allow_other_workers=False, pure=False)
                   for address in self._workers()]
        self.client.gather(futures)

    @property
    def pending(self) -> int:
        """Tasks submitted (`submit`) whose results were not handed over yet."""
        return len(self._queued) if self.client is None else len(self._unreturned)

    def completed(self, timeout: float) -> Iterator[Any]:
        """Results of submitted tasks that finish within ``timeout`` seconds (none: an empty iterator).

        A pool of one runs its next queued task here, whatever the timeout
        (a tile is not cut short), and sleeps out the timeout when nothing is
        queued. A task whose workers kept dying is not handed over: `lost`
        says so, and the caller stops once the rest have come back.

        Raises
        ------
        PoolError
            As `run`: a worker cannot run the task, or no worker was left for ``lost_after`` seconds.
        """
        # Idle waits end within POLL seconds: the caller looks at its stop signals between them.
        if self.client is None:
            if self._queued:
                _, fn, args = self._queued.pop(0)
                yield fn(*args)
            elif timeout > 0:
                time.sleep(min(timeout, POLL))
            return
        if not self._unreturned:
            time.sleep(max(min(timeout, POLL), 0.0))
            return
        futures = dict(self._unreturned)
        done, _ = concurrent.futures.wait(futures, timeout=max(min(timeout, POLL), 0.0),
                                          return_when=concurrent.futures.FIRST_COMPLETED)
        for future in done:
            ok, value = self._result(future, futures[future])
            if ok:
                yield value
            elif self.lost is None:
                self.lost = value
        if self._unreturned:
            self._check_workers()

    def drain(self, stop: tuple[Callable[..., Any], Any]) -> Iterator[Any]:
        """After `run` was interrupted: run ``stop`` (a function and its argument) on every worker, then
        yield the results of the tasks `run` had not handed over, as they finish.

        ``stop`` tells the workers to begin no more of the tasks (they return
        at once), so that this waits only for the tasks already running.
        Nothing for a pool of one (its task was interrupted with the loop).
        """
        if self.client is None or not self._unreturned:
            return
        self.client.run(stop[0], stop[1], wait=True)
        try:
            yield from self._results(dict(self._unreturned))
        except PoolError as exc:
            _LOG.warning("%s", exc)

    def _results(self, futures: dict[Any, str]) -> Iterator[Any]:
        """The results of ``futures`` (future: key) as they finish; see `run`."""
        pending = set(futures)
        lost: str | None = None
        self._no_worker_since = None
        while pending:
            done, pending = concurrent.futures.wait(pending, timeout=POLL,
                                                    return_when=concurrent.futures.FIRST_COMPLETED)
            for future in done:
                ok, value = self._result(future, futures[future])
                if ok:
                    yield value
                else:
                    lost = lost or value
            if pending:
                self._check_workers(pending)
        if lost is not None:
            raise PoolError(lost)

    def _result(self, future: Any, key: str) -> tuple[bool, Any]:
        """(True, the result) of a finished future, or (False, why it is lost); no longer unreturned.

        Raises
        ------
        PoolError
            A worker cannot unpickle the task.
        """
        import distributed  # imported already: a pool with futures has a client (`_import_dask`)

        try:
            return True, future.result()
        except distributed.KilledWorker as exc:
            return False, f"task {key}: the Dask workers running it died ({_one_line(exc)}); run again to resume"
        except ImportError as exc:
            # A worker host without the toolkit (or another version of it) cannot unpickle the task.
            raise PoolError(f"a Dask worker cannot run task {key}: {_one_line(exc)}; install "
                            f"this version of l1dbproto on every worker host") from None
        except concurrent.futures.CancelledError:
            return False, f"task {key} was cancelled by the Dask scheduler; run again to resume"
        finally:
            self._unreturned.pop(future, None)

    def _check_workers(self, pending: Iterable[Any] | None = None) -> None:
        """Raise `PoolError` when a remote cluster has had no worker for ``lost_after`` s (its tasks cancelled).

        ``pending``: the futures to cancel then (default: every one not handed over).
        """
        if self._cluster is not None:
            return
        if self._workers():
            self._no_worker_since = None
        elif self._no_worker_since is None:
            self._no_worker_since = time.monotonic()
        elif time.monotonic() - self._no_worker_since > self.lost_after:
            for future in list(pending if pending is not None else self._unreturned):
                future.cancel()
            raise PoolError(f"no Dask worker left at {self.scheduler} for {self.lost_after:g} s; "
                            f"start workers and run again to resume")

    def close(self, abandon: bool = False,
              teardown: tuple[Callable[..., Any], Any] | None = None) -> None:
        """Disconnect; a local pool's workers are stopped (``abandon``: at once, their work rolled back).

        ``teardown`` (a function and its argument) runs first on every
        worker, unless abandoning: a remote worker lives on after the run.
        """
        if self.client is None:
            return
        if teardown is not None and not abandon:
            try:
                self.client.run(teardown[0], teardown[1], wait=True)
            except Exception:  # noqa: BLE001 - a worker gone has nothing left to release
                _LOG.debug("the workers' teardown failed", exc_info=True)
        try:
            self.client.close(timeout=5 if abandon else 30)
        except Exception:  # noqa: BLE001 - closing what is broken may fail too
            _LOG.debug("closing the Dask client failed", exc_info=True)
        if self._cluster is not None:
            try:
                self._cluster.close(timeout=5 if abandon else 30)
            except Exception:  # noqa: BLE001
                _LOG.debug("closing the local Dask cluster failed", exc_info=True)
        self._config.close()


#: What the local workers' server process imports once, before it forks them: Dask's worker and the
#: tile's modules with their numba kernels loaded (`dia_sim.pool_preload`).
FORKSERVER_PRELOAD = ["distributed", "dia_sim.pool_preload"]


def _forkserver(distributed: Any) -> None:
    """Local workers forked from a server process that has imported `FORKSERVER_PRELOAD`.

    A spawned worker imports pandas, SQLAlchemy, numba, astropy and the toolkit anew (seconds of CPU
    each, per run); forked from the server they share its imports. The server is a fresh process
    started for the pool (not a fork of this one, which may hold database connections and threads).
    """
    context = distributed.utils.get_mp_context()  # sets Dask's own list once: this one replaces it
    context.set_forkserver_preload(FORKSERVER_PRELOAD)


def _refused(scheduler: str) -> None:
    """Raise `PoolError` at once if nothing listens at ``scheduler`` (Dask would retry for `CONNECT_TIMEOUT` s)."""
    parts = urllib.parse.urlsplit(scheduler)
    if parts.scheme != "tcp" or parts.hostname is None or parts.port is None:
        return
    try:
        with socket.create_connection((parts.hostname, parts.port), timeout=CONNECT_TIMEOUT):
            pass
    except ConnectionRefusedError:
        raise PoolError(f"cannot reach the Dask scheduler at {scheduler}: connection refused, nothing listens "
                        f"there (start one with: dask scheduler --port PORT)") from None
    except OSError:
        pass  # unreachable or slow: Dask's own connection says so


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
