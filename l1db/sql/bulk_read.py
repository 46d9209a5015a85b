"""Reading query results into typed DataFrames, column by column.

`read_frame` runs a select of table columns and returns a frame whose columns
have the dtypes `l1db.frames.check_frame` gives them (masked integers and
booleans, float32/float64 with NaN for NULL, pandas ``str``), so what is read
compares equal to what was stored.

- PostgreSQL (psycopg2): ``COPY (SELECT ...) TO STDOUT WITH (FORMAT binary)``
  inside the caller's transaction. A numba kernel walks the binary stream once
  and scatters every fixed-width field into its column's array (byte-swapped
  to native order) and NULL mask; text fields are gathered into a fixed-width
  bytes array per column and decoded by numpy. No Python object is made per
  value, except the ``str`` objects the pandas string dtype holds.
- MySQL, SQLite (and PostgreSQL through other drivers): the driver's own
  cursor and ``fetchall`` (its C code makes the row tuples; no SQLAlchemy Row
  objects); the values go into one 2-D object array, all numbers through one
  float64 cast (None -> NaN marks the NULLs; int64 values beyond 2**53 are
  cast from the objects), instead of ``DataFrame.from_records`` and
  ``astype``.
"""

from __future__ import annotations

import io
import itertools
import logging
import sys
from collections.abc import Sequence

import numba
import numpy as np
import pandas as pd
import sqlalchemy

from ..frames import column_kind, frame_of, string_array, typed_array
from .bulk_insert import pg_copy_buffer
from .dbapi import driver_cursor
from .pg_copy import PGCOPY_SIGNATURE, pg_wire_type

__all__ = ["read_frame", "warm_up"]

_LOG = logging.getLogger(__name__)

# The wire is big-endian; numpy arrays are in the machine's order.
_SWAP = sys.byteorder == "little"


def _selected_columns(stmt: sqlalchemy.Select) -> list[sqlalchemy.Column]:
    columns = list(stmt.selected_columns)
    others = [str(c) for c in columns if not isinstance(c, sqlalchemy.Column)]
    if others:
        raise TypeError(f"read_frame selects table columns only, not {others}")
    return [c for c in columns if isinstance(c, sqlalchemy.Column)]  # all of them (narrowed for the type checker)


# -- PostgreSQL: binary COPY TO ------------------------------------------------------


@numba.njit(cache=True, nogil=True, inline="always")
def _int32_at(buf: np.ndarray, pos: int) -> int:  # pragma: no cover - compiled
    value = (np.int64(buf[pos]) << 24) | (np.int64(buf[pos + 1]) << 16) | (np.int64(buf[pos + 2]) << 8) \
        | np.int64(buf[pos + 3])
    return int(value - (1 << 32) if value >= (1 << 31) else value)


@numba.njit(cache=True, nogil=True)
def _count_rows(buf: np.ndarray, pos: int, n_cols: int) -> int:  # pragma: no cover - compiled
    # Rows in the stream, or -1 if it is truncated, -2 if a row has the wrong
    # field count, -3 if anything follows the trailer.
    size = buf.size
    n_rows = 0
    while True:
        if pos + 2 > size:
            return -1
        fields = (np.int64(buf[pos]) << 8) | np.int64(buf[pos + 1])
        pos += 2
        if fields == 0xFFFF:  # trailer: field count -1
            return n_rows if pos == size else -3
        if fields != n_cols:
            return -2
        for _ in range(n_cols):
            if pos + 4 > size:
                return -1
            length = _int32_at(buf, pos)
            pos += 4
            if length > 0:
                pos += length
                if pos > size:
                    return -1
        n_rows += 1


@numba.njit(cache=True, nogil=True)
def _unpack_rows(buf: np.ndarray, pos: int, n_rows: int, width: np.ndarray, base: np.ndarray,
                 text_slot: np.ndarray, swap: bool, out: np.ndarray, nulls: np.ndarray,
                 text_pos: np.ndarray, text_len: np.ndarray) -> int:  # pragma: no cover - compiled
    # Scatter field j of row i to out[base[j] + i * width[j]:...] (fixed width)
    # or record its position and length (text columns, text_slot[j] >= 0).
    # The stream was checked by _count_rows. Returns 0, or j + 1 if a field of
    # column j does not have its type's width.
    n_cols = width.size
    for i in range(n_rows):
        pos += 2
        for j in range(n_cols):
            length = _int32_at(buf, pos)
            pos += 4
            slot = text_slot[j]
            if slot >= 0:
                text_pos[slot, i] = pos
                text_len[slot, i] = length
                if length < 0:
                    nulls[j, i] = True
                else:
                    pos += length
                continue
            w = width[j]
            start = base[j] + i * w
            if length < 0:
                nulls[j, i] = True
                for k in range(w):
                    out[start + k] = 0
                continue
            if length != w:
                return j + 1
            if swap:
                for k in range(w):
                    out[start + k] = buf[pos + w - 1 - k]
            else:
                for k in range(w):
                    out[start + k] = buf[pos + k]
            pos += w
    return 0


