"""read_frame on every backend: full-width rows read back exactly as stored.

"Exactly": `pandas.testing.assert_frame_equal` with ``check_exact=True``, so
dtypes, NULL positions and every bit of every float must agree (NaN is NULL,
see `l1db.frames`).
"""

from __future__ import annotations

import types

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from l1db_frames import random_rows
from sqlalchemy.dialects import postgresql

from l1db.config import L1dbConfig
from l1db.frames import check_frame, column_dtype, column_kind, empty_frame
from l1db.sql.bulk_insert import insert_frame, pg_copy_buffer
from l1db.sql.bulk_read import _parse_copy, read_frame
from l1db.sql.pg_copy import pg_wire_type
from l1db.sql.schema import PIXEL_COLUMN, L1Schema

TABLES = ("DiaObject", "DiaSource", "DiaForcedSource")


def _with_extremes(table: sa.Table, frame: pd.DataFrame) -> pd.DataFrame:
    """Rows 0-5 get each type's extremes; row 6 is NULL in every nullable column."""
    frame = frame.copy()
    for column in table.columns:
        kind = column_kind(column)
        name = column.name
        if kind.startswith("int"):
            info = np.iinfo(kind)
            frame.loc[0:2, name] = [info.min, info.max, 0]
        elif kind.startswith("float"):
            info = np.finfo(kind)
            frame.loc[0:5, name] = [info.max, -info.max, info.smallest_subnormal, -info.smallest_normal,
                                    0.0, 1.0 / 3.0]
        elif kind == "bool":
            frame.loc[0:1, name] = [True, False]
        else:
            length = column.type.length
            # Non-ASCII, quote and backslash; '' only where it is not padded (CHAR is).
            special = ["é" * length, "'", "\\", "%"]
            if isinstance(column.type, sa.VARCHAR) and not isinstance(column.type, sa.CHAR):
                special += ["", "a%'\\\tb"[:length]]
            frame.loc[0 : len(special) - 1, name] = [s[:length] for s in special]
        if column.nullable and name not in {c.name for c in table.primary_key.columns}:
            frame.loc[6, name] = None
    return frame


def _stored_frame(schema: L1Schema, name: str, n: int, rng: np.random.Generator) -> pd.DataFrame:
    table = schema.tables[name]
    keys = np.arange(n, dtype=np.int64) * 7 - 3 * n
    keys[:2] = [np.iinfo(np.int64).min, np.iinfo(np.int64).max]
    fixed = {table.primary_key.columns[0].name: keys}
    frame = random_rows(rng, schema.definitions[name], n, **fixed)
    if PIXEL_COLUMN in table.columns:
        frame[PIXEL_COLUMN] = rng.integers(0, 2**60, n)
    return check_frame(table, _with_extremes(table, check_frame(table, frame)))


def _store(engine: sa.Engine, table: sa.Table, frame: pd.DataFrame) -> None:
    with engine.begin() as conn:
        insert_frame(conn, table, frame)


