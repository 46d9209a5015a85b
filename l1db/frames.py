"""Checking DataFrames against a table before they are written.

`check_frame` is the gate in front of the store path: it rejects a frame that
the table cannot hold (with a message naming the table and the columns) and
returns one whose columns are exactly the table's, in table order, each with
the dtype `column_dtype` gives for its column type:

============================  ==============================================
column type                   dtype of the checked column
============================  ==============================================
BOOLEAN                       ``boolean`` (pandas masked; NULL = ``pd.NA``)
TINYINT/SMALLINT/INT/BIGINT   ``Int8``/``Int16``/``Int32``/``Int64`` (masked)
REAL, FLOAT(p <= 24)          ``float32``; NULL = NaN
DOUBLE, FLOAT                 ``float64``; NULL = NaN
CHAR, VARCHAR, TEXT           ``str`` (pandas 3's string dtype); NULL = NaN
============================  ==============================================

Integer and boolean columns use pandas' masked dtypes, whose value and mask
arrays the bulk writers (`l1db.sql.bulk_insert`) read without a per-row step.

NaN and NULL: in a floating-point column NaN *is* NULL. MySQL cannot store
NaN at all, so for every backend a NaN is written as SQL NULL and a NULL reads
back as NaN; a NaN in a non-nullable column is therefore an error. Infinities
are rejected for the same reason (MySQL has none).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from typing import Any, cast

import numpy as np
import pandas as pd
import sqlalchemy

__all__ = [
    "L1dbInputError",
    "check_frame",
    "column_kind",
    "column_dtype",
    "table_dtypes",
    "typed_array",
    "string_array",
    "checked_values",
    "frame_of",
    "empty_frame",
    "new_frame",
    "PreparedRows",
    "PreparedVisit",
]

_LOG = logging.getLogger(__name__)


class L1dbInputError(ValueError):
    """Data that a table cannot hold; the message names the table and columns."""


# Column "kinds": the numpy dtype of the values and the range integers must fit.
_INT_KINDS = {"int8": np.int8, "int16": np.int16, "int32": np.int32, "int64": np.int64}
_PANDAS_DTYPE = {
    "bool": "boolean",
    "int8": "Int8",
    "int16": "Int16",
    "int32": "Int32",
    "int64": "Int64",
    "float32": "float32",
    "float64": "float64",
    "str": "str",
}


def column_kind(column: sqlalchemy.Column) -> str:
    """Classify a column's SQLAlchemy type as one of the kinds check_frame handles.

    Returns one of ``bool``, ``int8``, ``int16``, ``int32``, ``int64``,
    ``float32``, ``float64``, ``str``.

    Raises
    ------
    TypeError
        For column types the store path does not handle.
    """
    type_ = column.type
    if isinstance(type_, sqlalchemy.Boolean):
        return "bool"
    if isinstance(type_, sqlalchemy.Integer):
        if isinstance(type_, sqlalchemy.BigInteger):
            return "int64"
        if isinstance(type_, sqlalchemy.SmallInteger):
            return "int16"
        if type(type_).__name__ == "TINYINT":
            return "int8"
        return "int32"
    if isinstance(type_, sqlalchemy.Float):
        if isinstance(type_, sqlalchemy.Double):
            return "float64"
        if isinstance(type_, sqlalchemy.REAL):
            return "float32"
        if type_.precision is not None:
            return "float32" if type_.precision <= 24 else "float64"
        # MySQL's FLOAT is single precision; the generic Float is double elsewhere.
        return "float32" if type(type_).__module__.startswith("sqlalchemy.dialects.mysql") else "float64"
    if isinstance(type_, sqlalchemy.String):
        return "str"
    raise TypeError(f"column {column.table.name}.{column.name}: type {type_!r} is not supported by the store path")


def column_dtype(column: sqlalchemy.Column) -> str:
    """The pandas dtype (name) of ``column`` in a frame returned by `check_frame`."""
    return _PANDAS_DTYPE[column_kind(column)]


def table_dtypes(table: sqlalchemy.Table) -> dict[str, str]:
    """`column_dtype` of every column of ``table``, in table order."""
    return {c.name: column_dtype(c) for c in table.columns}


class _BadColumn(Exception):
    """Internal: a column's values cannot be converted (message says why)."""


