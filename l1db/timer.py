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

__all__ = ["TimingRecord", "TimingSink", "Timer", "null_sink"]


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
    """

    op: str
    real: float
    user: float
    sys: float
    rows: int | None = None


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
    """

    def __init__(self, op: str, sink: TimingSink | None = None, rows: int | None = None) -> None:
        self.op = op
        self.sink = sink or null_sink
        self.rows = rows
        self.record: TimingRecord | None = None

    def __enter__(self) -> Timer:
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
        )
        self.sink(self.record)
