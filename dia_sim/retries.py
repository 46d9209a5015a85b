"""Retrying database work after connection-level errors: a tile's (the worker's) and the driver's own.

A connection-level database error (a server restart, a failover, a
Cassandra node gone: `l1db.errors.is_retryable`) ends the attempt; the
connections are closed and the work is tried again, up to ``retry_attempts``
times after waits of ``retry_wait`` seconds doubling each time
(`run_with_retries`). Every failed attempt writes a failure record. When the
retries are exhausted the run stops (`VisitFailed`) and can be resumed later.

The retries wait ``retry_wait`` x (2^``retry_attempts`` - 1) seconds in all
(`retry_budget`, 62 s by default). Where the database can tell how long its
servers took to start last time (local Cassandra nodes:
`l1db.api.L1db.restart_seconds`), the budget follows it: ``retry_wait`` is
raised, never lowered, so that the budget is at least `RESTART_MARGIN` times
that time (`fitted_retry_wait`).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from typing import TypeVar

from l1db.errors import describe_error, is_retryable
from l1db.timing_log import HeldRecords, TimingLogWriter

from .options import RunOptions

__all__ = ["RESTART_MARGIN", "VisitFailed", "fitted_retry_wait", "retry_budget", "run_with_retries"]

_LOG = logging.getLogger(__name__)

T = TypeVar("T")

#: The retry budget is at least this many times the servers' measured start:
#: a restart under load, or a node that also replays its commit log, takes longer.
RESTART_MARGIN = 2.0


def retry_budget(attempts: int, wait: float) -> float:
    """Seconds the retries wait in all: ``wait`` x (2^``attempts`` - 1)."""
    return wait * (2**attempts - 1)


def fitted_retry_wait(attempts: int, wait: float, restart_seconds: float | None) -> float:
    """The ``retry_wait`` whose budget is at least `RESTART_MARGIN` x ``restart_seconds``.

    ``wait`` itself if it already is, if the restart time is unknown, or if
    there are no retries (``attempts`` 0: the user asked to stop at the first
    failure); never less than ``wait``.
    """
    if restart_seconds is None or attempts == 0:
        return wait
    needed = RESTART_MARGIN * restart_seconds / (2**attempts - 1)
    return max(wait, math.ceil(needed * 10) / 10)  # to a tenth of a second, up


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
