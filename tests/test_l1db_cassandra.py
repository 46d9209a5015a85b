"""What only the Cassandra backend has: idempotent stores cut short, moved objects, config and cluster errors.

The behavioural suite every backend passes is in test_l1db.py; these tests
cover what Cassandra does differently because it has no multi-partition
transactions.
"""

from __future__ import annotations

import io
import logging
from pathlib import Path

import astropy.units as u
import lsst.sphgeom as sg
import numpy as np
import pandas as pd
import pytest
from astropy.time import Time
from cassandra import ConsistencyLevel, cqltypes
from cassandra.protocol import BatchMessage, ColumnMetadata
from cassandra.query import UNSET_VALUE, BatchStatement, BatchType, PreparedStatement
from conftest import write_config
from l1db_frames import random_rows, random_sky_points, random_visit

from l1db import L1db, open_l1db
from l1db.cassandra import wire, writes
from l1db.cassandra.l1db_cassandra import L1dbCassandra
from l1db.cli.create_l1_schema import main as create_l1_schema
from l1db.config import ConfigError, load_config
from l1db.errors import SchemaError
from l1db.scratch import read_table
from l1db.timer import TimingRecord

T0 = Time(60000.0, format="mjd", scale="tai")


def _db(make_cassandra_config, **options) -> L1db:
    db = open_l1db(make_cassandra_config(**options))
    assert isinstance(db, L1dbCassandra)
    db.makeSchema()
    return db


def _circle(ra: float, dec: float, radius: float) -> sg.Circle:
    return sg.Circle(sg.UnitVector3d(sg.LonLat.fromDegrees(ra, dec)), sg.Angle.fromDegrees(radius))


