"""check_frame: validation and conversion of DataFrames against the real tables."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from l1db.config import L1dbConfig
from l1db.frames import L1dbInputError, check_frame, column_kind, table_dtypes
from l1db.sql.schema import L1Schema


@pytest.fixture(scope="module")
def tables() -> dict[str, sa.Table]:
    return L1Schema(L1dbConfig(url="sqlite://")).tables


def required_frame(table: sa.Table, n: int = 4) -> pd.DataFrame:
    """Only the non-nullable columns, filled with small valid values."""
    data = {}
    for column in table.columns:
        if column.nullable:
            continue
        kind = column_kind(column)
        if kind.startswith("float"):
            data[column.name] = np.linspace(0.5, 1.5, n)
        elif kind == "bool":
            data[column.name] = np.arange(n) % 2 == 0
        elif kind == "str":
            data[column.name] = ["a"] * n
        else:
            data[column.name] = np.arange(n, dtype=np.int64) + 1
    return pd.DataFrame(data)


def test_dtypes_and_order(tables):
    table = tables["DiaSource"]
    checked = check_frame(table, required_frame(table))
    assert list(checked.columns) == list(table.columns.keys())
    assert {c: str(t) for c, t in checked.dtypes.items()} == table_dtypes(table)
    # The real schema's types: REAL -> float32, DOUBLE -> float64, masked ints and booleans.
    assert checked["psfFlux"].dtype == np.float32
    assert checked["ra"].dtype == np.float64
    assert str(checked["visit"].dtype) == "Int64"
    assert str(checked["detector"].dtype) == "Int16"
    assert str(checked["isDipole"].dtype) == "boolean"
    assert str(checked["band"].dtype) == "str"
    # Missing nullable columns come back all NULL.
    assert checked["psfFlux"].isna().all()
    assert checked["isDipole"].isna().all()
    assert checked["band"].isna().all()
    assert checked["ssObjectId"].isna().all()


def test_nulls_and_conversions(tables):
    table = tables["DiaSource"]
    frame = required_frame(table)
    frame["psfFlux"] = [1.0, np.nan, 2.5, None]          # NaN and None: NULL
    frame["ssObjectId"] = [1.0, np.nan, 3.0, 2.0**40]    # integral floats -> Int64
    frame["isDipole"] = [1, 0, np.nan, 1]                # 0/1 numbers -> boolean
    frame["band"] = pd.Series(["g", None, "r", "i"], dtype=object)
    frame["reliabilityVersion"] = ["v1", "v12", "", None]
    checked = check_frame(table, frame)
    assert checked["psfFlux"].isna().tolist() == [False, True, False, True]
    assert checked["ssObjectId"].tolist() == [1, pd.NA, 3, 2**40]
    assert checked["isDipole"].tolist() == [True, False, pd.NA, True]
    assert checked["band"].isna().tolist() == [False, True, False, False]
    assert checked["reliabilityVersion"].tolist()[:3] == ["v1", "v12", ""]
    # Masked inputs keep their mask.
    frame["visit"] = pd.array([1, 2, 3, 4], dtype="Int64")
    frame["ssObjectId"] = pd.array([None, 2, None, 4], dtype="Int64")
    checked = check_frame(table, frame)
    assert checked["ssObjectId"].isna().tolist() == [True, False, True, False]


def test_input_index_kept_and_input_unchanged(tables):
    table = tables["DiaForcedSource"]
    frame = required_frame(table)
    frame.index = [10, 11, 12, 13]
    before = frame.copy()
    checked = check_frame(table, frame)
    assert list(checked.index) == [10, 11, 12, 13]
    pd.testing.assert_frame_equal(frame, before)


def test_default_filled():
    # A missing non-nullable column with a literal default is filled with it.
    table = sa.Table(
        "T", sa.MetaData(),
        sa.Column("id", sa.BigInteger(), primary_key=True),
        sa.Column("n", sa.Integer(), nullable=False, server_default=sa.text("7")),
        sa.Column("x", sa.REAL(), nullable=False, default=0.5),
        sa.Column("y", sa.Double(), nullable=False),
    )
    checked = check_frame(table, pd.DataFrame({"id": [1, 2], "y": [1.0, 2.0]}))
    assert checked["n"].tolist() == [7, 7]
    assert checked["x"].tolist() == [0.5, 0.5]
    assert "'y'" in _error(table, pd.DataFrame({"id": [1, 2]}))


def _error(table: sa.Table, frame: pd.DataFrame) -> str:
    with pytest.raises(L1dbInputError) as info:
        check_frame(table, frame)
    return str(info.value)


def test_errors_name_table_and_columns(tables):
    src = tables["DiaSource"]
    good = required_frame(src)

    assert "DiaSource" in _error(src, good.iloc[:0])
    assert "empty" in _error(src, pd.DataFrame())

    message = _error(src, good.assign(foo=1, bar=2.0))
    assert message.startswith("DiaSource:") and "foo" in message and "bar" in message

    message = _error(src, good.drop(columns=["ra", "visit"]))
    assert message.startswith("DiaSource:") and "'ra'" in message and "'visit'" in message

    message = _error(src, good.assign(ra=["x", "y", "z", "w"]))
    assert message.startswith("DiaSource:") and "'ra'" in message

    message = _error(src, good.assign(visit=[1.0, 2.5, 3.0, 4.0]))
    assert "'visit'" in message and "not integers" in message

    message = _error(src, good.assign(isDipole=[True, False, 2, True]))
    assert "'isDipole'" in message and "booleans" in message

    message = _error(src, good.assign(isDipole=["yes", "no", "yes", "no"]))
    assert "'isDipole'" in message

    message = _error(src, good.assign(band=[1, 2, 3, 4]))
    assert "'band'" in message and "strings" in message

    message = _error(src, good.assign(band=["gg", "r", "i", "z"]))
    assert "'band'" in message and "longer than 1" in message

    message = _error(src, good.assign(detector=[1, 2, 3, 40000]))
    assert "'detector'" in message and "out of range" in message

    message = _error(src, good.assign(psfFlux=[1.0, 1e39, 0.0, 0.0]))
    assert "'psfFlux'" in message and "out of range" in message

    message = _error(src, good.assign(ra=[1.0, np.inf, 0.0, 0.0]))
    assert "'ra'" in message and "infinite" in message

    message = _error(src, good.assign(ra=[1.0, np.nan, 0.0, 0.0], visit=pd.array([1, None, 2, 3], dtype="Int64")))
    assert message.startswith("DiaSource:") and "'ra'" in message and "'visit'" in message
    assert "non-nullable" in message

    message = _error(src, pd.concat([good, good[["ra"]]], axis=1))
    assert "duplicate" in message and "ra" in message

    obj = tables["DiaObject"]
    message = _error(obj, required_frame(obj).assign(nDiaSources=[1, None, 2, 3]))
    assert message.startswith("DiaObject:") and "'nDiaSources'" in message


def test_all_bad_columns_reported_together(tables):
    src = tables["DiaSource"]
    frame = required_frame(src).assign(ra="x", dec="y")
    message = _error(src, frame)
    assert "'ra'" in message and "'dec'" in message


# ---------------------------------------------------------------- new_frame: a full frame from a few columns


@pytest.fixture(scope="module")
def published() -> dict[str, sa.Table]:
    from l1db.schema_model import load_schema
    from l1db.tables import packaged_schema_path, published_tables

    return published_tables(load_schema(packaged_schema_path()))


def test_new_frame_has_every_column_with_its_dtype(published: dict[str, sa.Table]) -> None:
    from l1db.frames import new_frame

    table = published["DiaSource"]
    frame = new_frame(table, diaSourceId=[7, 8], diaObjectId=[1, 2], ra=[10.0, 10.1], dec=[-20.0, -20.1],
                      visit=42, detector=3, midpointMjdTai=61000.5, band="g")
    assert list(frame.columns) == [c.name for c in table.columns]
    assert {k: str(v) for k, v in frame.dtypes.items()} == table_dtypes(table)
    assert frame["visit"].tolist() == [42, 42] and frame["band"].tolist() == ["g", "g"]
    assert frame["trailNdata"].tolist() == [0, 0]  # the schema's default
    assert frame["psfNdata"].tolist() == [0, 0]  # required, not given: zero
    assert frame["psfFlux"].isna().all() and frame["reliabilityVersion"].isna().all()  # nullable: NULL
    # What it builds is what the store path accepts as it is.
    pd.testing.assert_frame_equal(check_frame(table, frame), frame)


def test_new_frame_refuses_what_it_cannot_guess(published: dict[str, sa.Table]) -> None:
    from l1db.frames import new_frame

    table = published["DiaObject"]
    with pytest.raises(L1dbInputError, match=r"DiaObject: missing key or position columns \['dec'\]"):
        new_frame(table, diaObjectId=[1], ra=[1.0])
    with pytest.raises(L1dbInputError, match="at least one column as an array"):
        new_frame(table, diaObjectId=1, ra=1.0, dec=2.0)
    with pytest.raises(L1dbInputError, match="different lengths"):
        new_frame(table, diaObjectId=[1, 2], ra=[1.0], dec=[2.0])
    with pytest.raises(L1dbInputError, match=r"unknown columns \['colour'\]"):
        new_frame(table, diaObjectId=[1], ra=[1.0], dec=[2.0], colour=["red"])
    # validityStartMjdTai is set by store(): not required.
    assert new_frame(table, diaObjectId=[1], ra=[1.0], dec=[2.0])["validityStartMjdTai"].tolist() == [0.0]
