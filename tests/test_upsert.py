"""The native upsert builder (`upsert_statement`) and the staged conditional upsert (`upsert_newer_frame`).

On every SQL backend: stored rows are compared whole with what they must
be, so that a row kept is kept in every column and a row replaced is
replaced in every column (MySQL assigns ON DUPLICATE KEY UPDATE's columns
one after the other). The third user of the builder, the replica's
ApdbReplicaChunks row, is tested in test_replica.py (its second store of a
chunk updates the row).
"""

from __future__ import annotations

import threading
from pathlib import Path

import astropy.units as u
import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from astropy.time import Time
from conftest import SQL_BACKENDS, create_test_database
from l1db_frames import random_rows, random_sky_points
from test_bulk_insert import assert_same_rows, count, random_frame, read_back

from l1db import open_l1db
from l1db.config import L1dbConfig
from l1db.frames import L1dbInputError, check_frame
from l1db.sql.bulk_insert import insert_frame, upsert_newer_frame, upsert_statement
from l1db.sql.database import make_engine
from l1db.sql.schema import L1Schema

ORDER = "validityStartMjdTai"
#: Published columns of DiaObjectLast compared with the newest version's (the key first).
COMPARED = ("diaObjectId", ORDER, "nDiaSources", "ra", "dec", "raErr", "lastDiaSourceMjdTai")


#: (backend, path) of the `last_table` cases: the bulk path on every SQL backend, and on MySQL also its
#: second path, without LOAD DATA (``local_infile=0``: executemany).
CASES = [(backend, "bulk") for backend in SQL_BACKENDS] + [("mysql", "executemany")]


@pytest.fixture(params=CASES, ids=[f"{backend}-{path}" for backend, path in CASES])
def last_table(request: pytest.FixtureRequest, tmp_path: Path):
    """(engine, DiaObjectLast) in a fresh database of the case's backend, through the case's path."""
    backend, path = request.param
    url, drop = create_test_database(backend, tmp_path)
    args = {"connect_args": {"local_infile": 0}} if path == "executemany" else {}
    schema = L1Schema(L1dbConfig(url=url, dia_object_index="last_object_table"))
    engine = make_engine(url, **args)
    try:
        schema.create(engine)
        yield engine, schema.tables["DiaObjectLast"]
    finally:
        engine.dispose()
        drop()


