"""Writing checked DataFrames through each backend's bulk path.

`insert_frame` and `upsert_frame` write a frame returned by
`l1db.frames.check_frame` into a table, inside the caller's transaction
(they never commit; if the connection has no transaction yet one is begun,
as SQLAlchemy's autobegin would, and the caller commits or rolls it back):

- PostgreSQL: ``COPY ... FROM STDIN WITH (FORMAT binary)``; the binary stream
  is packed from the numpy column arrays by a numba kernel, so no value is
  ever formatted as text. Upsert: binary COPY into a temporary table, then
  ``INSERT ... SELECT ... ON CONFLICT (key) DO UPDATE`` (`upsert_statement`).
- MySQL / MariaDB: ``LOAD DATA LOCAL INFILE`` of a tab-separated file (the
  client needs ``local_infile=1``, which `l1db.sql.database.make_engine` sets; the
  server's stock ``local_infile`` is ON in MariaDB). Without a client that
  allows it, a multi-row ``INSERT`` (mysqlclient's ``executemany``) is used.
  Any warning from LOAD DATA (it turns errors such as duplicate keys into
  warnings) is raised as an error. Upsert: ``LOAD DATA ... REPLACE``.
- SQLite: ``executemany`` of one ``INSERT`` (``INSERT OR REPLACE`` to upsert).

`upsert_newer_frame` (keep the newer of a stored and an incoming row) stages
the frame in a temporary table through the same bulk path on every backend,
then moves it with one conditional ``INSERT ... SELECT`` built by
`upsert_statement`, the one builder of the dialects' native upserts.

Table and column names always come from the `sqlalchemy.Table` and are quoted
by the dialect's identifier preparer.
"""

from __future__ import annotations

import contextlib
import io
import itertools
import logging
import os
import tempfile
from collections.abc import Iterator, Mapping, Sequence

import numba
import numpy as np
import pandas as pd
import sqlalchemy
from sqlalchemy.dialects import mysql, postgresql, sqlite

from ..frames import L1dbInputError, checked_values, column_dtype, column_kind
from .dbapi import driver_cursor, ensure_transaction
from .pg_copy import PGCOPY_HEADER, PGCOPY_TRAILER, pg_wire_type

__all__ = ["insert_frame", "upsert_frame", "upsert_newer_frame", "upsert_statement", "pg_copy_buffer",
           "mysql_load_buffer", "warm_up"]

_LOG = logging.getLogger(__name__)

_temp_counter = itertools.count()


# -- column arrays ---------------------------------------------------------------


def _accepted_dtypes(column: sqlalchemy.Column) -> tuple[str, str]:
    # check_frame's dtype, or for masked ones the plain numpy dtype (no NULLs):
    # e.g. a pixelId column computed with numpy after the check.
    dtype = column_dtype(column)
    plain = {"boolean": "bool", "Int8": "int8", "Int16": "int16", "Int32": "int32", "Int64": "int64"}
    return dtype, plain.get(dtype, dtype)


def _columns(table: sqlalchemy.Table, frame: pd.DataFrame) -> list[sqlalchemy.Column]:
    """Columns of ``table`` present in ``frame``, in table order; check dtypes."""
    known = set(table.columns.keys())
    unknown = [c for c in frame.columns if c not in known]
    if unknown:
        raise L1dbInputError(f"{table.name}: unknown columns {unknown}")
    if len(frame) == 0:
        raise L1dbInputError(f"{table.name}: empty frame")
    columns = [c for c in table.columns if c.name in frame.columns]
    wrong = [c.name for c in columns if str(frame[c.name].dtype) not in _accepted_dtypes(c)]
    if wrong:
        raise TypeError(f"{table.name}: columns {wrong} do not have the dtypes of check_frame; check the frame first")
    return columns


def _quoted(conn: sqlalchemy.Connection, table: sqlalchemy.Table, columns: Sequence[sqlalchemy.Column]
            ) -> tuple[str, str]:
    preparer = conn.dialect.identifier_preparer
    return preparer.format_table(table), ", ".join(preparer.quote(c.name) for c in columns)