def _input_values(series: pd.Series) -> tuple[np.ndarray, np.ndarray, str]:
    """Return ``(values, nulls, kind)`` of a column given to `check_frame` (any dtype).

    ``kind`` is the numpy kind of the values (``b``, ``i``, ``u``, ``f``,
    ``O``); ``values`` at null positions are arbitrary.
    """
    dtype = series.dtype
    if isinstance(dtype, np.dtype):
        values = series.to_numpy()
        if dtype.kind == "f":
            return values, np.isnan(values), "f"
        if dtype.kind in "biu":
            return values, np.zeros(len(values), dtype=bool), dtype.kind
        if dtype.kind in "OUS":
            values = values.astype(object, copy=False)
            return values, pd.isna(values), "O"
        raise _BadColumn(f"unsupported dtype {dtype}")
    # pandas extension dtypes: masked numbers and booleans, strings, categoricals.
    nulls = series.isna().to_numpy()
    numpy_dtype = getattr(dtype, "numpy_dtype", None)
    if numpy_dtype is not None and numpy_dtype.kind in "biuf":
        fill = False if numpy_dtype.kind == "b" else 0
        return series.to_numpy(dtype=numpy_dtype, na_value=fill), nulls, numpy_dtype.kind
    return series.to_numpy(dtype=object, na_value=None), nulls, "O"


def _object_kind(values: np.ndarray, nulls: np.ndarray) -> str:
    """Kind of the non-null values of an object column (``e`` = no values)."""
    inferred = pd.api.types.infer_dtype(values[~nulls], skipna=True)
    return {
        "empty": "e",
        "boolean": "b",
        "integer": "i",
        "floating": "f",
        "mixed-integer-float": "f",
        "string": "str",
    }.get(inferred, inferred)


def _to_float(values: np.ndarray, nulls: np.ndarray, src: str, dtype: type) -> np.ndarray:
    if src == "O":
        okind = _object_kind(values, nulls)
        if okind not in ("e", "i", "f"):
            raise _BadColumn(f"values are not numbers ({okind})")
        out: np.ndarray = np.zeros(len(values), dtype=dtype)
        out[~nulls] = values[~nulls].astype(np.float64)
    elif src in "iuf":
        with np.errstate(over="ignore"):
            out = values.astype(dtype, copy=False)
    else:
        raise _BadColumn("boolean values in a floating-point column")
    if src != "f" and nulls.any():
        out[nulls] = np.nan  # a new array: the masked source held 0 there
    finite = np.isfinite(out)
    if not finite.all():
        bad = ~finite & ~nulls
        if bad.any():
            if src != "O" and np.isfinite(values[bad]).all():
                raise _BadColumn(f"values out of range for {np.dtype(dtype).name}")
            raise _BadColumn("infinite values (not storable on every backend)")
    return out


def _to_int(values: np.ndarray, nulls: np.ndarray, src: str, dtype: type) -> pd.api.extensions.ExtensionArray:
    info = np.iinfo(dtype)
    if src == "O":
        okind = _object_kind(values, nulls)
        if okind not in ("e", "i", "f"):
            raise _BadColumn(f"values are not integers ({okind})")
        if okind == "i":
            # numpy's stubs refuse None as a value of where(); it makes an object array (None = missing).
            with_none = np.where(nulls, None, values)  # type: ignore[call-overload]
            values = pd.array(with_none, dtype="Int64").to_numpy(dtype=np.int64, na_value=0)
            src = "i"
        else:
            values = np.where(nulls, 0.0, values).astype(np.float64)
            src = "f"
    if src == "f":
        ok = values[~nulls]
        if not (np.isfinite(ok).all() and (ok == np.trunc(ok)).all()):
            raise _BadColumn("values are not integers")
    elif src not in "iu":
        raise _BadColumn("boolean values in an integer column")
    present = values[~nulls]
    if len(present) and (present.min() < info.min or present.max() > info.max):
        raise _BadColumn(f"values out of range for {np.dtype(dtype).name}")
    data: np.ndarray = np.where(nulls, 0, values).astype(dtype) if nulls.any() else values.astype(dtype, copy=False)
    return pd.arrays.IntegerArray(data, nulls.copy())


def _to_bool(values: np.ndarray, nulls: np.ndarray, src: str) -> pd.api.extensions.ExtensionArray:
    if src == "O":
        okind = _object_kind(values, nulls)
        if okind not in ("e", "b", "i", "f"):
            raise _BadColumn(f"values are not booleans ({okind})")
        values = np.where(nulls, False, values)
        src = "b" if okind in ("e", "b") else "f"
    if src != "b":
        present = values[~nulls]
        if not np.isin(present, (0, 1)).all():
            raise _BadColumn("values are not booleans (only True/False or 0/1 are)")
    data = values.astype(bool)
    if nulls.any():
        data[nulls] = False
    return pd.arrays.BooleanArray(data, nulls.copy())