@numba.njit(cache=True, nogil=True)
def _gather_text(buf: np.ndarray, text_pos: np.ndarray, text_len: np.ndarray,
                 out: np.ndarray) -> None:  # pragma: no cover - compiled
    # Row i's bytes to out[i, :length], zero-padded (out starts zeroed).
    for i in range(text_pos.size):
        start = text_pos[i]
        for k in range(text_len[i]):
            out[i, k] = buf[start + k]


def _decode_text(buf: np.ndarray, text_pos: np.ndarray, text_len: np.ndarray, nulls: np.ndarray
                 ) -> pd.api.extensions.ExtensionArray:
    # A zero-padded 'S' array decodes in one numpy call; PostgreSQL text holds
    # no NUL bytes, so the padding cannot be confused with the data.
    n = text_pos.size
    width = max(int(text_len.max(initial=0)), 1)
    block = np.zeros((n, width), dtype=np.uint8)
    _gather_text(buf, text_pos, text_len, block)
    strings = np.strings.decode(block.view(f"S{width}").reshape(n), "utf-8")
    return string_array(strings.astype(object), nulls)


def _copy_out(conn: sqlalchemy.Connection, stmt: sqlalchemy.Select) -> np.ndarray:
    """The binary COPY stream of the select's rows, run in the caller's transaction."""
    # Literal binds are compiled for psycopg2's pyformat, so '%' is doubled;
    # mogrify with no parameters undoes exactly that, as execute() would.
    literal = str(stmt.compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True}))
    sink = io.BytesIO()
    with driver_cursor(conn, f"COPY ({literal}) TO STDOUT WITH (FORMAT binary)") as cursor:
        cursor.copy_expert(b"COPY (" + cursor.mogrify(literal, ()) + b") TO STDOUT WITH (FORMAT binary)", sink)
    return np.frombuffer(sink.getbuffer(), dtype=np.uint8)


def _parse_copy(buf: np.ndarray, columns: Sequence[sqlalchemy.Column], wires: Sequence[str]) -> pd.DataFrame:
    """Frame of a binary COPY stream whose fields are ``columns`` with wire types ``wires``."""
    kinds = [column_kind(c) for c in columns]
    sig = len(PGCOPY_SIGNATURE)
    if buf.size < sig + 8 or buf[:sig].tobytes() != PGCOPY_SIGNATURE:
        raise RuntimeError("COPY TO STDOUT did not return a PostgreSQL binary COPY stream")
    header_end = sig + 8 + int(buf[sig + 4 : sig + 8].view(">u4")[0])
    n_cols = len(columns)
    n_rows = _count_rows(buf, header_end, n_cols)
    if n_rows < 0:
        problem = {-1: "truncated", -2: "wrong field count", -3: "data after the trailer"}[n_rows]
        raise RuntimeError(f"damaged binary COPY stream: {problem}")

    width = np.array([0 if w == "text" else np.dtype(w).itemsize for w in wires], dtype=np.int64)
    text_slot = np.full(n_cols, -1, dtype=np.int64)
    text_cols = [j for j, w in enumerate(wires) if w == "text"]
    text_slot[text_cols] = np.arange(len(text_cols))
    # Each column's block starts 8-byte aligned, so its view is aligned.
    sizes = (width * n_rows + 7) // 8 * 8
    base = np.zeros(n_cols, dtype=np.int64)
    base[1:] = np.cumsum(sizes)[:-1]
    out = np.empty(int(sizes.sum()), dtype=np.uint8)
    nulls = np.zeros((n_cols, n_rows), dtype=bool)
    text_pos = np.zeros((len(text_cols), n_rows), dtype=np.int64)
    text_len = np.zeros((len(text_cols), n_rows), dtype=np.int64)
    bad = _unpack_rows(buf, header_end, n_rows, width, base, text_slot, _SWAP, out, nulls, text_pos, text_len)
    if bad:
        column = columns[bad - 1]
        raise RuntimeError(f"binary COPY: {column.name} fields are not {wires[bad - 1]} values")

    arrays: list[object] = []
    for j, (kind, wire) in enumerate(zip(kinds, wires)):
        if wire == "text":
            slot = text_slot[j]
            arrays.append(_decode_text(buf, text_pos[slot], text_len[slot], nulls[j]))
            continue
        native = np.dtype(wire).newbyteorder("=")
        values = out[base[j] : base[j] + width[j] * n_rows].view(native)
        arrays.append(typed_array(kind, values, nulls[j]))
    return frame_of(columns, arrays)