# -- PostgreSQL: binary COPY -------------------------------------------------------


@numba.njit(cache=True, nogil=True)
def _pack_copy_rows(data: np.ndarray, col_start: np.ndarray, lengths: np.ndarray,
                    out: np.ndarray, pos: int) -> int:  # pragma: no cover - compiled
    n_rows, n_cols = lengths.shape
    for i in range(n_rows):
        out[pos] = (n_cols >> 8) & 0xFF
        out[pos + 1] = n_cols & 0xFF
        pos += 2
        for j in range(n_cols):
            length = lengths[i, j]
            out[pos] = (length >> 24) & 0xFF
            out[pos + 1] = (length >> 16) & 0xFF
            out[pos + 2] = (length >> 8) & 0xFF
            out[pos + 3] = length & 0xFF
            pos += 4
            start = col_start[j]
            for k in range(length):  # length -1 (NULL): no data
                out[pos + k] = data[i, start + k]
            if length > 0:
                pos += length
    return pos


def pg_copy_buffer(dialect: sqlalchemy.Dialect, columns: Sequence[sqlalchemy.Column],
                   frame: pd.DataFrame) -> np.ndarray:
    """Pack the columns of a checked frame into a PostgreSQL binary COPY stream.

    Every column becomes a ``(rows, width)`` uint8 matrix of big-endian values
    (UTF-8 bytes, zero-padded, for text) and a per-row length (-1 for NULL);
    a numba kernel interleaves them with the per-row and per-field headers.
    """
    n = len(frame)
    blocks: list[np.ndarray] = []
    lengths = np.empty((n, len(columns)), dtype=np.int32)
    for j, column in enumerate(columns):
        wire = pg_wire_type(dialect, column)
        values, nulls = checked_values(frame[column.name], column_kind(column))
        if wire == "text":
            present = ~nulls
            encoded = np.strings.encode(values[present].astype(str), "utf-8")
            width = encoded.dtype.itemsize
            block = np.zeros((n, width), dtype=np.uint8)
            if width:
                block[present] = encoded.view(np.uint8).reshape(-1, width)
            lengths[:, j] = 0
            lengths[present, j] = np.strings.str_len(encoded)
        else:
            width = np.dtype(wire).itemsize
            block = values.astype(wire).view(np.uint8).reshape(n, width)
            lengths[:, j] = width
        lengths[nulls, j] = -1
        blocks.append(block)
    col_start = np.zeros(len(columns), dtype=np.int64)
    widths = np.array([b.shape[1] for b in blocks], dtype=np.int64)
    col_start[1:] = np.cumsum(widths)[:-1]
    data = np.ascontiguousarray(np.hstack(blocks))
    body = n * (2 + 4 * len(columns)) + int(np.clip(lengths, 0, None).sum(dtype=np.int64))
    out = np.empty(len(PGCOPY_HEADER) + body + len(PGCOPY_TRAILER), dtype=np.uint8)
    out[: len(PGCOPY_HEADER)] = np.frombuffer(PGCOPY_HEADER, dtype=np.uint8)
    end = _pack_copy_rows(data, col_start, lengths, out, len(PGCOPY_HEADER))
    out[end:] = np.frombuffer(PGCOPY_TRAILER, dtype=np.uint8)
    return out


def _pg_copy(conn: sqlalchemy.Connection, table: sqlalchemy.Table, columns: Sequence[sqlalchemy.Column],
             frame: pd.DataFrame) -> None:
    buffer = pg_copy_buffer(conn.dialect, columns, frame)
    table_sql, columns_sql = _quoted(conn, table, columns)
    sql = f"COPY {table_sql} ({columns_sql}) FROM STDIN WITH (FORMAT binary)"
    with driver_cursor(conn, sql) as cursor:
        cursor.copy_expert(sql, io.BytesIO(buffer.data), size=1 << 20)


