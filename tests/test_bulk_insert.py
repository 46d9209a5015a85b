"""insert_frame / upsert_frame on every backend, with the full-width real tables.

NaN and NULL: a NaN in a floating-point column is stored as NULL and a NULL
reads back as NaN (see `l1db.frames`), so the comparison below treats them as
one. Every other value must read back exactly, bit for bit: float32 and
float64 values are drawn from random bit patterns (subnormals, extremes).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from l1db.config import L1dbConfig
from l1db.frames import L1dbInputError, check_frame, column_kind
from l1db.sql.bulk_insert import insert_frame, upsert_frame
from l1db.sql.database import make_engine
from l1db.sql.schema import L1Schema

TABLES = ("DiaObject", "DiaSource", "DiaForcedSource")


def _random_strings(rng: np.random.Generator, n: int, length: int) -> np.ndarray:
    alphabet = np.array(list("abcXYZ019_é\\\t\n"), dtype=object)
    sizes = rng.integers(1, length + 1, n)
    out = np.array(["".join(rng.choice(alphabet, size)) for size in sizes], dtype=object)
    out[0] = "é" * length                    # longest, non-ASCII
    out[1] = "\\" if length == 1 else "a\tb\\n\n"
    if length > 1:
        out[2] = ""
    return out


def random_frame(table: sa.Table, n: int, rng: np.random.Generator, null_fraction: float = 0.2) -> pd.DataFrame:
    """Every column filled with random values, extremes in the first rows,
    and NULLs in about ``null_fraction`` of each nullable column."""
    keys = {c.name for c in table.primary_key.columns}
    data: dict[str, object] = {}
    for column in table.columns:
        kind = column_kind(column)
        if kind == "bool":
            values = rng.integers(0, 2, n).astype(bool)
            values[:2] = [True, False]
        elif kind.startswith("int"):
            info = np.iinfo(kind)
            values = rng.integers(info.min, info.max, n, endpoint=True, dtype=kind)
            values[:3] = [info.min, info.max, 0]
        elif kind.startswith("float"):
            bits = np.uint32 if kind == "float32" else np.uint64
            values = rng.integers(0, np.iinfo(bits).max, n, endpoint=True, dtype=bits).view(kind)
            info = np.finfo(kind)
            values[:6] = [info.max, -info.max, info.smallest_subnormal, -info.smallest_normal, 0.0, 1.0 / 3.0]
            bad = ~np.isfinite(values)
            values[bad] = rng.standard_normal(bad.sum())
        else:
            values = _random_strings(rng, n, column.type.length)
        if column.nullable and column.name not in keys:
            nulls = rng.random(n) < null_fraction
            nulls[:6] = False
            if kind.startswith("float"):
                values[nulls] = np.nan
            elif kind == "str":
                values[nulls] = None
            else:
                values = pd.array(values, dtype=str(values.dtype).capitalize() if kind != "bool" else "boolean")
                values[nulls] = pd.NA
        data[column.name] = values
    first_key = table.primary_key.columns[0].name
    ids = rng.permutation(n).astype(np.int64) + 1
    ids[:2] = [np.iinfo(np.int64).min, np.iinfo(np.int64).max]
    data[first_key] = ids
    return pd.DataFrame(data)


def read_back(engine: sa.Engine, table: sa.Table) -> pd.DataFrame:
    """The table's rows in key order, through pandas (masked dtypes: lossless ints)."""
    keys = list(table.primary_key.columns)
    with engine.connect() as conn:
        return pd.read_sql(sa.select(table).order_by(*keys), conn, dtype_backend="numpy_nullable")


def assert_same_rows(table: sa.Table, expected: pd.DataFrame, back: pd.DataFrame) -> None:
    """Exact comparison of a checked frame with rows read back (NULL == NaN)."""
    keys = [c.name for c in table.primary_key.columns]
    expected = expected.sort_values(keys).reset_index(drop=True)
    assert len(back) == len(expected)
    assert list(back.columns) == list(expected.columns)
    for column in table.columns:
        kind = column_kind(column)
        want, got = expected[column.name], back[column.name]
        assert want.isna().tolist() == got.isna().tolist(), f"{column.name}: NULLs differ"
        present = want.notna().to_numpy()
        if kind.startswith("float"):
            w = want.to_numpy()[present]
            g = got.to_numpy(dtype=np.float64, na_value=np.nan)[present].astype(kind)
            assert np.array_equal(w.view(f"u{w.itemsize}"), g.view(f"u{g.itemsize}")) or np.array_equal(w, g), \
                f"{column.name}: values differ"
        elif kind == "str":
            assert list(want[present]) == list(got[present]), f"{column.name}: strings differ"
        else:
            w = want.to_numpy(dtype=np.int64, na_value=0)[present]
            g = got.astype("Int64").to_numpy(dtype=np.int64, na_value=0)[present]
            assert np.array_equal(w, g), f"{column.name}: values differ"


