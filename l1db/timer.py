"""Measuring one operation: real, user and system time and a row count.

A `Timer` produces a `TimingRecord` and hands it to a sink, any callable that
takes the record. Where the record ends up (a timing log, a list in a test) is
the sink's business, not the timer's: the database code never writes logs.

Example::

    with Timer("obj_select", sink) as timer:
        objects = read()
        timer.rows = len(objects)
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Callable
from types import TracebackType

__all__ = ["TimingRecord", "TimingSink", "Timer", "BackPressure", "null_sink"]


@dataclasses.dataclass(frozen=True)
class TimingRecord:
    """Result of timing one operation.

    Attributes
    ----------
    op : `str`
        Operation name (the list is in docs/timing-log.md).
    real : `float`
        Wall-clock seconds.
    user : `float`
        User CPU seconds of this process.
    sys : `float`
        System CPU seconds of this process.
    rows : `int` or `None`
        Rows read or written by the operation, if it has a count.
    wait : `float`
        Wall-clock seconds of ``real`` spent waiting on the database's
        back-pressure (a busy connection, an overloaded node, a dropped read:
        `BackPressure`); 0 where there was none or the backend has none.
    resent : `int`
        Requests sent again after the database refused or dropped them.
    """

    op: str
    real: float
    user: float
    sys: float
    rows: int | None = None
    wait: float = 0.0
    resent: int = 0


@dataclasses.dataclass
class BackPressure:
    """Running totals of one database client's waits on back-pressure.

    The client's execution layer adds to them when the database makes it wait
    (`l1db.cassandra.session.execute_concurrently`); a `Timer` given them
    records what was added while its block ran, so nested timers (a table's
    insert inside the whole store) each see their own share. A client is used
    by one thread at a time, as its sessions are.

    Attributes
    ----------
    wait : `float`
        Seconds waited so far.
    resent : `int`
        Requests sent again so far.
    """

    wait: float = 0.0
    resent: int = 0


TimingSink = Callable[[TimingRecord], None]


def null_sink(record: TimingRecord) -> None:
    """A sink that drops every record."""


class Timer:
    """Context manager timing the code in its block.

    Parameters
    ----------
    op : `str`
        Operation name.
    sink : callable, optional
        Receives the `TimingRecord` when the block ends without an exception.
        A failed operation is not a measurement, so nothing is recorded then.
    rows : `int`, optional
        Row count; may also be set on the timer inside the block.
    pressure : `BackPressure`, optional
        The client's back-pressure totals: the record gets what they grew
        by during the block (``wait``, ``resent``).
    """

    def __init__(self, op: str, sink: TimingSink | None = None, rows: int | None = None,
                 pressure: BackPressure | None = None) -> None:
        self.op = op
        self.sink = sink or null_sink
        self.rows = rows
        self.pressure = pressure
        self.record: TimingRecord | None = None

    def __enter__(self) -> Timer:
        self._pressure_start = (self.pressure.wait, self.pressure.resent) if self.pressure else (0.0, 0)
        self._times = os.times()
        self._start = time.perf_counter()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        real = time.perf_counter() - self._start
        end = os.times()
        if exc_type is not None:
            return
        self.record = TimingRecord(
            op=self.op,
            real=real,
            user=end.user - self._times.user,
            sys=end.system - self._times.system,
            rows=None if self.rows is None else int(self.rows),
            wait=self.pressure.wait - self._pressure_start[0] if self.pressure else 0.0,
            resent=self.pressure.resent - self._pressure_start[1] if self.pressure else 0,
        )
        self.sink(self.record)