# -- MySQL: LOAD DATA LOCAL INFILE -------------------------------------------------------
#
# Formatting floats as decimal text costs ~1 us a value in Python or numpy,
# which made text the whole cost of the store. Instead a float x is sent as two
# integers m, e with x == m * 2**e exactly (m < 2**53) and LOAD DATA's SET
# clause rebuilds it as @m * POW(2, @e): both factors and the product are exact
# doubles, and the server evaluates this faster than it parses decimal text.
# Integers are written by a numba kernel, so no value becomes a Python object.

_INT64_MIN_TEXT = np.frombuffer(b"-9223372036854775808", dtype=np.uint8)


@numba.njit(cache=True, nogil=True)
def _pack_tsv_rows(ints: np.ndarray, nulls: np.ndarray, sdata: np.ndarray, sstart: np.ndarray,
                   slen: np.ndarray, is_str: np.ndarray, min_text: np.ndarray,
                   out: np.ndarray) -> int:  # pragma: no cover - compiled
    n_rows, n_fields = ints.shape
    digits = np.empty(20, dtype=np.uint8)
    pos = 0
    for i in range(n_rows):
        for j in range(n_fields):
            if j > 0:
                out[pos] = 9  # tab
                pos += 1
            if nulls[i, j]:
                out[pos] = 92  # backslash
                out[pos + 1] = 78  # N
                pos += 2
            elif is_str[j]:
                start = sstart[j]
                for k in range(slen[i, j]):
                    b = sdata[i, start + k]
                    # LOAD DATA escapes: tab, newline, backslash, NUL.
                    if b == 9 or b == 10 or b == 92 or b == 0:
                        out[pos] = 92
                        out[pos + 1] = 116 if b == 9 else 110 if b == 10 else 92 if b == 92 else 48
                        pos += 2
                    else:
                        out[pos] = b
                        pos += 1
            else:
                v = ints[i, j]
                if v == -9223372036854775807 - 1:
                    for k in range(min_text.size):
                        out[pos + k] = min_text[k]
                    pos += min_text.size
                    continue
                if v < 0:
                    out[pos] = 45  # minus
                    pos += 1
                    v = -v
                nd = 0
                while True:
                    digits[nd] = 48 + v % 10
                    v //= 10
                    nd += 1
                    if v == 0:
                        break
                for k in range(nd):
                    out[pos + k] = digits[nd - 1 - k]
                pos += nd
        out[pos] = 10  # newline
        pos += 1
    return pos