def _ordered(frame: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    return frame.sort_values(keys, kind="stable", ignore_index=True)


def test_full_width_round_trip(l1):
    engine, schema = l1
    rng = np.random.default_rng(20261121)
    for name in TABLES:
        table = schema.tables[name]
        stored = _stored_frame(schema, name, 300, rng)
        # NULL and values in every nullable column, of every type.
        nullable = [c for c in table.columns if c.nullable]
        assert all(0 < stored[c.name].isna().sum() < 300 for c in nullable)
        if name == "DiaSource":
            assert {column_kind(c) for c in nullable} == {"bool", "int32", "int64", "float32", "float64", "str"}
        _store(engine, table, stored)
        keys = [c.name for c in table.primary_key.columns]
        with engine.connect() as conn:
            back = read_frame(conn, sa.select(*table.columns).order_by(*table.primary_key.columns))
        assert list(back.columns) == [c.name for c in table.columns]
        assert [str(t) for t in back.dtypes] == [column_dtype(c) for c in table.columns]
        pd.testing.assert_frame_equal(back, _ordered(stored, keys), check_exact=True)


def test_empty_results(l1):
    engine, schema = l1
    table = schema.tables["DiaSource"]
    stored = _stored_frame(schema, "DiaSource", 20, np.random.default_rng(1))
    expected = stored.iloc[:0].reset_index(drop=True)
    with engine.connect() as conn:
        # An empty table, then a where clause matching nothing.
        empty = read_frame(conn, sa.select(*table.columns))
        pd.testing.assert_frame_equal(empty, expected)
    _store(engine, table, stored)
    with engine.connect() as conn:
        nothing = read_frame(conn, sa.select(*table.columns).where(table.c.diaSourceId.in_([])))
    pd.testing.assert_frame_equal(nothing, expected)
    pd.testing.assert_frame_equal(empty_frame(list(table.columns)), expected)


def test_subset_in_other_order_with_literals(l1):
    """A column subset in another order; the where clause holds the kinds of
    literals the compiled statement must carry exactly (floats, '%', quotes)."""
    engine, schema = l1
    table = schema.tables["DiaSource"]
    stored = _stored_frame(schema, "DiaSource", 200, np.random.default_rng(2))
    _store(engine, table, stored)
    names = ["reliabilityVersion", "psfFlux", "band", "isDipole", "diaSourceId", "ra", "detector", "diaObjectId"]
    cut = float(np.nanmedian(stored["ra"]))
    ids = stored["diaSourceId"].to_numpy()[::3].tolist()
    where = sa.and_(
        table.c.ra <= cut,
        table.c.diaSourceId.in_(ids),
        sa.or_(table.c.reliabilityVersion.is_(None), table.c.reliabilityVersion.not_like("%'%"),
               table.c.reliabilityVersion == "'"),
    )
    with engine.connect() as conn:
        back = read_frame(conn, sa.select(*(table.c[n] for n in names)).where(where).order_by(table.c.diaSourceId))
    ra = stored["ra"].to_numpy()
    version = stored["reliabilityVersion"]
    keep = (ra <= cut) & stored["diaSourceId"].isin(ids).to_numpy() \
        & (version.isna() | ~version.str.contains("'", regex=False) | (version == "'")).to_numpy()
    expected = _ordered(stored.loc[keep, names], ["diaSourceId"])
    assert 10 < len(expected) < 200
    pd.testing.assert_frame_equal(back, expected, check_exact=True)


def test_reads_inside_the_callers_transaction(l1):
    engine, schema = l1
    table = schema.tables["DiaForcedSource"]
    stored = _stored_frame(schema, "DiaForcedSource", 50, np.random.default_rng(3))
    with engine.connect() as conn:
        insert_frame(conn, table, stored)
        seen = read_frame(conn, sa.select(*table.columns))
        assert conn.in_transaction()
        conn.rollback()
        after = read_frame(conn, sa.select(*table.columns))
    assert len(seen) == 50 and len(after) == 0


def test_errors(l1, sql_backend):
    engine, schema = l1
    table = schema.tables["DiaSource"]
    with engine.connect() as conn:
        with pytest.raises(TypeError, match="table columns only"):
            read_frame(conn, sa.select(sa.func.count()).select_from(table))
        missing = sa.Table("NoSuchTable", sa.MetaData(), sa.Column("x", sa.BigInteger))
        with pytest.raises(sa.exc.DBAPIError):
            read_frame(conn, sa.select(missing.c.x))


def test_parse_copy_stream():
    """The binary COPY parser reads what bulk_insert's packer writes; a damaged
    stream is an error, never a wrong frame."""
    schema = L1Schema(L1dbConfig(url="sqlite://"))
    table = schema.tables["DiaSource"]
    stored = _stored_frame(schema, "DiaSource", 100, np.random.default_rng(4))
    columns = list(table.columns)
    conn = types.SimpleNamespace(dialect=postgresql.psycopg2.dialect())
    wires = [pg_wire_type(conn.dialect, c) for c in columns]
    buffer = pg_copy_buffer(conn.dialect, columns, stored)
    pd.testing.assert_frame_equal(_parse_copy(buffer, columns, wires), stored, check_exact=True)
    with pytest.raises(RuntimeError, match="truncated"):
        _parse_copy(buffer[: len(buffer) // 2], columns, wires)
    with pytest.raises(RuntimeError, match="field count"):
        _parse_copy(buffer, columns[:-1], wires[:-1])
    with pytest.raises(RuntimeError, match="after the trailer"):
        _parse_copy(np.concatenate([buffer, buffer[-2:]]), columns, wires)
    with pytest.raises(RuntimeError, match="did not return a PostgreSQL binary COPY"):
        _parse_copy(buffer[5:], columns, wires)
    wrong = wires.copy()
    wrong[0] = ">i4"  # diaSourceId is BIGINT: 8-byte fields
    with pytest.raises(RuntimeError, match="diaSourceId"):
        _parse_copy(buffer, columns, wrong)