def _store_cut_short_before_applied(db: L1db, objects: pd.DataFrame, when: Time, visit_id: int,
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """Store a visit that is recorded, then killed before its versions reach DiaObjectLast."""
    real = L1dbCassandra._apply_versions

    def fail(self, versions, explain=False):
        raise RuntimeError("killed while applying")

    monkeypatch.setattr(L1dbCassandra, "_apply_versions", fail)
    with pytest.raises(RuntimeError, match="killed"):
        db.store(when, objects, None, None, visit_id=visit_id)
    monkeypatch.setattr(L1dbCassandra, "_apply_versions", real)


def test_store_cut_short_before_it_is_recorded_is_stored_again(make_cassandra_config,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(11)
    db = _db(make_cassandra_config)
    n = 300
    ra, dec = random_sky_points(rng, n, [(20.0, -30.0)], 1.0)
    ids = np.arange(1, n + 1, dtype=np.int64)
    objects, sources, forced = random_visit(rng, db.definitions, ra, dec, ids, visit=1, visit_mjd=T0.mjd)
    real = L1dbCassandra._write_table

    def write_then_fail(self, table, frame, time_column, *also):
        real(self, table, frame, time_column, *also)
        if table == "DiaForcedSource":
            raise RuntimeError("injected failure")

    monkeypatch.setattr(L1dbCassandra, "_write_table", write_then_fail)
    records: list[TimingRecord] = []
    with db.timing(records.append), pytest.raises(RuntimeError, match="injected"):
        db.store(T0, objects, sources, forced, visit_id=1)
    assert records == []  # nothing is reported as stored
    assert db.lastVisit() is None  # the visit is not recorded: a resumed run stores it again
    counts = db.tableRowCount()
    assert counts["DiaSource"] == counts["DiaForcedSource"] == counts["DiaObject"] == n  # history was written
    assert counts["DiaObjectLast"] == 0
    # What the visit reads again is what it read the first time: nothing of the attempt.
    region = _circle(20.0, -30.0, 1.1)
    assert len(db.getDiaObjects(region)) == 0
    assert len(db.getDiaSources(region, ids, T0)) == 0 and len(db.getDiaForcedSources(region, ids, T0)) == 0
    # Stored again, with the same keys: complete, nothing twice.
    monkeypatch.setattr(L1dbCassandra, "_write_table", real)
    with db.timing(records.append):
        db.store(T0, objects, sources, forced, visit_id=1)
    counts = db.tableRowCount()
    assert counts["DiaSource"] == counts["DiaForcedSource"] == counts["DiaObject"] == counts["DiaObjectLast"] == n
    assert db.lastVisit()[0] == 1
    assert {"obj_insert", "src_insert", "fsrc_insert", "visit_insert", "obj_last_upsert", "store"} <= {
        r.op for r in records}
    found = db.getDiaObjects(region)
    assert sorted(found["diaObjectId"].tolist()) == ids.tolist()
    db.close()


def test_store_cut_short_after_it_is_recorded_is_applied_by_the_next_client(
        make_cassandra_config, monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(12)
    config = make_cassandra_config(part_pixelization="htm", part_pixel_level=8)
    db = open_l1db(config)
    db.makeSchema()
    n = 200
    ra, dec = random_sky_points(rng, n, [(40.0, -10.0)], 1.0)
    ids = np.arange(n, dtype=np.int64)
    objects = random_rows(rng, db.definitions["DiaObject"], n, diaObjectId=ids, ra=ra, dec=dec)
    db.store(T0, objects, None, None, visit_id=1)
    # The second version moves every object by ~0.5 degree: many change partition.
    moved = objects.assign(ra=objects["ra"] + 0.5)
    _store_cut_short_before_applied(db, moved, T0 + 1 * u.day, 2, monkeypatch)
    db.close()
    # The visit is recorded (its rows are all in), so a resumed run goes on after it...
    other = open_l1db(config)
    assert other.lastVisit()[0] == 2
    # ... and any client applies it before reading: the newest versions, once each, none stale.
    found = other.getDiaObjects(_circle(40.5, -10.0, 1.6))
    assert sorted(found["diaObjectId"].tolist()) == ids.tolist()
    assert (found["validityStartMjdTai"] == (T0 + 1 * u.day).tai.mjd).all()
    counts = other.tableRowCount()
    assert counts["DiaObjectLast"] == counts["DiaObjectLastToPartition"] == n
    assert counts["DiaObject"] == 2 * n
    visits = read_table(config, "L1dbVisit", ["visitId", "applied"])
    assert visits["applied"].all()
    # Applying the older version again (a late retry) never replaces the newer one.
    other._apply_versions(other._prepare_objects(objects, T0.tai.mjd))
    again = other.getDiaObjects(_circle(40.5, -10.0, 1.6))
    assert (again["validityStartMjdTai"] == (T0 + 1 * u.day).tai.mjd).all() and len(again) == n
    other.close()


def test_a_visit_left_unapplied_is_found_below_the_newest_recovery_page(
        make_cassandra_config, monkeypatch: pytest.MonkeyPatch) -> None:
    # Pages of 2 L1dbVisit rows: the unapplied visit is below the newest 2 (and 4) rows.
    monkeypatch.setattr(writes, "RECOVERY_ROWS", 2)
    rng = np.random.default_rng(14)
    config = make_cassandra_config()
    db = open_l1db(config)
    db.makeSchema()
    n = 50
    ra, dec = random_sky_points(rng, 2 * n, [(60.0, -20.0)], 1.0)
    later = random_rows(rng, db.definitions["DiaObject"], n, diaObjectId=np.arange(n, dtype=np.int64),
                        ra=ra[:n], dec=dec[:n])
    for visit in (1, 3, 4, 5, 6):
        db.store(T0 + visit * u.day, later, None, None, visit_id=visit)
    # Visit 2 (other objects) is recorded, then cut short before DiaObjectLast.
    cut = random_rows(rng, db.definitions["DiaObject"], n, diaObjectId=np.arange(n, 2 * n, dtype=np.int64),
                      ra=ra[n:], dec=dec[n:])
    _store_cut_short_before_applied(db, cut, T0 + 2 * u.day, 2, monkeypatch)
    db.close()
    visits = read_table(config, "L1dbVisit", ["visitId", "applied"]).sort_values("visitId", ascending=False)
    assert visits["visitId"].tolist() == [6, 5, 4, 3, 2, 1]
    assert visits["applied"].tolist() == [True, True, True, True, False, True]
    other = open_l1db(config)
    found = other.getDiaObjects(_circle(60.0, -20.0, 1.1))
    assert sorted(found["diaObjectId"].tolist()) == list(range(2 * n))
    assert read_table(config, "L1dbVisit", ["applied"])["applied"].all()
    other.close()


def test_an_object_that_moves_partition_leaves_no_stale_version(make_cassandra_config) -> None:
    rng = np.random.default_rng(13)
    db = _db(make_cassandra_config, part_pixelization="mq3c", part_pixel_level=10, read_full_objects=1)
    objects = random_rows(rng, db.definitions["DiaObject"], 1, diaObjectId=np.array([7]),
                          ra=np.array([10.0]), dec=np.array([-20.0]))
    db.store(T0, objects, None, None, visit_id=1)
    db.store(T0 + 1 * u.day, objects.assign(ra=11.0), None, None, visit_id=2)
    assert len(db.getDiaObjects(_circle(10.0, -20.0, 0.2))) == 0
    found = db.getDiaObjects(_circle(11.0, -20.0, 0.2))
    assert found["diaObjectId"].tolist() == [7] and found["ra"].tolist() == [11.0]
    counts = db.tableRowCount()
    assert counts["DiaObjectLast"] == counts["DiaObjectLastToPartition"] == 1 and counts["DiaObject"] == 2
    db.close()


def test_explain_logs_the_partitions_read(make_cassandra_config, caplog: pytest.LogCaptureFixture) -> None:
    """CQL has no EXPLAIN: a Cassandra plan is the statement and the partitions it reads."""
    rng = np.random.default_rng(17)
    db = _db(make_cassandra_config, part_pixelization="mq3c", part_pixel_level=10)
    region = _circle(10.0, -20.0, 0.5)
    pixels = len(db.partitioning.region_pixels(region))
    objects = random_rows(rng, db.definitions["DiaObject"], 3, diaObjectId=np.arange(1, 4, dtype=np.int64),
                          ra=np.full(3, 10.0), dec=np.full(3, -20.0))
    with caplog.at_level(logging.INFO, logger="l1db.cassandra"):
        db.store(T0, objects, None, None, explain=True)
    assert "query plan for SELECT" in caplog.text and "DiaObjectLastToPartition" in caplog.text
    assert "reads 3 partitions (one per diaObjectId, in 1 statements)" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="l1db.cassandra"):
        found = db.getDiaObjects(region, explain=True)
        db.getDiaSources(region, found, T0 + 1 * u.day, explain=True)
    plans = [r.getMessage() for r in caplog.records if r.getMessage().startswith("query plan for SELECT")]
    assert len(plans) == 2 and '"DiaObjectLast"' in plans[0] and '"DiaSource"' in plans[1], plans
    assert f"reads {pixels} partitions ({pixels} sky pixels x 1 time partitions" in plans[0]
    assert f"{pixels} sky pixels x " in plans[1]
    assert len(found) == 3  # explaining does not change what is read
    db.close()


@pytest.mark.parametrize("level, source_statements", [(7, "per pixel"), (10, "1 statement(s), the pixels in IN lists")])
def test_auto_read_shape_is_the_measured_faster_one(make_cassandra_config, caplog: pytest.LogCaptureFixture,
                                                    level: int, source_statements: str) -> None:
    """``spatial_queries = auto``: IN lists, except DiaSource below level 10, read one query per pixel."""
    db = _db(make_cassandra_config, part_pixelization="mq3c", part_pixel_level=level)
    assert db.options["spatial_queries"] == "auto"  # the default
    region = _circle(10.0, -20.0, 1.5)
    pixels = len(db.partitioning.region_pixels(region))
    assert pixels > 1
    objects = random_rows(np.random.default_rng(17), db.definitions["DiaObject"], 3,
                          diaObjectId=np.arange(1, 4, dtype=np.int64), ra=np.full(3, 10.0), dec=np.full(3, -20.0))
    db.store(T0, objects, None, None)
    with caplog.at_level(logging.INFO, logger="l1db.cassandra"):
        found = db.getDiaObjects(region, explain=True)
        db.getDiaSources(region, found, T0 + 1 * u.day, explain=True)
        db.getDiaForcedSources(region, found, T0 + 1 * u.day, explain=True)
    plans = {table: r.getMessage() for r in caplog.records
             for table in ("DiaObjectLast", "DiaSource", "DiaForcedSource")
             if r.getMessage().startswith("query plan for SELECT") and f'"{table}"' in r.getMessage()}
    assert "1 statement(s), the pixels in IN lists" in plans["DiaObjectLast"], plans
    assert "1 statement(s), the pixels in IN lists" in plans["DiaForcedSource"], plans
    expected = f"{pixels} statements" if source_statements == "per pixel" else source_statements
    assert expected in plans["DiaSource"], plans
    db.close()


def _driver_batch(statement: PreparedStatement, rows: list[list[object]], timestamp: int, version: int) -> bytes:
    """The BATCH message body the driver itself makes of ``rows`` bound to ``statement``."""
    batch = BatchStatement(batch_type=BatchType.UNLOGGED)
    for row in rows:
        batch.add(statement.bind(row))
    message = BatchMessage(batch.batch_type, batch._statements_and_parameters, ConsistencyLevel.QUORUM,
                           None, timestamp, None)
    out = io.BytesIO()
    message.send_body(out, version)
    return out.getvalue()


@pytest.mark.parametrize("version", [4, 5])
@pytest.mark.parametrize("null", [wire.UNSET, wire.NULL])
def test_encoded_batches_are_the_drivers_bytes(version: int, null: int) -> None:
    """encode_rows + EncodedBatchMessage make, byte for byte, the driver's BATCH of the same rows bound one by one.

    Every column kind, NULLs as unset (the default: never a tombstone) or as
    NULL (rows that replace others), text with multi-byte characters, and a
    batch in the middle of the rows; the routing key is the driver's.
    """
    kinds = ["int64", "int64", "float64", "float32", "int32", "int16", "int8", "bool", "str"]
    types = [cqltypes.LongType, cqltypes.LongType, cqltypes.DoubleType, cqltypes.FloatType, cqltypes.Int32Type,
             cqltypes.ShortType, cqltypes.ByteType, cqltypes.BooleanType, cqltypes.UTF8Type]
    names = [f"c{i}" for i in range(len(kinds))]
    statement = PreparedStatement(
        [ColumnMetadata("ks", "t", n, t) for n, t in zip(names, types)], b"\x8a\x01query-id", [0],
        f"INSERT INTO ks.t ({', '.join(names)}) VALUES ({', '.join('?' for _ in names)})", "ks", version, None, None)
    rng = np.random.default_rng(3)
    n = 7
    nulls = rng.random((n, len(kinds))) < 0.3
    nulls[:, 0] = False  # the partition key
    data = [np.arange(n, dtype=np.int64) * 10**12, rng.integers(-(2**63), 2**63 - 1, n), rng.normal(size=n),
            rng.normal(size=n).astype(np.float32), rng.integers(-(2**31), 2**31 - 1, n).astype(np.int32),
            rng.integers(-(2**15), 2**15 - 1, n).astype(np.int16), rng.integers(-128, 127, n).astype(np.int8),
            rng.random(n) < 0.5, np.array([f"gé{i}" * i for i in range(n)], dtype=object)]
    rows = wire.encode_rows(statement, [(d, nulls[:, j], k) for j, (d, k) in enumerate(zip(data, kinds))], null)
    missing = UNSET_VALUE if null == wire.UNSET else None
    bound = [[missing if nulls[i, j] else data[j][i].item() if hasattr(data[j][i], "item") else data[j][i]
              for j in range(len(kinds))] for i in range(n)]
    for first, last in [(0, n), (2, 5)]:
        batch = wire.EncodedBatch(statement, rows, first, last, ConsistencyLevel.QUORUM)
        driver = BatchMessage(BatchType.UNLOGGED, [], ConsistencyLevel.QUORUM, None, 1234567, None)
        out = io.BytesIO()
        wire.EncodedBatchMessage.of(driver, batch).send_body(out, version)
        assert out.getvalue() == _driver_batch(statement, bound[first:last], 1234567, version)
        assert rows.size(first, last) == len(batch.body)
        assert batch.routing_key == statement.bind(bound[first]).routing_key


@pytest.mark.parametrize("text, words", [
    ("[database]\nurl = cassandra://127.0.0.1/ks\n[l1db]\ndia_object_index = baseline\n",
     ["dia_object_index", "means nothing for the cassandra backend"]),
    ("[database]\nurl = sqlite:///x.sqlite3\n[cassandra]\nreplication_factor = 3\n",
     ["replication_factor", "means nothing for the sql backend"]),
    ("[database]\nurl = cassandra://127.0.0.1\n", ["keyspace"]),
    ("[database]\nurl = cassandra://127.0.0.1/9ks\n", ["keyspace"]),
    ("[database]\nurl = cassandra://127.0.0.1:99999/ks\n", ["port"]),
    ("[database]\nurl = cassandra://u:secret@127.0.0.1/ks\n", ["passwords are not supported"]),
    ("[database]\nurl = cassandra://127.0.0.1/ks\n[cassandra]\nread_consistency = MOST\n", ["read_consistency"]),
    ("[database]\nurl = cassandra://127.0.0.1/ks\n[cassandra]\npart_pixel_level = 31\n", ["part_pixel_level"]),
    ("[database]\nurl = cassandra://127.0.0.1/ks\n[cassandra]\nread_timeout = nan\n", ["read_timeout"]),
    ("[database]\nurl = cassandra://127.0.0.1/ks\n[cassandra]\nspatial_queries = -1\n",
     ["spatial_queries", "auto or an integer >= 0"]),
    ("[database]\nurl = cassandra://127.0.0.1/ks\n[cassandra]\nspatial_queries = 1.5\n",
     ["spatial_queries", "auto or an integer >= 0"]),
])
def test_config_errors_name_the_option(tmp_path: Path, text: str, words: list[str]) -> None:
    path = tmp_path / "c.cfg"
    path.write_text(text)
    with pytest.raises(ConfigError) as err:
        load_config(path)
    message = str(err.value)
    assert str(path) in message and "secret" not in message
    for word in words:
        assert word in message


def test_cluster_problems_are_one_line(cassandra_db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    # No schema (keyspace) yet.
    config = write_config(tmp_path / "a.cfg", cassandra_db_url)
    with pytest.raises(SchemaError, match="create_l1_schema"):
        with open_l1db(config) as db:
            db.lastVisit()
    # A consistency level one node cannot meet.
    strict = write_config(tmp_path / "b.cfg", cassandra_db_url, write_consistency="THREE")
    assert create_l1_schema(["-c", str(strict)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Unavailable" in err and "THREE" in err and "Traceback" not in err
    # Nobody listening.
    nobody = write_config(tmp_path / "c.cfg", "cassandra://127.0.0.1:1/ks")
    assert create_l1_schema(["-c", str(nobody)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "cannot connect to Cassandra at 127.0.0.1:1" in err