# -- other backends: the driver's rows ----------------------------------------------------


def _driver_rows(conn: sqlalchemy.Connection, stmt: sqlalchemy.Select) -> list[tuple]:
    """The driver's ``fetchall`` of the select, in the caller's transaction.

    SQLAlchemy's Row objects and result processors (int -> bool) cost about a
    quarter of the client's CPU time of a full-width fetch on MySQL, so the
    tuples are taken from the driver's cursor. The select is compiled with
    literal binds, as on PostgreSQL.
    """
    sql = str(stmt.compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True}))
    # format/pyformat drivers interpolate (undoing the compiler's '%%') only
    # when given parameters, as they are by execute().
    params = () if conn.dialect.paramstyle in ("format", "pyformat") else None
    with driver_cursor(conn, sql) as cursor:
        if params is None:
            cursor.execute(sql)
        else:
            cursor.execute(sql, params)
        return cursor.fetchall()


def _rows_read(conn: sqlalchemy.Connection, stmt: sqlalchemy.Select, columns: Sequence[sqlalchemy.Column]
               ) -> pd.DataFrame:
    rows = _driver_rows(conn, stmt)
    kinds = [column_kind(c) for c in columns]
    n_rows, n_cols = len(rows), len(columns)
    # One C loop over the driver's values into a (rows, columns) object array.
    table = np.fromiter(itertools.chain.from_iterable(rows), dtype=object, count=n_rows * n_cols)
    table = table.reshape(n_rows, n_cols)
    del rows
    text = [j for j, kind in enumerate(kinds) if kind == "str"]
    strings = {j: pd.array(table[:, j], dtype="str") for j in text}  # None -> NaN
    table[:, text] = None
    # Every number through one float64 cast, in row order (the order the
    # driver made the objects in, so memory is read in sequence); None -> NaN
    # marks the NULLs. Exact for floats, booleans and integers below 2**53.
    numbers = np.ascontiguousarray(table.astype(np.float64).T)
    nulls = np.isnan(numbers)
    arrays: list[object] = []
    for j, kind in enumerate(kinds):
        if kind == "str":
            arrays.append(strings[j])
        elif kind.startswith("float"):
            arrays.append(numbers[j].astype(kind, copy=False))
        else:
            values, null = numbers[j], nulls[j]
            values[null] = 0.0
            if kind == "int64" and not (np.abs(values) < 2.0**53).all():
                # Not exact as a double: cast the integer objects themselves.
                arrays.append(typed_array(kind, np.where(null, 0, table[:, j]).astype(np.int64), null))
            else:
                arrays.append(typed_array(kind, values.astype(np.int64), null))
    return frame_of(columns, arrays)


# -- public API ----------------------------------------------------------------------------


def read_frame(conn: sqlalchemy.Connection, stmt: sqlalchemy.Select) -> pd.DataFrame:
    """Run a select of table columns; return its rows as a typed DataFrame.

    Parameters
    ----------
    conn : `sqlalchemy.Connection`
        Connection to read through; on PostgreSQL the read joins its
        transaction (beginning one, as ``execute`` would, if there is none).
    stmt : `sqlalchemy.Select`
        Select whose selected columns are `sqlalchemy.Column` objects of tables.

    Returns
    -------
    frame : `pandas.DataFrame`
        One column per selected column, in the select's order, named like the
        column, with the dtype `l1db.frames.column_dtype` gives it; NULL is
        ``pd.NA`` in integer and boolean columns and NaN in floating-point and
        string columns. With no rows, the same columns and dtypes.

    Raises
    ------
    TypeError
        If a selected column is not a table column, or its type is not one
        the store path handles.
    sqlalchemy.exc.DBAPIError
        For errors of the database.
    """
    columns = _selected_columns(stmt)
    for column in columns:
        column_kind(column)  # unsupported types fail before the query
    if conn.dialect.name == "postgresql" and conn.dialect.driver == "psycopg2":
        wires = [pg_wire_type(conn.dialect, c) for c in columns]
        return _parse_copy(_copy_out(conn, stmt), columns, wires)
    return _rows_read(conn, stmt, columns)


def warm_up(dialect: sqlalchemy.Dialect, table: sqlalchemy.Table, frame: pd.DataFrame) -> None:
    """Parse ``frame`` (checked, of ``table``) as ``dialect``'s read path would, reading nothing.

    On PostgreSQL the frame is packed into a binary COPY stream and parsed
    back, which compiles the parsing kernels (or loads them from numba's
    cache); `l1db.api.L1db.warm_up` does it before any timed read.
    """
    if dialect.name == "postgresql" and dialect.driver == "psycopg2":
        columns = [table.columns[name] for name in frame.columns]
        _parse_copy(pg_copy_buffer(dialect, columns, frame), columns, [pg_wire_type(dialect, c) for c in columns])