def _to_str(values: np.ndarray, nulls: np.ndarray, src: str, length: int | None) -> np.ndarray:
    if src != "O":
        raise _BadColumn("values are not strings")
    okind = _object_kind(values, nulls)
    if okind not in ("e", "str"):
        raise _BadColumn(f"values are not strings ({okind})")
    out = pd.array(values, dtype="str")
    if length is not None and okind == "str":
        longest = max(map(len, values[~nulls]))
        if longest > length:
            raise _BadColumn(f"strings longer than {length} characters (longest: {longest})")
    return out


def _null_column(kind: str, n: int) -> np.ndarray | pd.api.extensions.ExtensionArray:
    if kind == "str":
        return pd.array(np.full(n, None, dtype=object), dtype="str")
    if kind.startswith("float"):
        return np.full(n, np.nan, dtype=kind)
    if kind == "bool":
        return pd.arrays.BooleanArray(np.zeros(n, dtype=bool), np.ones(n, dtype=bool))
    return pd.arrays.IntegerArray(np.zeros(n, dtype=_INT_KINDS[kind]), np.ones(n, dtype=bool))


def _default_value(column: sqlalchemy.Column) -> object | None:
    """A literal default of ``column`` (client or server side), or None."""
    default = column.default
    if default is not None and getattr(default, "is_scalar", False):
        return cast("sqlalchemy.ColumnDefault", default).arg  # is_scalar: a ScalarElementColumnDefault
    server_default = column.server_default
    arg = getattr(server_default, "arg", None)
    if arg is None:
        return None
    text = arg if isinstance(arg, str) else getattr(arg, "text", None)
    if text is None:
        return None
    text = text.strip().strip("'")
    kind = column_kind(column)
    try:
        if kind == "bool":
            return {"true": True, "false": False, "1": True, "0": False}[text.lower()]
        if kind.startswith("int"):
            return int(text)
        if kind.startswith("float"):
            return float(text)
    except (KeyError, ValueError):
        return None
    return text


def check_frame(table: sqlalchemy.Table, frame: pd.DataFrame) -> pd.DataFrame:
    """Validate ``frame`` against ``table`` and convert it to the table's dtypes.

    Parameters
    ----------
    table : `sqlalchemy.Table`
        The table the rows are meant for.
    frame : `pandas.DataFrame`
        Rows to store, one column per table column (any order). Columns the
        table allows to be NULL may be left out.

    Returns
    -------
    frame : `pandas.DataFrame`
        Every table column in table order (and the input's index), with the
        dtypes listed in the module docstring. A missing nullable column is
        added as all NULL, or filled with the column's literal default if it
        has one.

    Raises
    ------
    L1dbInputError
        If the frame is empty, has duplicate, unknown or missing required
        columns, values that do not fit a column's type (strings in a number
        column, fractions in an integer column, non-booleans in a boolean
        column, out-of-range numbers, too-long strings, infinities), or NULLs
        (NaN, None, ``pd.NA``) in a non-nullable column. The message names the
        table and the columns.
    """
    name = table.name
    if not isinstance(frame, pd.DataFrame):
        raise L1dbInputError(f"{name}: expected a pandas DataFrame, got {type(frame).__name__}")
    if len(frame) == 0 or len(frame.columns) == 0:
        raise L1dbInputError(f"{name}: empty frame ({len(frame)} rows, {len(frame.columns)} columns)")
    given = [str(c) for c in frame.columns]
    if len(set(given)) != len(given):
        dups = sorted({c for c in given if given.count(c) > 1})
        raise L1dbInputError(f"{name}: duplicate columns {dups}")
    known = set(table.columns.keys())
    unknown = [c for c in given if c not in known]
    if unknown:
        raise L1dbInputError(f"{name}: unknown columns {unknown}")
    present = set(given)
    missing = [
        c.name for c in table.columns
        if c.name not in present and not c.nullable and _default_value(c) is None
    ]
    if missing:
        raise L1dbInputError(f"{name}: missing required (non-nullable) columns {missing}")

    n = len(frame)
    out: dict[str, object] = {}
    bad: list[str] = []
    null_violations: list[str] = []
    for column in table.columns:
        kind = column_kind(column)
        if column.name not in present:
            default = _default_value(column)
            if default is None:
                out[column.name] = _null_column(kind, n)
            else:
                out[column.name] = pd.Series([default] * n, dtype=_PANDAS_DTYPE[kind]).array
            continue
        series = frame[column.name]
        try:
            values, nulls, src = _input_values(series)
            if nulls.all():
                converted = _null_column(kind, n)
            elif kind.startswith("float"):
                converted = _to_float(values, nulls, src, np.dtype(kind).type)
            elif kind.startswith("int"):
                converted = _to_int(values, nulls, src, _INT_KINDS[kind])
            elif kind == "bool":
                converted = _to_bool(values, nulls, src)
            else:
                converted = _to_str(values, nulls, src, getattr(column.type, "length", None))
        except _BadColumn as exc:
            bad.append(f"{column.name!r} ({column.type}): {exc}")
            continue
        if not column.nullable and nulls.any():
            null_violations.append(column.name)
        out[column.name] = converted
    if bad:
        raise L1dbInputError(f"{name}: cannot convert columns to their types: " + "; ".join(bad))
    if null_violations:
        raise L1dbInputError(f"{name}: NULL (NaN/None/NA) values in non-nullable columns {null_violations}")
    return pd.DataFrame(out, index=frame.index, copy=False)