def count(engine: sa.Engine, table: sa.Table) -> int:
    with engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()


def test_round_trip_full_width(l1):
    engine, schema = l1
    tables = schema.tables
    rng = np.random.default_rng(20261121)
    checked = {name: check_frame(tables[name], random_frame(tables[name], 400, rng)) for name in TABLES}
    with engine.begin() as conn:
        for name in TABLES:
            assert insert_frame(conn, tables[name], checked[name]) == 400
    for name in TABLES:
        table = tables[name]
        assert len(table.columns) == {"DiaObject": 84, "DiaSource": 104, "DiaForcedSource": 14}[name]
        # Every nullable column really holds NULLs and values.
        nullable = [c.name for c in table.columns if c.nullable]
        assert all(0 < checked[name][c].isna().sum() < 400 for c in nullable)
        assert_same_rows(table, checked[name], read_back(engine, table))
    # NaN is stored as SQL NULL (not as a NaN value), on every backend.
    table = tables["DiaSource"]
    with engine.connect() as conn:
        nulls = conn.execute(sa.select(sa.func.count()).where(table.c.psfFlux.is_(None))).scalar_one()
    assert nulls == checked["DiaSource"]["psfFlux"].isna().sum() > 0


def test_mysql_multirow_insert_fallback(sql_db_url, sql_backend):
    """Without local_infile, MySQL goes through multi-row INSERT / REPLACE (other
    backends: the same test of their one path)."""
    schema = L1Schema(L1dbConfig(url=sql_db_url))
    args = {"connect_args": {"local_infile": 0}} if sql_backend == "mysql" else {}
    engine = make_engine(sql_db_url, **args)
    schema.create(engine)
    table = schema.tables["DiaSource"]
    rng = np.random.default_rng(17)
    first = check_frame(table, random_frame(table, 150, rng))
    second = check_frame(table, random_frame(table, 100, rng))
    second["diaSourceId"] = first["diaSourceId"].to_numpy()[:100]
    with engine.begin() as conn:
        insert_frame(conn, table, first)
        upsert_frame(conn, table, second)
    expected = pd.concat([first.iloc[100:], second], ignore_index=True)
    assert_same_rows(table, expected, read_back(engine, table))
    engine.dispose()


def test_subset_of_columns(l1):
    engine, schema = l1
    tables = schema.tables
    table = tables["DiaForcedSource"]
    full = random_frame(table, 50, np.random.default_rng(1))
    required = full[[c.name for c in table.columns if not c.nullable]]
    with engine.begin() as conn:
        insert_frame(conn, table, check_frame(table, required))
    back = read_back(engine, table)
    assert back["psfFlux"].isna().all() and back["band"].isna().all()
    assert_same_rows(table, check_frame(table, required), back)


def test_upsert_replaces_and_inserts(l1):
    engine, schema = l1
    tables = schema.tables
    table = tables["DiaSource"]
    rng = np.random.default_rng(7)
    first = check_frame(table, random_frame(table, 200, rng))
    with engine.begin() as conn:
        upsert_frame(conn, table, first)  # into an empty table: plain inserts
    second = check_frame(table, random_frame(table, 200, rng))
    # Half the keys exist already, half are new.
    second["diaSourceId"] = np.concatenate([first["diaSourceId"].to_numpy()[:100],
                                            np.arange(100, dtype=np.int64) + 10**12])
    with engine.begin() as conn:
        assert upsert_frame(conn, table, second.iloc[:50]) == 50
        # A second upsert of the same table in the same transaction.
        assert upsert_frame(conn, table, second.iloc[50:]) == 150
    assert count(engine, table) == 300
    expected = pd.concat([first.iloc[100:], second], ignore_index=True)
    assert_same_rows(table, expected, read_back(engine, table))


def test_upsert_rejects_repeated_key(l1):
    engine, schema = l1
    tables = schema.tables
    table = tables["DiaForcedSource"]
    frame = check_frame(table, random_frame(table, 20, np.random.default_rng(3)))
    frame = pd.concat([frame, frame.iloc[:1]], ignore_index=True)
    with pytest.raises(L1dbInputError, match="DiaForcedSource.*repeated"):
        with engine.begin() as conn:
            upsert_frame(conn, table, frame)
    assert count(engine, table) == 0


