"""Driver-level calls under SQLAlchemy: the bulk paths' raw cursor.

The bulk paths (binary COPY, the driver's ``fetchall``) go below SQLAlchemy
to the DBAPI cursor; `driver_cursor` gives them one in the caller's
transaction whose errors are SQLAlchemy's, as ``conn.execute`` raises them.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import sqlalchemy

__all__ = ["ensure_transaction", "driver_cursor"]


def ensure_transaction(conn: sqlalchemy.Connection) -> None:
    """Begin the transaction the caller will end, as the next ``execute()`` would.

    Driver-level calls (``copy_expert``) bypass SQLAlchemy's autobegin.
    """
    if not conn.in_transaction():
        conn.begin()


@contextlib.contextmanager
def driver_cursor(conn: sqlalchemy.Connection, statement: str) -> Iterator[Any]:
    """The DBAPI cursor of ``conn``, in its transaction (begun if none), closed afterwards.

    Parameters
    ----------
    conn : `sqlalchemy.Connection`
        Connection whose transaction the cursor's statements join.
    statement : `str`
        What the cursor runs, named in the error if it fails.

    Raises
    ------
    sqlalchemy.exc.DBAPIError
        The driver's error wrapped in the same class as ``conn.execute``
        raises (``IntegrityError``, ``OperationalError``, ...).
    """
    ensure_transaction(conn)
    dbapi_error = conn.dialect.loaded_dbapi.Error
    dbapi_connection = conn.connection.dbapi_connection
    assert dbapi_connection is not None  # the transaction just begun holds a live connection
    cursor = dbapi_connection.cursor()
    try:
        yield cursor
    except dbapi_error as exc:
        raise sqlalchemy.exc.DBAPIError.instance(statement, None, exc, dbapi_error) from exc
    finally:
        cursor.close()
