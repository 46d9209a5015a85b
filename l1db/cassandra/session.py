"""Connecting to a Cassandra cluster, running many statements at once, typed results.

The driver is used through its own fast paths: prepared statements, the
asynchronous API with a bounded number of requests in flight, and the
protocol handler that decodes every result page straight into numpy arrays
(`cassandra.protocol.NumpyProtocolHandler`), so that reading rows makes no
Python object per value except for the types it has no array for (boolean,
tinyint, text); writes go as batches already in the wire format
(`l1db.cassandra.wire`).
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import logging
import random
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, Literal, TypeVar

import numpy as np
import pandas as pd
import sqlalchemy as sa
from cassandra import (
    ConsistencyLevel,
    DriverException,
    OperationTimedOut,
    ReadFailure,
    ReadTimeout,
    Unavailable,
    WriteTimeout,
)
from cassandra.cluster import EXEC_PROFILE_DEFAULT, Cluster, ExecutionProfile, NoHostAvailable, ResponseFuture, Session
from cassandra.connection import ConnectionBusy, ConnectionException
from cassandra.policies import RoundRobinPolicy, TokenAwarePolicy
from cassandra.pool import NoConnectionsAvailable
from cassandra.protocol import NumpyProtocolHandler, OverloadedErrorMessage
from cassandra.query import PreparedStatement, tuple_factory

from ..config import CassandraURL
from ..errors import DatabaseUnreachable, register_driver_errors
from ..frames import column_kind, empty_frame, frame_of, string_array, typed_array
from ..timer import BackPressure
from .wire import send

# cassandra-driver 3.30.1's numpy result parser calls MaskedArray.newbyteorder(),
# which NumPy 2 removed; the driver swallows the AttributeError and returns no
# rows at all. Give MaskedArray the method back (a byte-order view, what NumPy 1
# did) so that the parser works; nothing else here uses it.
if not hasattr(np.ma.MaskedArray, "newbyteorder"):
    #: The orders `numpy.dtype.newbyteorder` takes (NumPy's own alias of them is private).
    _ByteOrder = Literal["S", "<", ">", "=", "|", "L", "B", "N", "I", "little", "big", "native"]

    def _newbyteorder(self: np.ma.MaskedArray, new_order: _ByteOrder = "S") -> np.ma.MaskedArray:
        return self.view(self.dtype.newbyteorder(new_order))

    np.ma.MaskedArray.newbyteorder = _newbyteorder  # type: ignore[attr-defined]

__all__ = [
    "connect",
    "consistency",
    "execute_concurrently",
    "InFlight",
    "backoff",
    "MAX_PAUSE",
    "is_back_pressure",
    "retry_refused",
    "log_partition_plan",
    "typed_frame",
    "error_reason",
    "is_connection_error",
    "CONNECTION_ERRORS",
]

_LOG = logging.getLogger(__name__)


def error_reason(exc: BaseException) -> str:
    """One line saying what went wrong in the driver or the cluster."""
    if isinstance(exc, NoHostAvailable):
        hosts = "; ".join(f"{host}: {type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"
                          for host, err in (exc.errors or {}).items())
        return f"no Cassandra host answered ({hosts})" if hosts else "no Cassandra host answered"
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__


#: The driver's errors of a node or cluster that did not answer: no host
#: reachable, a request or a replica that timed out, too few replicas alive,
#: a connection that closed or failed, a read a replica dropped (a
#: ``ReadFailure`` of an overloaded node, once `execute_concurrently` has
#: retried it alone: the tile is retried, as after a time-out).
CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    NoHostAvailable, OperationTimedOut, Unavailable, ReadTimeout, ReadFailure, WriteTimeout, ConnectionException,
)


def is_connection_error(exc: BaseException) -> bool:
    """Whether a driver error says a node or the cluster did not answer (see `CONNECTION_ERRORS`)."""
    return isinstance(exc, CONNECTION_ERRORS)


register_driver_errors((DriverException, NoHostAvailable, ConnectionException), error_reason, is_connection_error)


def consistency(name: str) -> int:
    """The driver's consistency level of a config name (``QUORUM``, ``ONE``, ...)."""
    return ConsistencyLevel.name_to_value[name]