def _frames(table: sa.Table, rng: np.random.Generator) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Stored rows, incoming rows, and what the table must hold after the incoming rows' conditional upsert.

    Incoming: 50 rows older than the stored row of their key, 50 as old, 50
    newer, and 50 new keys; 50 stored keys get nothing.
    """
    stored = random_frame(table, 200, rng)
    stored[ORDER] = rng.uniform(60000.0, 61000.0, 200)
    incoming = random_frame(table, 200, rng)
    incoming["diaObjectId"] = np.concatenate([stored["diaObjectId"].to_numpy()[:150],
                                              np.arange(50, dtype=np.int64) + 10**12])
    shift = np.repeat([-1.0, 0.0, 1.0, 0.0], 50)
    incoming[ORDER] = np.concatenate([stored[ORDER].to_numpy()[:150], rng.uniform(60000.0, 61000.0, 50)]) + shift
    stored, incoming = check_frame(table, stored), check_frame(table, incoming)
    expected = pd.concat([stored.iloc[:50], incoming.iloc[50:], stored.iloc[150:]], ignore_index=True)
    return stored, incoming, expected


def test_upsert_newer_keeps_the_newer_row(last_table) -> None:
    engine, table = last_table
    stored, incoming, expected = _frames(table, np.random.default_rng(23))
    with engine.begin() as conn:
        insert_frame(conn, table, stored)
    # Rolled back: nothing of it stays, nor of a write before it in the transaction (creating and dropping
    # the staging table commits nothing).
    with engine.connect() as conn:
        trans = conn.begin()
        insert_frame(conn, table, incoming.iloc[150:].assign(diaObjectId=incoming["diaObjectId"].iloc[150:] + 10**12))
        assert upsert_newer_frame(conn, table, incoming, ORDER) == 200
        trans.rollback()
    assert_same_rows(table, stored, read_back(engine, table))
    with engine.begin() as conn:
        assert upsert_newer_frame(conn, table, incoming, ORDER) == 200
    assert_same_rows(table, expected, read_back(engine, table))
    # Idempotent: the same rows again (rows as old as the stored ones replace them with themselves),
    # twice in one transaction; then stored rows once more that are older than, or the same as, those held.
    with engine.begin() as conn:
        upsert_newer_frame(conn, table, incoming.iloc[:120], ORDER)
        upsert_newer_frame(conn, table, incoming.iloc[120:], ORDER)
    with engine.begin() as conn:
        upsert_newer_frame(conn, table, pd.concat([stored.iloc[:50], stored.iloc[100:150]]), ORDER)
    assert_same_rows(table, expected, read_back(engine, table))


# Not on SQLite, which runs one writer at a time.
@pytest.mark.parametrize("last_table", [c for c in CASES if c[0] != "sqlite"], indirect=True,
                         ids=[f"{b}-{p}" for b, p in CASES if b != "sqlite"])
def test_upsert_newer_waits_for_a_concurrent_store(last_table) -> None:
    """A store of older rows while a newer store of the same keys is uncommitted waits for its row locks,
    then is judged against the committed newer rows (and keeps them)."""
    engine, table = last_table
    stored, incoming, _ = _frames(table, np.random.default_rng(41))
    with engine.begin() as conn:
        insert_frame(conn, table, stored)
    newer = incoming.iloc[100:150]  # one day newer than the stored rows of their keys
    between = stored.iloc[100:150].assign(**{ORDER: newer[ORDER].to_numpy() - 0.5})
    done = threading.Event()

    def store_between() -> None:
        with engine.begin() as conn:
            upsert_newer_frame(conn, table, between, ORDER)
        done.set()

    with engine.connect() as conn:
        trans = conn.begin()
        upsert_newer_frame(conn, table, newer, ORDER)
        other = threading.Thread(target=store_between)
        other.start()
        # Newer than what is committed: it would replace it if it did not wait.
        assert not done.wait(2.0), "the older store did not wait for the newer one's row locks"
        trans.commit()
    other.join(60.0)
    assert done.is_set()
    expected = pd.concat([stored.iloc[:100], newer, stored.iloc[150:]], ignore_index=True)
    assert_same_rows(table, expected, read_back(engine, table))


def test_upsert_newer_refuses_bad_frames(last_table) -> None:
    engine, table = last_table
    stored, incoming, _ = _frames(table, np.random.default_rng(5))
    with engine.begin() as conn:
        insert_frame(conn, table, stored)
    cases = {"repeated": pd.concat([incoming, incoming.iloc[:1]], ignore_index=True),
             "needs the key columns": incoming.drop(columns=[ORDER])}
    for message, frame in cases.items():
        with pytest.raises(L1dbInputError, match=f"DiaObjectLast: .*{message}"):
            with engine.begin() as conn:
                upsert_newer_frame(conn, table, frame, ORDER)
    assert_same_rows(table, stored, read_back(engine, table))


def test_upsert_statement_of_one_row(last_table) -> None:
    """One row as the source: inserted, then replaced or kept by ``newer``, or always replaced without it."""
    engine, table = last_table
    rows = random_frame(table, 6, np.random.default_rng(9), null_fraction=0.0).iloc[:4]
    rows["diaObjectId"] = 7
    rows[ORDER] = [60000.0, 59999.0, 60001.0, 50000.0]
    rows = check_frame(table, rows)
    update = [c.name for c in table.columns if c.name != "diaObjectId"]

    def upsert(i: int, newer: str | None) -> None:
        # Column by column (a row of a mixed frame would be one dtype), as plain Python values.
        row = {c: rows[c].iloc[i] for c in rows.columns}
        row = {c: v.item() if isinstance(v, np.generic) else v for c, v in row.items()}
        with engine.begin() as conn:
            conn.execute(upsert_statement(conn.dialect.name, table, row, ["diaObjectId"], update, newer))

    upsert(0, ORDER)
    assert_same_rows(table, rows.iloc[[0]], read_back(engine, table))
    upsert(1, ORDER)  # older: kept
    assert_same_rows(table, rows.iloc[[0]], read_back(engine, table))
    upsert(2, ORDER)  # newer: replaced
    assert_same_rows(table, rows.iloc[[2]], read_back(engine, table))
    upsert(3, None)  # no condition: replaced, however old
    assert_same_rows(table, rows.iloc[[3]], read_back(engine, table))
    assert count(engine, table) == 1


def test_out_of_order_stores_keep_the_newest_published_row(make_sql_config) -> None:
    """`L1db.store(out_of_order=True)` with DiaObjectLast: an older visit stored after a newer one leaves the
    newer version's row whole; the table holds each object's newest version, in every published column."""
    rng = np.random.default_rng(31)
    db = open_l1db(make_sql_config(dia_object_index="last_object_table"))
    db.makeSchema()
    n = 120
    ra, dec = random_sky_points(rng, n, [(150.0, -60.0)], 1.0)
    newest: dict[int, pd.Series] = {}
    for visit in (2, 0, 3, 1):
        pick = np.sort(np.random.default_rng(visit).choice(n, size=80, replace=False))
        t = Time("2026-01-01T00:00:00", scale="tai") + visit * u.day
        objects = random_rows(np.random.default_rng(100 + visit), db.definitions["DiaObject"], len(pick),
                              diaObjectId=pick.astype(np.int64), ra=ra[pick], dec=dec[pick])
        objects["nDiaSources"] = visit + 1
        db.store(t, objects, None, None, visit_id=visit, out_of_order=True)
        for i, row in zip(pick.tolist(), objects.assign(**{ORDER: t.tai.mjd}).itertuples(index=False)):
            if i not in newest or newest[i][ORDER] < t.tai.mjd:
                newest[i] = pd.Series(row._asdict())
    found = read_back(db.engine, db.schema.tables["DiaObjectLast"])
    db.close()
    assert found["diaObjectId"].tolist() == sorted(newest)
    want = pd.DataFrame([newest[i] for i in sorted(newest)])
    for column in COMPARED[1:]:
        # raErr is a REAL: PostgreSQL sends it as its shortest decimal text, exact only as a float32.
        dtype = np.float32 if column == "raErr" else np.float64
        np.testing.assert_array_equal(found[column].to_numpy(dtype=np.float64, na_value=np.nan).astype(dtype),
                                      want[column].to_numpy(dtype=np.float64, na_value=np.nan).astype(dtype),
                                      err_msg=column)