def test_rollback_leaves_nothing(l1):
    engine, schema = l1
    tables = schema.tables
    rng = np.random.default_rng(11)
    frames = {name: check_frame(tables[name], random_frame(tables[name], 100, rng)) for name in TABLES}
    with engine.connect() as conn:
        trans = conn.begin()
        for name in TABLES:
            insert_frame(conn, tables[name], frames[name])
        upsert_frame(conn, tables["DiaSource"], frames["DiaSource"])
        trans.rollback()
    # Without an explicit transaction, the first call begins one for the caller.
    with engine.connect() as conn:
        insert_frame(conn, tables["DiaObject"], frames["DiaObject"])
        assert conn.in_transaction()
        conn.rollback()
    assert all(count(engine, tables[name]) == 0 for name in TABLES)
    with engine.connect() as conn:
        insert_frame(conn, tables["DiaObject"], frames["DiaObject"])
        conn.commit()
    assert count(engine, tables["DiaObject"]) == 100


def test_duplicate_key_fails_and_rolls_back(l1):
    engine, schema = l1
    tables = schema.tables
    table = tables["DiaSource"]
    frame = check_frame(table, random_frame(table, 50, np.random.default_rng(5)))
    with engine.begin() as conn:
        insert_frame(conn, table, frame.iloc[:10])
    # PostgreSQL and SQLite raise IntegrityError; MySQL's LOAD DATA reports a warning,
    # which insert_frame raises as L1dbInputError.
    with pytest.raises((sa.exc.IntegrityError, L1dbInputError)):
        with engine.begin() as conn:
            insert_frame(conn, table, frame.iloc[5:])
    assert count(engine, table) == 10


BAD_INPUTS = {
    "empty frame": (lambda f: f.iloc[:0], []),
    "unknown columns": (lambda f: f.assign(fooBar=1.0, bazQux=2), ["fooBar", "bazQux"]),
    "missing required columns": (lambda f: f.drop(columns=["ra", "visit"]), ["ra", "visit"]),
    "string in DOUBLE": (lambda f: f.assign(dec="north"), ["dec"]),
    "fraction in INT": (lambda f: f.assign(psfNdata=f["psfNdata"].astype(float) + 0.5), ["psfNdata"]),
    "non-bool in BOOLEAN": (lambda f: f.assign(isDipole=2), ["isDipole"]),
    "NULL in non-nullable": (lambda f: f.assign(x=np.where(np.arange(len(f)) == 3, np.nan, 1.0)), ["x"]),
}


@pytest.mark.parametrize("kind", list(BAD_INPUTS))
def test_bad_input_writes_nothing(l1, kind):
    engine, schema = l1
    tables = schema.tables
    rng = np.random.default_rng(13)
    objects = check_frame(tables["DiaObject"], random_frame(tables["DiaObject"], 30, rng))
    sources = random_frame(tables["DiaSource"], 30, rng)
    change, columns = BAD_INPUTS[kind]
    with pytest.raises(L1dbInputError) as info:
        with engine.begin() as conn:  # one transaction per visit, as L1db.store does
            insert_frame(conn, tables["DiaObject"], objects)
            insert_frame(conn, tables["DiaSource"], check_frame(tables["DiaSource"], change(sources)))
    message = str(info.value)
    assert message.startswith("DiaSource:")
    assert all(c in message for c in columns), message
    assert all(count(engine, tables[name]) == 0 for name in TABLES)


def test_unchecked_frame_refused(l1):
    engine, schema = l1
    tables = schema.tables
    table = tables["DiaForcedSource"]
    frame = random_frame(table, 8, np.random.default_rng(2))
    with pytest.raises(TypeError, match="check_frame"):
        with engine.begin() as conn:
            insert_frame(conn, table, frame.assign(band=frame["band"].astype(object)))
    # Plain numpy ints and booleans (no NULLs) are accepted for masked columns.
    checked = check_frame(table, frame)
    checked["visit"] = checked["visit"].to_numpy(dtype=np.int64)
    with engine.begin() as conn:
        assert insert_frame(conn, table, checked) == 8
    assert_same_rows(table, check_frame(table, frame), read_back(engine, table))
    with pytest.raises(L1dbInputError, match="DiaForcedSource: empty"):
        with engine.begin() as conn:
            insert_frame(conn, table, checked.iloc[:0])