# -- typed columns of what is read (every backend's read path) ---------------------------

_INT_KIND_NAMES = tuple(_INT_KINDS)


def typed_array(kind: str, values: np.ndarray, nulls: np.ndarray) -> np.ndarray | pd.api.extensions.ExtensionArray:
    """The column array of ``kind`` from values (arbitrary where NULL) and a NULL mask."""
    if kind.startswith("float"):
        values = values.astype(kind, copy=False)
        if nulls.any():
            values[nulls] = np.nan
        return values
    if kind == "bool":
        return pd.arrays.BooleanArray(values.astype(bool, copy=False), nulls)
    if kind in _INT_KIND_NAMES:
        return pd.arrays.IntegerArray(values.astype(kind, copy=False), nulls)
    raise AssertionError(kind)


def checked_values(series: pd.Series, kind: str) -> tuple[np.ndarray, np.ndarray]:
    """Values (arbitrary where NULL) and NULL mask of a column of a checked frame: `typed_array` undone.

    What every backend's store path sends. ``kind`` is the column's
    `column_kind`; strings come as an object array (None where NULL). An
    integer or boolean column may also hold a plain numpy dtype (no NULLs).
    No per-row work: masked arrays give their value and mask arrays.
    """
    if kind == "str":
        return series.to_numpy(dtype=object, na_value=None), series.isna().to_numpy()
    if kind.startswith("float"):
        values = series.to_numpy()
        return values, np.isnan(values)
    if isinstance(series.dtype, np.dtype):
        return series.to_numpy(), np.zeros(len(series), dtype=bool)
    array = series.array
    numpy_dtype = array.dtype.numpy_dtype
    return array.to_numpy(dtype=numpy_dtype, na_value=numpy_dtype.type(0)), array.isna()


def string_array(values: np.ndarray, nulls: np.ndarray) -> pd.api.extensions.ExtensionArray:
    """pandas ``str`` array from an object array of str (anything where NULL)."""
    if nulls.any():
        values[nulls] = None
    return pd.array(values, dtype="str")


def frame_of(columns: Sequence[sqlalchemy.Column], arrays: Sequence[object]) -> pd.DataFrame:
    """A frame of ``arrays`` named after ``columns``, without copying them."""
    frame = pd.DataFrame(dict(enumerate(arrays)), copy=False)
    frame.columns = pd.Index([c.name for c in columns])
    return frame


def empty_frame(columns: Sequence[sqlalchemy.Column]) -> pd.DataFrame:
    """A frame with no rows and the `check_frame` dtypes of ``columns``."""
    empty = np.zeros(0, dtype=bool)
    arrays = [
        string_array(np.zeros(0, dtype=object), empty) if kind == "str"
        else typed_array(kind, np.zeros(0, dtype=kind if kind != "bool" else bool), empty)
        for kind in map(column_kind, columns)
    ]
    return frame_of(columns, arrays)


# -- frames built from a few columns (the API's users, the warm-ups) ---------------------

#: Columns of a published table that `l1db.api.L1db.store` sets itself.
_SET_BY_STORE = frozenset({"validityStartMjdTai", "validityEndMjdTai"})