def _float_parts(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Integers m, e with ``values == m * 2.0**e`` exactly and e >= -1074."""
    # float32 significands have 24 bits: shorter m, less text to send.
    bits = 24 if values.dtype == np.float32 else 53
    mantissa, exponent = np.frexp(values.astype(np.float64))
    m = (mantissa * 2.0**bits).astype(np.int64)
    e = exponent.astype(np.int64) - bits
    # Subnormals: 2**e itself must be a double, so shift the mantissa's
    # trailing zero bits into the exponent (exact: a subnormal has that many).
    low = e < -1074
    if low.any():
        shift = -1074 - e[low]
        m[low] = m[low] >> shift
        e[low] = -1074
    return m, e


def mysql_load_buffer(columns: Sequence[sqlalchemy.Column], frame: pd.DataFrame
                      ) -> tuple[np.ndarray, list[tuple[sqlalchemy.Column, str]]]:
    """Pack a checked frame as LOAD DATA text; return it and the field layout.

    The layout lists, per column, ``"value"`` (one field: integer, boolean
    0/1 or string) or ``"float"`` (two integer fields m and e).
    """
    n = len(frame)
    ints: list[np.ndarray] = []
    nulls: list[np.ndarray] = []
    str_blocks: list[tuple[int, np.ndarray, np.ndarray]] = []
    layout: list[tuple[sqlalchemy.Column, str]] = []
    zeros = np.zeros(n, dtype=np.int64)
    for column in columns:
        kind = column_kind(column)
        values, null = checked_values(frame[column.name], kind)
        if kind.startswith("float"):
            m, e = _float_parts(np.where(null, values.dtype.type(0), values))
            ints += [m, e]
            nulls += [null, null]
            layout.append((column, "float"))
            continue
        if kind == "str":
            present = ~null
            encoded = np.strings.encode(values[present].astype(str), "utf-8")
            width = encoded.dtype.itemsize
            block = np.zeros((n, width), dtype=np.uint8)
            lengths = np.zeros(n, dtype=np.int64)
            if width:
                block[present] = encoded.view(np.uint8).reshape(-1, width)
                lengths[present] = np.strings.str_len(encoded)
            str_blocks.append((len(ints), block, lengths))
            ints.append(zeros)
        else:
            ints.append(values.astype(np.int64))
        nulls.append(null)
        layout.append((column, "value"))
    n_fields = len(ints)
    is_str = np.zeros(n_fields, dtype=bool)
    sstart = np.zeros(n_fields, dtype=np.int64)
    slen = np.zeros((n, n_fields), dtype=np.int64)
    widths = 0
    for field, block, lengths in str_blocks:
        is_str[field] = True
        sstart[field] = widths
        slen[:, field] = lengths
        widths += block.shape[1]
    sdata = (np.ascontiguousarray(np.hstack([b for _, b, _ in str_blocks])) if str_blocks
             else np.zeros((n, 1), dtype=np.uint8))
    int_matrix = np.ascontiguousarray(np.column_stack(ints))
    null_matrix = np.ascontiguousarray(np.column_stack(nulls))
    # Upper bound: 20 characters an integer, strings fully escaped, separators.
    out = np.empty(n * n_fields * 21 + 2 * int(slen.sum()) + n, dtype=np.uint8)
    end = _pack_tsv_rows(int_matrix, null_matrix, sdata, sstart, slen, is_str, _INT64_MIN_TEXT, out)
    return out[:end], layout


def _mysql_load_data(conn: sqlalchemy.Connection, table: sqlalchemy.Table,
                     columns: Sequence[sqlalchemy.Column], frame: pd.DataFrame, replace: bool) -> None:
    buffer, layout = mysql_load_buffer(columns, frame)
    preparer = conn.dialect.identifier_preparer
    fields: list[str] = []
    assignments: list[str] = []
    for j, (column, how) in enumerate(layout):
        if how == "float":
            # User variables are numbered by position: no name from the data.
            fields += [f"@m{j}", f"@e{j}"]
            assignments.append(f"{preparer.quote(column.name)} = @m{j} * POW(2, @e{j})")
        else:
            fields.append(preparer.quote(column.name))
    set_sql = (" SET " + ", ".join(assignments)) if assignments else ""
    mode = "REPLACE " if replace else ""
    with tempfile.NamedTemporaryFile(prefix="l1db_load_", suffix=".tsv") as f:
        f.write(buffer.data)
        f.flush()
        result = conn.exec_driver_sql(
            f"LOAD DATA LOCAL INFILE %s {mode}INTO TABLE {preparer.format_table(table)} CHARACTER SET utf8mb4 "
            f"FIELDS TERMINATED BY '\\t' ESCAPED BY '\\\\' LINES TERMINATED BY '\\n' "
            f"({', '.join(fields)}){set_sql}",
            (f.name,),
        )
    # LOAD DATA LOCAL turns errors (duplicate keys, bad values) into warnings.
    dbapi = conn.connection.dbapi_connection
    assert dbapi is not None  # the connection that just ran the LOAD
    if dbapi.warning_count():
        warnings = conn.exec_driver_sql("SHOW WARNINGS LIMIT 5").all()
        raise L1dbInputError(f"{table.name}: LOAD DATA reported problems: {[tuple(w) for w in warnings]}")
    if not replace and result.rowcount != len(frame):
        raise RuntimeError(f"{table.name}: LOAD DATA wrote {result.rowcount} rows of {len(frame)}")


def _mysql_local_infile(conn: sqlalchemy.Connection) -> bool:
    # mysqlclient: CLIENT_LOCAL_FILES (0x80) is in the negotiated client flags.
    dbapi = conn.connection.dbapi_connection
    flag = getattr(dbapi, "client_flag", None)
    return bool(flag is not None and flag & 0x80)


# -- executemany (SQLite, and MySQL without LOAD DATA) ------------------------------------


def _python_rows(frame: pd.DataFrame, columns: Sequence[sqlalchemy.Column]) -> zip:
    """Rows as tuples of Python values (None = NULL), built column by column."""
    lists = []
    for column in columns:
        kind = column_kind(column)
        values, nulls = checked_values(frame[column.name], kind)
        values = values.tolist()
        for i in np.flatnonzero(nulls).tolist():
            values[i] = None
        lists.append(values)
    return zip(*lists)


def _executemany(conn: sqlalchemy.Connection, table: sqlalchemy.Table, columns: Sequence[sqlalchemy.Column],
                 frame: pd.DataFrame, verb: str) -> None:
    table_sql, columns_sql = _quoted(conn, table, columns)
    mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    placeholders = ", ".join([mark] * len(columns))
    sql = f"{verb} INTO {table_sql} ({columns_sql}) VALUES ({placeholders})"
    conn.exec_driver_sql(sql, list(_python_rows(frame, columns)))


# -- the bulk path, staging tables, the native upsert ----------------------------------------------


def _bulk_insert(conn: sqlalchemy.Connection, table: sqlalchemy.Table, columns: Sequence[sqlalchemy.Column],
                 frame: pd.DataFrame) -> None:
    """Insert a checked frame through the dialect's bulk path (the body of `insert_frame`)."""
    dialect = conn.dialect.name
    if dialect == "postgresql":
        _pg_copy(conn, table, columns, frame)
    elif dialect in ("mysql", "mariadb") and _mysql_local_infile(conn):
        _mysql_load_data(conn, table, columns, frame, replace=False)
    else:
        _executemany(conn, table, columns, frame, "INSERT")


def _drop_staging(conn: sqlalchemy.Connection, temp: sqlalchemy.Table) -> None:
    if conn.dialect.name in ("mysql", "mariadb"):
        # A plain DROP TABLE commits the transaction in MySQL; DROP TEMPORARY TABLE does not.
        conn.exec_driver_sql(f"DROP TEMPORARY TABLE {conn.dialect.identifier_preparer.format_table(temp)}")
    else:
        temp.drop(conn)


@contextlib.contextmanager
def _staged(conn: sqlalchemy.Connection, table: sqlalchemy.Table, columns: Sequence[sqlalchemy.Column],
            frame: pd.DataFrame) -> Iterator[sqlalchemy.Table]:
    """A temporary table of ``columns`` holding ``frame`` (written by `_bulk_insert`), dropped afterwards."""
    # A unique name per call: two upserts of one table may share a transaction.
    temp = sqlalchemy.Table(
        f"l1db_stage_{table.name}_{os.getpid()}_{next(_temp_counter)}",
        sqlalchemy.MetaData(),
        *(sqlalchemy.Column(c.name, c.type) for c in columns),
        prefixes=["TEMPORARY"],
        postgresql_on_commit="DROP",
    )
    ensure_transaction(conn)
    temp.create(conn)
    try:
        _bulk_insert(conn, temp, list(temp.columns), frame)
        yield temp
    except BaseException:
        # PostgreSQL's rollback undoes the CREATE (and its aborted transaction refuses any statement);
        # MySQL's temporary tables outlive a rollback, and SQLite may have created it outside one: drop
        # it on the connection's way back to the pool, never hiding the error that got us here.
        if conn.dialect.name != "postgresql":
            with contextlib.suppress(sqlalchemy.exc.SQLAlchemyError):
                _drop_staging(conn, temp)
        raise
    _drop_staging(conn, temp)


def _upsert_columns(table: sqlalchemy.Table, frame: pd.DataFrame, order: str | None = None
                    ) -> tuple[list[sqlalchemy.Column], list[str]]:
    """The columns of ``frame`` (as `_columns`) and the key of ``table``, checked for an upsert."""
    columns = _columns(table, frame)
    keys = [c.name for c in table.primary_key.columns]
    if not keys:
        raise L1dbInputError(f"{table.name}: no primary key to upsert on")
    missing = [k for k in [*keys, *([order] if order else [])] if k not in frame.columns]
    if missing:
        raise L1dbInputError(f"{table.name}: upsert needs the key columns {missing}")
    if frame.duplicated(keys).any():
        raise L1dbInputError(f"{table.name}: key {keys} repeated within the frame")
    return columns, keys


def upsert_statement(dialect: str, table: sqlalchemy.Table, source: Mapping[str, object] | sqlalchemy.Select,
                     keys: Sequence[str], update: Sequence[str], newer: str | None = None) -> sqlalchemy.Insert:
    """The dialect's native upsert: an INSERT that updates the stored row of a key it meets.

    PostgreSQL and SQLite: ``INSERT ... ON CONFLICT (keys) DO UPDATE SET ...
    [WHERE ...]``; MySQL / MariaDB: ``INSERT ... ON DUPLICATE KEY UPDATE``. A
    true update in place, never a delete and insert (which MySQL's
    ``REPLACE`` is: it would cascade to the rows that refer to the stored one).

    Parameters
    ----------
    dialect : `str`
        ``conn.dialect.name``.
    table : `sqlalchemy.Table`
        Destination table.
    source : `~collections.abc.Mapping` or `sqlalchemy.Select`
        One row (column name -> value), or a SELECT whose columns are named
        as those of ``table`` they go to (e.g. of a staging table).
    keys : sequence of `str`
        The key the conflict is on (the primary key or a unique index).
    update : sequence of `str`
        The SET map: each of these columns of a stored row takes the value
        of the incoming row of its key.
    newer : `str`, optional
        The condition under which a stored row is replaced: only if its
        ``newer`` column is not larger than the incoming row's (else the
        stored row is kept whole); `None`: always.

    Returns
    -------
    statement : `sqlalchemy.Insert`
        To run with ``conn.execute``.
    """
    module = {"postgresql": postgresql, "sqlite": sqlite, "mysql": mysql, "mariadb": mysql}.get(dialect)
    if module is None:
        raise NotImplementedError(f"no upsert for dialect {dialect}")
    insert = module.insert(table)
    if isinstance(source, sqlalchemy.Select):
        if dialect == "sqlite":
            # SQLite would read ON CONFLICT as a join's ON after a bare FROM (its documented ambiguity).
            source = source.where(sqlalchemy.true())
        insert = insert.from_select(list(source.selected_columns.keys()), source)
    else:
        insert = insert.values(dict(source))
    if module is mysql:
        incoming = insert.inserted
        if newer is None:
            return insert.on_duplicate_key_update([(n, incoming[n]) for n in update])
        # No WHERE here: every column is kept or replaced by the same comparison, and since MySQL
        # assigns left to right, the ``newer`` column comes last, once the others have compared against it.
        replace = table.c[newer] <= incoming[newer]
        return insert.on_duplicate_key_update([
            *((n, sqlalchemy.func.IF(replace, incoming[n], table.c[n])) for n in update if n != newer),
            *([(newer, sqlalchemy.func.GREATEST(table.c[newer], incoming[newer]))] if newer in update else []),
        ])
    excluded = insert.excluded
    where = None if newer is None else table.c[newer] <= excluded[newer]
    return insert.on_conflict_do_update(index_elements=list(keys), set_={n: excluded[n] for n in update},
                                        where=where)


# -- public API ------------------------------------------------------------------------------------


def warm_up(dialect: sqlalchemy.Dialect, table: sqlalchemy.Table, frame: pd.DataFrame) -> None:
    """Pack ``frame`` (checked, of ``table``) as ``dialect``'s bulk path would, sending nothing.

    The first pack compiles the dialect's numba kernel (or loads it from
    numba's cache); `l1db.api.L1db.warm_up` does it before any timed store.
    """
    columns = _columns(table, frame)
    if dialect.name == "postgresql":
        pg_copy_buffer(dialect, columns, frame)
    elif dialect.name in ("mysql", "mariadb"):
        mysql_load_buffer(columns, frame)


def insert_frame(conn: sqlalchemy.Connection, table: sqlalchemy.Table, frame: pd.DataFrame) -> int:
    """Insert the rows of a checked frame with the backend's bulk path.

    Parameters
    ----------
    conn : `sqlalchemy.Connection`
        Connection whose transaction the rows join; not committed here.
    table : `sqlalchemy.Table`
        Destination table.
    frame : `pandas.DataFrame`
        Rows returned by `l1db.frames.check_frame` for ``table`` (a subset of
        its columns is allowed; the others get their defaults).

    Returns
    -------
    rows : `int`
        Number of rows inserted.

    Raises
    ------
    L1dbInputError
        For an empty frame or unknown columns.
    TypeError
        If the frame's dtypes are not those `check_frame` produces.
    sqlalchemy.exc.DBAPIError
        If the database refuses the rows (e.g. a duplicate key).
    """
    _bulk_insert(conn, table, _columns(table, frame), frame)
    _LOG.debug("inserted %d rows into %s", len(frame), table.name)
    return len(frame)


def upsert_frame(conn: sqlalchemy.Connection, table: sqlalchemy.Table, frame: pd.DataFrame) -> int:
    """Insert or replace rows by the table's primary key (native upsert).

    A row whose key exists replaces the stored row; the others are inserted.
    Keys must be unique within ``frame``. Parameters as `insert_frame`.

    Returns
    -------
    rows : `int`
        Number of rows in ``frame`` (inserted or replaced).

    Raises
    ------
    L1dbInputError
        For an empty frame, unknown columns, a table without a primary key,
        a frame without the key columns or with a key repeated.
    """
    columns, keys = _upsert_columns(table, frame)
    dialect = conn.dialect.name
    if dialect == "postgresql":
        _upsert_staged(conn, table, columns, frame, keys, newer=None)
    elif dialect in ("mysql", "mariadb"):
        if _mysql_local_infile(conn):
            _mysql_load_data(conn, table, columns, frame, replace=True)
        else:
            _executemany(conn, table, columns, frame, "REPLACE")
    elif dialect == "sqlite":
        _executemany(conn, table, columns, frame, "INSERT OR REPLACE")
    else:
        raise NotImplementedError(f"no upsert for dialect {dialect}")
    _LOG.debug("upserted %d rows into %s", len(frame), table.name)
    return len(frame)


def upsert_newer_frame(conn: sqlalchemy.Connection, table: sqlalchemy.Table, frame: pd.DataFrame,
                       order: str) -> int:
    """Upsert by the primary key, but never replace a stored row whose ``order`` column is larger.

    For stores that may commit out of order (overlapping visits of an
    open-loop run, or a resumed run storing visits an earlier run left
    behind): the row with the largest ``order`` (a validity start) wins,
    whichever store commits last. The frame goes to a temporary table
    through the bulk path of `insert_frame`, then one ``INSERT ... SELECT``
    with the dialect's conditional upsert (`upsert_statement` with
    ``newer=order``) moves it into ``table``, in key order; a concurrent
    store of the same key waits for the row lock and is judged against the
    committed row. Parameters and errors as `upsert_frame`.
    """
    columns, keys = _upsert_columns(table, frame, order)
    _upsert_staged(conn, table, columns, frame, keys, newer=order)
    _LOG.debug("upserted %d rows into %s, newer kept", len(frame), table.name)
    return len(frame)


def _upsert_staged(conn: sqlalchemy.Connection, table: sqlalchemy.Table, columns: Sequence[sqlalchemy.Column],
                   frame: pd.DataFrame, keys: Sequence[str], newer: str | None) -> None:
    """Stage ``frame`` in a temporary table, then upsert it into ``table`` with one statement."""
    names = [c.name for c in columns]
    with _staged(conn, table, columns, frame) as temp:
        # In key order: two stores lock the rows they share in the same order (no deadlock between them).
        select = sqlalchemy.select(*temp.columns).order_by(*(temp.c[k] for k in keys))
        conn.execute(upsert_statement(conn.dialect.name, table, select, keys,
                                      [n for n in names if n not in keys], newer))
