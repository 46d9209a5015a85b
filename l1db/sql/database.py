"""Connecting to the L1 database: engines, and errors a user can read."""

from __future__ import annotations

import logging
from typing import Any

import sqlalchemy as sa

from ..config import check_driver, normalize_url, safe_url
from ..errors import DatabaseUnreachable, register_driver_errors

__all__ = ["make_engine", "check_connection", "server_version", "error_reason", "is_connection_error",
           "is_retryable_error", "PG_CONNECTION_STATES", "MYSQL_CONNECTION_ERRORS", "PG_CONFLICT_STATES",
           "MYSQL_CONFLICT_ERRORS"]

_LOG = logging.getLogger(__name__)



def make_engine(url: str, **kwargs: Any) -> sa.Engine:
    """Create an engine for ``url`` with the toolkit's driver choices.

    The engine keeps its connections open between visits: reconnecting every
    visit cost ~2 s per visit in the original prototype's measurements.
    """
    url = normalize_url(url)
    check_driver(sa.make_url(url), "database URL")
    connect_args: dict[str, Any] = kwargs.pop("connect_args", {})
    if url.startswith("mysql"):
        # LOAD DATA LOCAL INFILE is the MySQL bulk path; the client must allow it.
        connect_args.setdefault("local_infile", 1)
    elif url.startswith("postgresql"):
        connect_args.setdefault("connect_timeout", 10)
    if url.startswith("mysql"):
        connect_args.setdefault("connect_timeout", 10)
    return sa.create_engine(url, connect_args=connect_args, **kwargs)


def error_reason(exc: BaseException) -> str:
    """First line of the driver's message for a database error (no SQL, no traceback)."""
    lines = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


def check_connection(engine: sa.Engine) -> None:
    """Open and close one connection.

    Raises
    ------
    DatabaseUnreachable
        With a one-line reason and the URL without its password.
    """
    try:
        with engine.connect():
            pass
    except (sa.exc.OperationalError, sa.exc.InterfaceError, sa.exc.DatabaseError) as exc:
        raise DatabaseUnreachable(f"cannot connect to database {safe_url(engine.url)}: {error_reason(exc)}") from None


def server_version(conn: sa.Connection) -> str:
    """Backend name and server version, e.g. ``postgresql 15.20``."""
    info = conn.dialect.server_version_info
    version = ".".join(str(v) for v in info) if info else "unknown"
    if conn.dialect.name == "sqlite":
        import sqlite3

        version = sqlite3.sqlite_version
    return f"{conn.dialect.name} {version}"


#: PostgreSQL SQLSTATEs of a lost or refused connection: class 08 (connection
#: exception) and the server shutting down or starting (57P01 admin_shutdown,
#: 57P02 crash_shutdown, 57P03 cannot_connect_now).
PG_CONNECTION_STATES = ("57P01", "57P02", "57P03")
#: MySQL/MariaDB client and server error numbers of a lost or refused
#: connection: 2002/2003 cannot connect, 2006 server has gone away, 2013 lost
#: connection during query, 2055 lost connection (system error), 1053 server
#: shutdown in progress, 1927 connection killed, 4031 disconnected by the server.
MYSQL_CONNECTION_ERRORS = (2002, 2003, 2006, 2013, 2055, 1053, 1927, 4031)
#: PostgreSQL SQLSTATEs of a transaction the server rolled back to end a conflict with another one:
#: 40P01 deadlock_detected, 40001 serialization_failure. Trying the transaction again is the remedy.
PG_CONFLICT_STATES = ("40P01", "40001")
#: MySQL/MariaDB error numbers of the same: 1213 deadlock found (the transaction is rolled back),
#: 1205 lock wait timeout exceeded.
MYSQL_CONFLICT_ERRORS = (1213, 1205)


def _driver_modules() -> tuple[type[BaseException], ...]:
    """Base exception classes of the DBAPI drivers installed (raised raw by the bulk paths)."""
    bases: list[type[BaseException]] = []
    try:
        import psycopg2

        bases.append(psycopg2.Error)
    except ImportError:  # pragma: no cover - installed with the toolkit
        pass
    try:
        import MySQLdb

        bases.append(MySQLdb.Error)
    except ImportError:  # pragma: no cover
        pass
    return tuple(bases)


def is_retryable_error(exc: BaseException) -> bool:
    """Whether an SQLAlchemy or DBAPI error is worth trying the same work again.

    True for a lost or refused connection (`is_connection_error`) and for a
    transaction the server rolled back to end a conflict with a concurrent
    one (`PG_CONFLICT_STATES`, `MYSQL_CONFLICT_ERRORS`: the tiles of a visit,
    stored at once, may update the same DiaObjects near their borders).
    """
    if is_connection_error(exc):
        return True
    if isinstance(exc, sa.exc.DBAPIError) and isinstance(exc.orig, BaseException):
        exc = exc.orig
    module = type(exc).__module__
    if module.startswith("psycopg2"):
        return getattr(exc, "pgcode", None) in PG_CONFLICT_STATES
    if module.startswith("MySQLdb"):
        return bool(exc.args) and exc.args[0] in MYSQL_CONFLICT_ERRORS
    return False


def is_connection_error(exc: BaseException) -> bool:
    """Whether an SQLAlchemy or DBAPI error says the connection was lost or refused.

    True for what a server restart, a failover or a network cut produce:
    SQLAlchemy's invalidated connections and `DisconnectionError`, PostgreSQL
    errors of `PG_CONNECTION_STATES` (and libpq's errors without a state,
    "server closed the connection unexpectedly", "could not connect"),
    MySQL errors of `MYSQL_CONNECTION_ERRORS`. SQLite has none (no server).
    """
    if isinstance(exc, sa.exc.DisconnectionError):
        return True
    if isinstance(exc, sa.exc.DBAPIError):
        if exc.connection_invalidated:
            return True
        exc = exc.orig if isinstance(exc.orig, BaseException) else exc
    module = type(exc).__module__
    if module.startswith("psycopg2"):
        import psycopg2

        if isinstance(exc, psycopg2.InterfaceError):  # "connection already closed"
            return True
        if isinstance(exc, psycopg2.OperationalError):
            state = getattr(exc, "pgcode", None)
            return state is None or state.startswith("08") or state in PG_CONNECTION_STATES
        return False
    if module.startswith("MySQLdb"):
        import MySQLdb

        if isinstance(exc, MySQLdb.InterfaceError):  # a connection closed under the client
            return True
        code = exc.args[0] if exc.args else None
        return isinstance(exc, MySQLdb.OperationalError) and code in MYSQL_CONNECTION_ERRORS
    return False


register_driver_errors((sa.exc.SQLAlchemyError, *_driver_modules()), error_reason, is_retryable_error)
