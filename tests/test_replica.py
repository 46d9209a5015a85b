"""Replica chunks (``enable_replica``): every store also writes its rows into the chunk tables, as dax_apdb does.

On every backend and layout: three stores, two in one chunk and one in the
next (one-hour chunks), and the chunk tables hold exactly the stored rows
under the chunk of their visit, the chunk id computed here from the MJD
(not by `l1db.replica`); nothing of it when the option is off.
"""

from __future__ import annotations

from pathlib import Path

import astropy.units as u
import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from astropy.time import Time
from conftest import cassandra_session
from l1db_frames import random_visit

from l1db import L1db, open_l1db
from l1db.config import ConfigError, parse_cassandra_url
from l1db.errors import SchemaError

#: Published tables and their keys (the replica's chunk tables are keyed by them).
KEYS = {"DiaObject": ("diaObjectId", "validityStartMjdTai"), "DiaSource": ("diaSourceId",),
        "DiaForcedSource": ("diaObjectId", "visit", "detector")}
SQL_CHUNK_TABLES = {"DiaObject": "DiaObjectChunks", "DiaSource": "DiaSourceChunks",
                    "DiaForcedSource": "DiaForcedSourceChunks"}
CASSANDRA_CHUNK_TABLES = {name: f"{table}2" for name, table in SQL_CHUNK_TABLES.items()}
REPLICA_TABLE_NAMES = {"ApdbReplicaChunks", *SQL_CHUNK_TABLES.values(), *CASSANDRA_CHUNK_TABLES.values()}

CHUNK_SECONDS = 3600
#: Visit times, minutes after T0: the first two in one one-hour chunk, the third in the next.
T0 = Time(60000.3, format="mjd", scale="tai")
VISIT_MINUTES = (0, 10, 120)