def new_frame(table: sqlalchemy.Table, **columns: Any) -> pd.DataFrame:
    """A frame of ``table`` with every column, built from the few columns given.

    Parameters
    ----------
    table : `sqlalchemy.Table`
        The table, e.g. ``db.tables["DiaObject"]`` of an `l1db.L1db` (84
        columns for DiaObject, 103 for DiaSource, 14 for DiaForcedSource).
    **columns
        ``name=values``: an array-like (one value per row) or a scalar (the
        same value in every row). At least one must be an array-like: it
        sets the number of rows.

    Returns
    -------
    frame : `pandas.DataFrame`
        What `check_frame` returns: every column of ``table`` in table order,
        with its dtype. A column not given holds its schema default if it
        has one, else NULL if it is nullable, else zero (0, 0.0, False or an
        empty string: the counts such as ``nDiaSources`` or
        ``u_psfFluxNdata``).

    Raises
    ------
    L1dbInputError
        If no array-like is given, the arrays differ in length, a key or
        position column is missing (the primary key columns and ``ra``,
        ``dec``, except DiaObject's ``validityStartMjdTai``, which
        `l1db.api.L1db.store` sets to the visit time: 0 until then), or `check_frame`
        refuses the values (it names the table and the columns).
    """
    name = table.name
    lengths = {key: len(value) for key, value in columns.items() if np.ndim(value) == 1}
    if not lengths:
        raise L1dbInputError(f"{name}: give at least one column as an array: it sets the number of rows")
    if len(set(lengths.values())) > 1:
        raise L1dbInputError(f"{name}: columns of different lengths {lengths}")
    n = next(iter(lengths.values()))
    identity = [*table.primary_key.columns.keys(), "ra", "dec"]
    missing = [c for c in identity if c in table.columns and c not in _SET_BY_STORE and c not in columns]
    if missing:
        raise L1dbInputError(f"{name}: missing key or position columns {missing}")
    data: dict[str, object] = {key: value if key in lengths else [value] * n for key, value in columns.items()}
    for column in table.columns:
        if column.name in data or column.nullable or _default_value(column) is not None:
            continue
        kind = column_kind(column)
        data[column.name] = np.full(n, "", dtype=object) if kind == "str" else np.zeros(n, dtype=kind)
    return check_frame(table, pd.DataFrame(data))


# -- what a store hands its backend ----------------------------------------------------------


@dataclasses.dataclass(frozen=True, eq=False)
class PreparedRows:
    """One table's rows, checked once for a store, with the sky pixel of each row.

    Made by `l1db.api.L1db` before anything is written and handed to the
    backend, which neither checks the rows again nor places them again.

    Attributes
    ----------
    table : `str`
        Published table name: ``DiaObject``, ``DiaSource`` or ``DiaForcedSource``.
    frame : `pandas.DataFrame`
        What `check_frame` returns for the published table (every column, in
        table order, with its dtype; DiaObject's validity set by the store).
    pixels : `numpy.ndarray` or `None`
        Sky pixel (int64) of each row's ``ra``, ``dec`` in the pixelization
        the backend places this table by; `None` if it places it by none.
    """

    table: str
    frame: pd.DataFrame
    pixels: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.frame)


@dataclasses.dataclass(frozen=True, eq=False)
class PreparedVisit:
    """A visit's store, checked once: what `l1db.api.L1db.store` hands the backend to write.

    Attributes
    ----------
    visit_mjd : `float`
        The visit's time, MJD (TAI): the validity start of the new DiaObject versions.
    objects, sources, forced : `PreparedRows` or `None`
        New DiaObject versions, DiaSources and DiaForcedSources; `None` when
        the visit has none of that kind.
    visit_id : `int` or `None`
        The visit to record in L1dbVisit once its rows are stored, if any.
    tile, n_tiles : `int`
        Tile of the visit and the visit's number of tiles.
    out_of_order : `bool`
        The store may come after a later visit's (`l1db.api.L1db.store`).
    """

    visit_mjd: float
    objects: PreparedRows | None
    sources: PreparedRows | None
    forced: PreparedRows | None
    visit_id: int | None = None
    tile: int = 0
    n_tiles: int = 1
    out_of_order: bool = False

    @property
    def history(self) -> list[PreparedRows]:
        """The DiaSources and DiaForcedSources that the visit stores, in that order: appended as they are."""
        return [rows for rows in (self.sources, self.forced) if rows is not None]

    @property
    def tables(self) -> dict[str, PreparedRows]:
        """Every table's rows that the visit stores, by published table name."""
        return {rows.table: rows for rows in (self.objects, self.sources, self.forced) if rows is not None}