class _GroupedWritesWarning(logging.Filter):
    """Drop the server's warnings about what the client does on purpose.

    DiaObjectLastToPartition has one partition per object, and its rows are
    sent in groups on purpose (one request per group instead of one per
    object); a cluster with the stock threshold would warn for every group.
    ``tableRowCount(exact=True)`` counts every table with a full scan on
    purpose (it says so), and the server would warn for every table.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return ("Unlogged batch covering" not in message
                and "Aggregation query used without partition key" not in message)


logging.getLogger("cassandra.protocol").addFilter(_GroupedWritesWarning())


class _MeasuredOverload(logging.Filter):
    """Drop the driver's warning for each request a node refused as overloaded.

    `execute_concurrently` waits and sends such requests again, logs one line
    per wait and records it in the timing log; a warning per request would
    bury that line under hundreds.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        return "overloaded" not in record.getMessage().lower() or record.levelno > logging.WARNING


logging.getLogger("cassandra.cluster").addFilter(_MeasuredOverload())


class _OneLineDriverErrors(logging.Filter):
    """Say the driver's logged errors in one line, without their tracebacks (unless debug logging is on).

    While a node is down, the driver's background threads log e.g.
    ``[control connection] Error connecting to HOST:`` with the failed
    connection's traceback: nothing a user can act on, and it buries the
    one line that says what happened. The message and the error's reason stay.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and record.exc_info[1] is not None \
                and not logging.getLogger(record.name).isEnabledFor(logging.DEBUG):
            record.msg = f"{record.getMessage()} {error_reason(record.exc_info[1])}"
            record.args = None
            record.exc_info = record.exc_text = None
        return True


for _name in ("cassandra.cluster", "cassandra.pool", "cassandra.connection"):
    logging.getLogger(_name).addFilter(_OneLineDriverErrors())


@contextlib.contextmanager
def _quiet_driver() -> Iterator[None]:
    """Keep the driver from logging tracebacks of a failed connection: the caller says it in one line."""
    logger = logging.getLogger("cassandra.cluster")
    level = logger.level
    logger.setLevel(logging.CRITICAL + 1)
    try:
        yield
    finally:
        logger.setLevel(level)


def connect(url: CassandraURL, options: Mapping[str, Any], pressure: BackPressure | None = None
            ) -> tuple[Cluster, Session, Session]:
    """Open sessions on the cluster of ``url`` with the ``[cassandra]`` options.

    Returns the cluster, a session whose results are numpy arrays (for the
    bulk reads and writes) and a plain one whose results are tuples (schema,
    visits, counts: the numpy parser does not decode every result, e.g.
    aggregates).

    A node that refuses the connection's own queries for load (the driver's
    schema and topology queries, answered ``Overloaded`` or on a busy
    connection) is waited for as every request is (`retry_refused`, with the
    ``backpressure_tries`` and ``backpressure_pause`` options); the waits and
    the tries made again are added to ``pressure``.

    Raises
    ------
    DatabaseUnreachable
        If no contact point answers, or the nodes still refuse after the tries.
    """
    limits = InFlight(requests=1, tries=int(options["backpressure_tries"]),
                      pause=float(options["backpressure_pause"]))
    try:
        return retry_refused(lambda: _connect_once(url, options), limits, pressure, "connecting")
    except (NoHostAvailable, DriverException, OSError) as exc:
        where = ",".join(url.hosts) + f":{url.port}"
        raise DatabaseUnreachable(f"cannot connect to Cassandra at {where}: {error_reason(exc)}") from None


def _connect_once(url: CassandraURL, options: Mapping[str, Any]) -> tuple[Cluster, Session, Session]:
    """One try of `connect`: a new `Cluster` (one that failed to connect is shut down, and cannot be reused)."""
    profile = ExecutionProfile(
        load_balancing_policy=TokenAwarePolicy(RoundRobinPolicy()),
        consistency_level=consistency(options["read_consistency"]),
        request_timeout=float(options["read_timeout"]),
        row_factory=tuple_factory,
    )
    cluster = Cluster(
        contact_points=list(url.hosts),
        port=url.port,
        protocol_version=5,
        execution_profiles={EXEC_PROFILE_DEFAULT: profile},
        connect_timeout=float(options["connect_timeout"]),
        control_connection_timeout=float(options["connect_timeout"]),
        # Schema changes wait for every node to agree, up to this long.
        max_schema_agreement_wait=120,
    )
    try:
        with _quiet_driver():
            session = cluster.connect()
            plain = cluster.connect()
    except BaseException:
        cluster.shutdown()
        raise
    session.client_protocol_handler = NumpyProtocolHandler
    # Reads are whole partitions: no paging (one result page per statement).
    session.default_fetch_size = None
    return cluster, session, plain


@dataclasses.dataclass(frozen=True)
class InFlight:
    """How much `execute_concurrently` keeps in flight, and how it meets the node's back-pressure.

    Attributes
    ----------
    requests : `int`
        Largest number of requests in flight.
    bytes : `int` or `None`
        Largest sum of the requests' sizes in flight (the sizes the caller
        gives: a batch's serialized values); `None` for no bound. A request
        larger than the bound is sent alone.
    tries : `int`
        Tries of one request the node refused or dropped (`is_back_pressure`)
        before its error is raised; 1 = never sent again.
    pause : `float`
        Seconds paused, once the requests in flight have ended, before the
        refused ones are sent again; doubled after each further refusal
        (`backoff`).
    reads : `bool`
        Whether the requests are reads: a read a node dropped (``ReadTimeout``,
        ``ReadFailure``) is tried again too (a write that timed out is not: it
        may have been applied).
    """

    requests: int
    bytes: int | None = None
    tries: int = 1
    pause: float = 0.0
    reads: bool = False


#: Longest pause before a resend, seconds: the doubling pauses stop growing here.
MAX_PAUSE = 30.0


def backoff(pause: float, refusals: int) -> float:
    """Seconds to pause after the ``refusals``-th refusal in a row: ``pause`` doubled each time, with jitter.

    Bounded by `MAX_PAUSE`, then drawn from its upper half (uniformly, "equal
    jitter"), so that the clients a node refused at the same moment do not
    all come back at the same moment.
    """
    if refusals < 1 or pause <= 0:
        return 0.0
    bound = min(MAX_PAUSE, pause * 2.0 ** (refusals - 1))
    return bound * (0.5 + 0.5 * _JITTER.random())


#: The jitter's random numbers (not the simulation's: its seeds must not depend on how often a node refused).
_JITTER = random.Random()


#: ``ReadFailure`` reason of a read that cannot succeed however often it is tried (protocol v5 error code map).
_READ_TOO_MANY_TOMBSTONES = 0x0001

#: What the driver records for a host that refused a request for load: the
#: connection's socket is not drained by the node (``ConnectionBusy``), no
#: stream id is free (``NoConnectionsAvailable``), or the node answered
#: ``Overloaded``.
_REFUSALS = (ConnectionBusy, NoConnectionsAvailable, OverloadedErrorMessage)


def is_back_pressure(exc: BaseException, reads: bool = False) -> bool:
    """Whether ``exc`` says the node refused or dropped a request for load, not that the request is wrong.

    Refused: ``NoHostAvailable`` whose every host's error is a `_REFUSALS`
    (the request was never accepted), or ``Overloaded``. With ``reads``, also
    a read the node dropped: ``ReadTimeout``, or ``ReadFailure`` unless a
    replica failed it for too many tombstones (that read cannot succeed).
    """
    if isinstance(exc, NoHostAvailable):
        errors = list((exc.errors or {}).values())
        return bool(errors) and all(isinstance(e, _REFUSALS) for e in errors)
    if isinstance(exc, OverloadedErrorMessage):
        return True
    if reads and isinstance(exc, ReadTimeout):
        return True
    if reads and isinstance(exc, ReadFailure):
        return _READ_TOO_MANY_TOMBSTONES not in (getattr(exc, "error_code_map", None) or {}).values()
    return False


def _refusal_kind(exc: BaseException) -> str:
    """What refused a request: the error's class, or its hosts' errors' classes for ``NoHostAvailable``."""
    if isinstance(exc, NoHostAvailable) and exc.errors:
        return "/".join(sorted({type(e).__name__ for e in exc.errors.values()}))
    return type(exc).__name__


def execute_concurrently(session: Session, statements: Iterable[tuple[Any, ...]], limits: InFlight,
                         timeout: float | None = None, pressure: BackPressure | None = None) -> list[Any]:
    """Run ``(statement, parameters[, size])`` requests within ``limits``; results in order.

    At most ``limits.requests`` requests, and ``limits.bytes`` of their
    ``size`` (bytes, 0 if not given), are in flight. When the node refuses
    or drops a request (`is_back_pressure`), nothing more is sent: the
    requests in flight are waited for, then, after a pause, the refused ones
    alone are sent again, before the rest; a request refused ``limits.tries``
    times fails. Each refusal also halves the number of requests in flight
    allowed, which then grows back by one per that many requests answered
    (as TCP's congestion window does), so that the node is not sent the same burst
    again. The wait (from the refusal to the resend) and the number of
    requests sent again are added to ``pressure``.

    The first failure is raised once the requests in flight have ended, so
    that nothing is left running behind the caller's back.
    """
    results: list[Any] = []
    #: In flight: (index in results, request, future, size, try).
    pending: collections.deque[tuple[int, tuple[Any, ...], ResponseFuture, int, int]] = collections.deque()
    #: To send, first: (index, request, try); refused requests go to its front.
    queue: collections.deque[tuple[int, tuple[Any, ...], int]] = collections.deque()
    requests = iter(statements)
    in_flight = 0
    failure: BaseException | None = None
    # Set from the driver's thread as soon as a request is refused, so that no more is sent meanwhile.
    refused = threading.Event()
    # What the refusals were since the last wait, by kind (for the log line).
    refusals: collections.Counter[str] = collections.Counter()
    tries = 1
    window = float(limits.requests)

    def on_error(exc: BaseException) -> None:
        if is_back_pressure(exc, limits.reads):
            refused.set()

    def collect() -> None:
        nonlocal failure, in_flight, refusals, tries, window
        index, request, future, size, attempt = pending.popleft()
        in_flight -= size
        try:
            results[index] = future.result()
            window = min(float(limits.requests), window + 1.0 / window)
        except BaseException as exc:  # noqa: BLE001 - re-raised below, after draining
            if failure is None and attempt < limits.tries and is_back_pressure(exc, limits.reads):
                queue.appendleft((index, request, attempt + 1))
                refusals[_refusal_kind(exc)] += 1
                tries = max(tries, attempt + 1)
                refused.set()
            else:
                failure = failure or exc

    while failure is None:
        if refused.is_set():
            # Back-pressure: let the node finish what it has, pause, then send the refused requests again.
            start = time.perf_counter()
            drained = len(pending)
            window = max(1.0, min(window, drained + 1) / 2)
            while pending:
                collect()
            refused.clear()
            if failure is not None:
                break
            if not refusals:
                # The driver calls a failed request's errback after its result is ready: the signal of a
                # refusal already handled can come after the wait it caused. Nothing to send again.
                continue
            time.sleep(limits.pause * 2 ** (tries - 2) if tries > 1 else 0.0)
            waited = time.perf_counter() - start
            _LOG.info("Cassandra back-pressure: %d requests refused or dropped (%s), waited %.3f s for %d in "
                      "flight, sending them again (try %d of %d, at most %d in flight)", sum(refusals.values()),
                      ", ".join(f"{kind}: {n}" for kind, n in sorted(refusals.items())), waited, drained, tries,
                      limits.tries, int(window))
            if pressure is not None:
                pressure.wait += waited
            refusals.clear()
            tries = 1
            continue
        if not queue:
            request = next(requests, None)
            if request is None:
                if not pending:
                    break
                collect()
                continue
            results.append(None)
            queue.append((len(results) - 1, request, 1))
        index, request, attempt = queue[0]
        size = int(request[2]) if len(request) > 2 else 0
        if pending and (len(pending) >= int(window)
                        or (limits.bytes is not None and in_flight + size > limits.bytes)):
            collect()
            continue
        queue.popleft()
        if attempt > 1 and pressure is not None:
            pressure.resent += 1
        future = send(session, request[0], request[1], timeout)
        future.add_errback(on_error)
        pending.append((index, request, future, size, attempt))
        in_flight += size
    while pending:
        collect()
    if failure is not None:
        raise failure
    return results


_T = TypeVar("_T")


def retry_refused(call: Callable[[], _T], limits: InFlight, pressure: BackPressure | None = None,
                  what: str = "a request") -> _T:
    """``call()`` (one request at a time: a prepare, a small statement, connecting), made again while refused.

    A refusal (`is_back_pressure`, reads or not as ``limits.reads``) is
    followed by a pause (`backoff` of ``limits.pause``: doubled each time,
    jittered, bounded) and another try, up to ``limits.tries`` tries; each
    wait is logged (``what`` says what waited), and the pauses and the tries
    made again are added to ``pressure``.
    """
    for attempt in range(1, limits.tries + 1):
        try:
            return call()
        except Exception as exc:
            if attempt >= limits.tries or not is_back_pressure(exc, limits.reads):
                raise
            reason = error_reason(exc)
        pause = backoff(limits.pause, attempt)
        _LOG.info("Cassandra back-pressure: %s refused (%s), pausing %.3f s before try %d of %d", what, reason,
                  pause, attempt + 1, limits.tries)
        time.sleep(pause)
        if pressure is not None:
            pressure.wait += pause
            pressure.resent += 1
    raise AssertionError("unreachable: the last try returns or raises")  # pragma: no cover


def _pages_by_column(results: Sequence[Any]) -> dict[str, list[np.ndarray]]:
    """The column arrays of every page of numpy-decoded results, by column name."""
    columns: dict[str, list[np.ndarray]] = {}
    for result in results:
        for page in result.current_rows:
            for name, array in page.items():
                columns.setdefault(name, []).append(array)
    return columns


def _typed_column(kind: str, parts: list[np.ndarray]) -> np.ndarray | pd.api.extensions.ExtensionArray:
    """A column of ``kind`` from numpy-decoded pages (masked arrays, or object arrays with None)."""
    if isinstance(parts[0], np.ma.MaskedArray):
        data = np.concatenate([np.ma.getdata(p) for p in parts])
        nulls = np.concatenate([np.ma.getmaskarray(p) for p in parts])
        return typed_array(kind, data, nulls)
    values = np.concatenate(parts) if len(parts) > 1 else parts[0]
    nulls = np.equal(values, None)  # type: ignore[call-overload]  # numpy's stubs refuse None; it tests each value
    if kind == "str":
        return string_array(values, nulls)
    if nulls.any():
        values = values.copy()
        values[nulls] = 0
    return typed_array(kind, values.astype(np.int8 if kind == "int8" else bool if kind == "bool" else kind), nulls)


def typed_frame(columns: Sequence[sa.Column], results: Sequence[Any]) -> pd.DataFrame:
    """A frame of ``columns`` with the `l1db.frames.check_frame` dtypes, from the results of the numpy session.

    The one way results of the numpy session (`connect`) are unpacked; the
    plain session's small results are read as Python values instead.
    """
    pages = _pages_by_column(results)
    if not pages or not len(next(iter(pages.values()))):
        return empty_frame(columns)
    arrays = [_typed_column(column_kind(c), pages[c.name]) for c in columns]
    return frame_of(columns, arrays)


def log_partition_plan(statement: PreparedStatement, partitions: int, how: str) -> None:
    """Log a statement's plan, as the SQL backends log EXPLAIN: CQL has none, the partitions it reads are its plan."""
    _LOG.info("query plan for %s: reads %d partitions (%s)", statement.query_string, partitions, how)