def _expected_chunk(mjd: float) -> int:
    """Chunk id of a visit: its TAI Unix seconds (MJD 40587 is the epoch) rounded down to the chunk length."""
    seconds = round((mjd - 40587.0) * 86400.0, 6)
    return int(seconds // CHUNK_SECONDS * CHUNK_SECONDS)


def _store_visits(db: L1db, rng: np.random.Generator) -> dict[str, pd.DataFrame]:
    """Store the three visits; return each table's stored rows with the chunk id of their visit."""
    stored: dict[str, list[pd.DataFrame]] = {name: [] for name in KEYS}
    for k, minutes in enumerate(VISIT_MINUTES):
        when = T0 + minutes * u.min
        n = 40 + 10 * k
        # Objects of visit 2 are new versions of some of visit 1's: the replica holds every version.
        ids = np.arange(1, n + 1, dtype=np.int64) + (0 if k < 2 else 5000)
        ra, dec = rng.uniform(10.0, 11.0, n), rng.uniform(-5.0, -4.0, n)
        frames = random_visit(rng, db.definitions, ra, dec, ids, visit=k + 1, visit_mjd=when.mjd,
                              first_source_id=1000 * (k + 1), n_forced=n // 2)
        db.store(when, *frames, visit_id=k + 1)
        chunk = _expected_chunk(when.mjd)
        for name, frame in zip(KEYS, frames):
            rows = frame.copy()
            if name == "DiaObject":
                rows["validityStartMjdTai"] = when.mjd
            stored[name].append(rows.assign(apdb_replica_chunk=chunk))
    return {name: pd.concat(frames, ignore_index=True) for name, frames in stored.items()}


def _read_tables(db: L1db, names: list[str]) -> dict[str, pd.DataFrame]:
    """Every row of each table of ``names``, read with the backend's driver."""
    if db.config.backend == "cassandra":
        keyspace = parse_cassandra_url(db.config.url).keyspace
        cluster, session = cassandra_session()
        try:
            out = {}
            for name in names:
                result = session.execute(f'SELECT * FROM "{keyspace}"."{name}"', timeout=120)
                out[name] = pd.DataFrame([tuple(r) for r in result], columns=result.column_names)
            return out
        finally:
            cluster.shutdown()
    with db.engine.connect() as conn:
        return {name: pd.read_sql_table(name, conn) for name in names}


def _table_names(db: L1db) -> set[str]:
    if db.config.backend == "cassandra":
        keyspace = parse_cassandra_url(db.config.url).keyspace
        cluster, session = cassandra_session()
        try:
            return {r[0] for r in session.execute(
                "SELECT table_name FROM system_schema.tables WHERE keyspace_name = %s", [keyspace])}
        finally:
            cluster.shutdown()
    return set(sa.inspect(db.engine).get_table_names())


def _key_set(frame: pd.DataFrame, columns: tuple[str, ...]) -> list[tuple]:
    """Rows as sorted tuples of plain Python values (so that types of drivers compare)."""
    return sorted(tuple(float(v) if isinstance(v, float | np.floating) else int(v) for v in row)
                  for row in frame[list(columns)].itertuples(index=False))


def test_chunk_tables_hold_exactly_the_stored_rows(make_config, layout: dict) -> None:
    options = {**layout, "enable_replica": 1, "replica_chunk_seconds": CHUNK_SECONDS}
    if layout.get("dia_object_nightly"):
        # The nightly table holds new versions back from DiaObject until dailyJob(): refused.
        with pytest.raises(ConfigError, match=r"enable_replica: 1 cannot be used with dia_object_nightly"):
            open_l1db(make_config(**options))
        return
    db = open_l1db(make_config(**options))
    cassandra = db.config.backend == "cassandra"
    chunk_tables = CASSANDRA_CHUNK_TABLES if cassandra else SQL_CHUNK_TABLES
    try:
        created = db.makeSchema()
        assert {"ApdbReplicaChunks", *chunk_tables.values()} <= set(created)
        stored = _store_visits(db, np.random.default_rng(7))
        chunks = sorted({_expected_chunk((T0 + m * u.min).mjd) for m in VISIT_MINUTES})
        assert len(chunks) == 2  # the third visit crosses a chunk boundary

        tables = _read_tables(db, ["ApdbReplicaChunks", *chunk_tables.values()])
        record = tables["ApdbReplicaChunks"].sort_values("apdb_replica_chunk")
        assert record["apdb_replica_chunk"].tolist() == chunks
        assert record["unique_id"].notna().all() and record["unique_id"].nunique() == 2
        # The last update of the first chunk is the second visit (the later store of the chunk).
        first_update = pd.Timestamp(record["last_update_time"].iloc[0])
        first_update = first_update.tz_localize("UTC") if first_update.tzinfo is None else first_update
        assert first_update == pd.Timestamp("2023-02-25 07:22:00", tz="UTC")
        counts = db.tableRowCount()
        for name, chunk_table in chunk_tables.items():
            found, rows = tables[chunk_table], stored[name]
            columns = ("apdb_replica_chunk", *KEYS[name])
            assert len(found) == len(rows), chunk_table
            assert _key_set(found, columns) == _key_set(rows, columns), chunk_table
            assert counts[chunk_table] == len(rows)
            if cassandra:
                # Full rows, in one sub-chunk per table and visit, within the sub-chunk count.
                visit = "validityStartMjdTai" if name == "DiaObject" else "visit"
                assert (found.groupby(visit)["apdb_replica_subchunk"].nunique() == 1).all()
                assert found[visit].nunique() == len(VISIT_MINUTES)
                assert found["apdb_replica_subchunk"].between(0, 63).all()
                merged = found.merge(rows, on=list(KEYS[name]), suffixes=("", "_stored"))
                np.testing.assert_array_equal(merged["ra"].to_numpy(), merged["ra_stored"].to_numpy())
            else:
                # SQL: the keys only (dax_apdb's SQL chunk tables), no other column.
                assert set(found.columns) == set(columns)
        assert counts["ApdbReplicaChunks"] == 2

        if cassandra:
            # A store written again (Cassandra's recovery) overwrites its replica rows: no second copy.
            when = T0 + VISIT_MINUTES[-1] * u.min
            last = {name: rows[rows["apdb_replica_chunk"] == chunks[1]].drop(columns="apdb_replica_chunk")
                    for name, rows in stored.items()}
            db.store(when, last["DiaObject"].drop(columns=["validityStartMjdTai"]), last["DiaSource"],
                     last["DiaForcedSource"], visit_id=len(VISIT_MINUTES))
            assert {t: n for t, n in db.tableRowCount().items() if t in REPLICA_TABLE_NAMES} == {
                t: n for t, n in counts.items() if t in REPLICA_TABLE_NAMES}
    finally:
        db.close()


def test_nothing_of_the_replica_when_off(make_config, tmp_path: Path) -> None:
    db = open_l1db(make_config())
    try:
        created = db.makeSchema()
        assert not REPLICA_TABLE_NAMES & set(created)
        _store_visits(db, np.random.default_rng(3))
        assert not REPLICA_TABLE_NAMES & _table_names(db)
        assert not REPLICA_TABLE_NAMES & set(db.tableRowCount())
    finally:
        db.close()
    # A client that expects the replica refuses the database made without it.
    with open_l1db(make_config(enable_replica=1)) as other, pytest.raises(
            SchemaError, match=r"enable_replica: database '0', config '1'"):
        other.checkSchema()


def test_sources_stored_alone_go_to_the_chunk_of_their_newest_row(make_config) -> None:
    # storeDiaSources / storeDiaForcedSources have no visit time: the newest midpointMjdTai stands for it.
    db = open_l1db(make_config(enable_replica=1, replica_chunk_seconds=CHUNK_SECONDS))
    cassandra = db.config.backend == "cassandra"
    chunk_tables = CASSANDRA_CHUNK_TABLES if cassandra else SQL_CHUNK_TABLES
    try:
        db.makeSchema()
        rng = np.random.default_rng(5)
        n = 30
        ids = np.arange(1, n + 1, dtype=np.int64)
        when = T0 + 5 * u.hour
        _, sources, forced = random_visit(rng, db.definitions, rng.uniform(10.0, 11.0, n), rng.uniform(-5.0, -4.0, n),
                                          ids, visit=9, visit_mjd=when.mjd, first_source_id=100, n_forced=n)
        # Most rows an hour earlier: the chunk is that of the newest row, not of the others.
        for frame in (sources, forced):
            frame.loc[1:, "midpointMjdTai"] = (when - 1 * u.hour).mjd
        db.storeDiaSources(sources)
        db.storeDiaForcedSources(forced)
        tables = _read_tables(db, ["ApdbReplicaChunks", chunk_tables["DiaSource"], chunk_tables["DiaForcedSource"]])
        chunk = _expected_chunk(when.mjd)
        assert tables["ApdbReplicaChunks"]["apdb_replica_chunk"].tolist() == [chunk]
        for name, frame in (("DiaSource", sources), ("DiaForcedSource", forced)):
            found = tables[chunk_tables[name]]
            columns = ("apdb_replica_chunk", *KEYS[name])
            assert _key_set(found, columns) == _key_set(frame.assign(apdb_replica_chunk=chunk), columns)
    finally:
        db.close()
