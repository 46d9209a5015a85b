"""Connecting to a Cassandra cluster, running many statements at once, typed results.

The driver is used through its own fast paths: prepared statements, the
asynchronous API with a bounded number of requests in flight, and the
protocol handler that decodes every result page straight into numpy arrays
(`cassandra.protocol.NumpyProtocolHandler`), so that reading rows makes no
Python object per value except for the types it has no array for (boolean,
tinyint, text).
"""

from __future__ import annotations

import collections
import contextlib
import logging
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, Literal

import numpy as np
import pandas as pd
import sqlalchemy as sa
from cassandra import ConsistencyLevel, DriverException, OperationTimedOut, ReadTimeout, Unavailable, WriteTimeout
from cassandra.cluster import EXEC_PROFILE_DEFAULT, Cluster, ExecutionProfile, NoHostAvailable, ResponseFuture, Session
from cassandra.connection import ConnectionException
from cassandra.policies import RoundRobinPolicy, TokenAwarePolicy
from cassandra.protocol import NumpyProtocolHandler
from cassandra.query import UNSET_VALUE, PreparedStatement, tuple_factory

from ..config import CassandraURL
from ..errors import DatabaseUnreachable, register_driver_errors
from ..frames import checked_values, column_kind, empty_frame, frame_of, string_array, typed_array

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
    "log_partition_plan",
    "typed_frame",
    "error_reason",
    "serialized_column",
    "serialized_frame",
    "wire_bytes",
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
#: a connection that closed or failed.
CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    NoHostAvailable, OperationTimedOut, Unavailable, ReadTimeout, WriteTimeout, ConnectionException,
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


def connect(url: CassandraURL, options: Mapping[str, Any]) -> tuple[Cluster, Session, Session]:
    """Open sessions on the cluster of ``url`` with the ``[cassandra]`` options.

    Returns the cluster, a session whose results are numpy arrays (for the
    bulk reads and writes) and a plain one whose results are tuples (schema,
    visits, counts: the numpy parser does not decode every result, e.g.
    aggregates).

    Raises
    ------
    DatabaseUnreachable
        If no contact point answers.
    """
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
    except (NoHostAvailable, DriverException, OSError) as exc:
        cluster.shutdown()
        where = ",".join(url.hosts) + f":{url.port}"
        raise DatabaseUnreachable(f"cannot connect to Cassandra at {where}: {error_reason(exc)}") from None
    session.client_protocol_handler = NumpyProtocolHandler
    # Reads are whole partitions: no paging (one result page per statement).
    session.default_fetch_size = None
    return cluster, session, plain


def execute_concurrently(session: Session, statements: Iterable[tuple[Any, Any]], limit: int,
                         timeout: float | None = None) -> list[Any]:
    """Run ``(statement, parameters)`` pairs with at most ``limit`` in flight; results in order.

    The first failure is raised once the requests in flight have ended, so
    that nothing is left running behind the caller's back.
    """
    results: list[Any] = []
    pending: collections.deque[ResponseFuture] = collections.deque()
    failure: BaseException | None = None

    def collect(future: ResponseFuture) -> None:
        nonlocal failure
        try:
            results.append(future.result())
        except BaseException as exc:  # noqa: BLE001 - re-raised below, after draining
            failure = failure or exc
            results.append(None)

    for statement, parameters in statements:
        if failure is not None:
            break
        if len(pending) >= limit:
            collect(pending.popleft())
        pending.append(session.execute_async(statement, parameters, timeout=timeout))
    while pending:
        collect(pending.popleft())
    if failure is not None:
        raise failure
    return results


#: Big-endian wire format of each fixed-width column kind (`l1db.frames.column_kind`).
_WIRE = {"bool": ">u1", "int8": ">i1", "int16": ">i2", "int32": ">i4", "int64": ">i8",
         "float32": ">f4", "float64": ">f8"}


def wire_bytes(kind: str) -> int:
    """Bytes a value of column ``kind`` takes on the wire, its 4-byte length included (text: a guess)."""
    return 4 + (12 if kind == "str" else np.dtype(_WIRE[kind]).itemsize)


def serialized_column(values: np.ndarray, nulls: np.ndarray | None, kind: str, null: Any = UNSET_VALUE
                      ) -> np.ndarray:
    """A column in CQL's wire format: an object array of ``bytes``, ``null`` where NULL.

    What the driver's ``BoundStatement.bind`` makes value by value, made a
    column at a time by numpy (fixed-width values are big-endian bytes of
    their type; text is UTF-8). By default a NULL is left unset, never
    written: a NULL would be a tombstone. A row that replaces another of the
    same key must write it (``null=None``), or the old value would stay.
    """
    out = np.empty(len(values), dtype=object)
    if kind == "str":
        out[:] = [v.encode("utf-8") if isinstance(v, str) else v for v in values]
    else:
        wire = np.dtype(_WIRE[kind])
        out[:] = np.ascontiguousarray(values, dtype=wire).view(f"V{wire.itemsize}").tolist()
    if nulls is not None and nulls.any():
        out[nulls] = null
    return out


def serialized_frame(frame: pd.DataFrame, kinds: Sequence[str], null: Any = UNSET_VALUE) -> list[np.ndarray]:
    """Every column of ``frame`` (`check_frame` dtypes; ``kinds`` per column) by `serialized_column`."""
    return [serialized_column(*checked_values(frame[name], kind), kind, null)
            for name, kind in zip(frame.columns, kinds)]


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
