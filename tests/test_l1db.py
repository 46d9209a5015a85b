"""The L1db API on every backend: reads, windows, stores, strategies, bad input."""

from __future__ import annotations

import logging

import astropy.units as u
import lsst.sphgeom as sg
import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from astropy.time import Time
from l1db_frames import random_rows, random_sky_points, random_visit
from naive import naive_in_circle, naive_region_contains

import l1db.constants
import l1db.sql.bulk_insert
import l1db.sql.chunks
from l1db import MONTH_DAYS, L1db, open_l1db
from l1db.errors import SchemaError
from l1db.frames import L1dbInputError
from l1db.timer import TimingRecord

T0 = Time(60000.0, format="mjd", scale="tai")

def _l1db(make_config, **options) -> L1db:
    db = open_l1db(make_config(**options))
    db.makeSchema()
    return db


def _circle(ra: float, dec: float, radius: float) -> sg.Circle:
    return sg.Circle(sg.UnitVector3d(sg.LonLat.fromDegrees(ra, dec)), sg.Angle.fromDegrees(radius))


def _polygon(corners: list[tuple[float, float]]) -> sg.ConvexPolygon:
    return sg.ConvexPolygon([sg.UnitVector3d(sg.LonLat.fromDegrees(r, d)) for r, d in corners])


# Regions that cross RA = 0 and reach the poles, plus ordinary ones; random ones are added per test.
CENTERS = [(0.5, -30.0), (359.5, 10.0), (120.0, -89.0), (200.0, 88.5), (45.0, 0.0)]
CIRCLES = [(0.0, -30.0, 1.75), (359.7, 10.2, 1.0), (120.0, -89.5, 1.75), (200.0, 89.0, 1.0)]
POLYGONS = [
    _polygon([(358.5, -31.0), (1.5, -31.0), (1.5, -29.0), (358.5, -29.0)]),
    _polygon([(44.0, -1.0), (46.5, -0.5), (45.0, 1.2)]),
    sg.Box(sg.LonLat.fromDegrees(359.0, 9.0), sg.LonLat.fromDegrees(1.0, 11.0)),
]


def _random_regions(rng: np.random.Generator) -> tuple[list, list]:
    """Random circles and convex polygons (triangles, quadrilaterals) near the busy centres."""
    circles, polygons = [], []
    for ra0, dec0 in CENTERS:
        ra = (ra0 + rng.normal(0, 0.8)) % 360.0
        dec = float(np.clip(dec0 + rng.normal(0, 0.5), -89.9, 89.9))
        circles.append((ra, dec, float(rng.uniform(0.2, 2.0))))
        # Vertices around a centre in counter-clockwise order make a convex polygon.
        n = int(rng.integers(3, 5))
        angles = np.sort(rng.uniform(0, 2 * np.pi, n))
        radius = rng.uniform(0.5, 2.0)
        cosd = max(np.cos(np.radians(dec)), 0.05)
        corners = [((ra + radius * np.cos(a) / cosd) % 360.0, float(np.clip(dec + radius * np.sin(a), -89.9, 89.9)))
                   for a in angles]
        polygon = sg.ConvexPolygon.convexHull([sg.UnitVector3d(sg.LonLat.fromDegrees(r, d)) for r, d in corners])
        if polygon is not None:
            polygons.append(polygon)
    return circles, polygons


def _ids_in_circle(circle: tuple[float, float, float], objects: pd.DataFrame) -> set[int]:
    mask = naive_in_circle(objects["ra"].to_numpy(), objects["dec"].to_numpy(), *circle)
    return set(objects["diaObjectId"].to_numpy()[mask].tolist())


def _ids_in(region, objects: pd.DataFrame) -> set[int]:
    mask = naive_region_contains(region, objects["ra"].to_numpy(), objects["dec"].to_numpy())
    return set(objects["diaObjectId"].to_numpy()[mask].tolist())


@pytest.mark.parametrize("pixelization", ["htm", "healpix"])
def test_region_reads_equal_brute_force(make_config, layout: dict, pixelization: str) -> None:
    rng = np.random.default_rng(42)
    # SQL: the pixelId column's pixelization; Cassandra: HEALPix partitions instead of the layout's.
    cassandra_healpix = {"part_pixelization": "healpix", "part_pixel_level": 7} if pixelization == "healpix" else {}
    db = _l1db(make_config, **{**layout, "pixelization": pixelization, **cassandra_healpix})
    ra, dec = random_sky_points(rng, 1500, CENTERS, 2.5)
    ids = np.arange(1, len(ra) + 1, dtype=np.int64)
    objects, sources, forced = random_visit(rng, db.definitions, ra, dec, ids, visit=1, visit_mjd=T0.mjd)
    db.store(T0, objects, sources, forced, visit_id=1)
    # A second version of some objects, moved a little: reads must return the new one only.
    moved = rng.random(len(ids)) < 0.3
    objects2 = objects[moved].copy()
    objects2["dec"] = np.clip(objects2["dec"].to_numpy() + rng.normal(0, 0.05, moved.sum()), -90, 90)
    db.store(T0 + 1 * u.day, objects2, None, None, visit_id=2)
    latest = objects.set_index("diaObjectId")
    latest.loc[objects2["diaObjectId"], "dec"] = objects2["dec"].to_numpy()
    latest = latest.reset_index()
    circles, polygons = _random_regions(rng)
    sizes = []
    for circle in CIRCLES + circles:
        found = db.getDiaObjects(_circle(*circle))
        assert found["diaObjectId"].is_unique
        assert set(found["diaObjectId"].tolist()) == _ids_in_circle(circle, latest), circle
        sizes.append(len(found))
    for region in POLYGONS + polygons:
        found = db.getDiaObjects(region)
        assert found["diaObjectId"].is_unique
        assert set(found["diaObjectId"].tolist()) == _ids_in(region, latest), region
        sizes.append(len(found))
    # The fixed regions are busy; most random ones too (the comparison is not vacuous).
    fixed = sizes[: len(CIRCLES)] + sizes[len(CIRCLES) + len(circles):][: len(POLYGONS)]
    assert min(fixed) > 0
    assert sum(n > 0 for n in sizes) >= 0.75 * len(sizes)
    db.close()


def test_round_trip_every_column(make_config) -> None:
    rng = np.random.default_rng(1)
    db = _l1db(make_config, read_full_objects=1)
    ra, dec = random_sky_points(rng, 300, [(10.0, -20.0)], 1.5)
    ids = np.arange(100, 100 + len(ra), dtype=np.int64)
    objects, sources, forced = random_visit(rng, db.definitions, ra, dec, ids, visit=7, visit_mjd=T0.mjd - 1)
    db.store(T0, objects, sources, forced, visit_id=7)
    region = _circle(10.0, -20.0, 1.6)

    read = db.getDiaObjects(region).sort_values("diaObjectId").reset_index(drop=True)
    assert list(read.columns) == [c.name for c in db.tables["DiaObject"].columns]
    expected = objects.sort_values("diaObjectId").reset_index(drop=True)
    expected["validityStartMjdTai"] = T0.tai.mjd
    expected["validityEndMjdTai"] = np.nan
    expected = l1db.frames.check_frame(db.tables["DiaObject"], expected)
    pd.testing.assert_frame_equal(read, expected.reset_index(drop=True), check_dtype=True)

    src = db.getDiaSources(region, read, T0).sort_values("diaSourceId").reset_index(drop=True)
    exp_src = l1db.frames.check_frame(db.tables["DiaSource"], sources)
    pd.testing.assert_frame_equal(src, exp_src.sort_values("diaSourceId").reset_index(drop=True))

    fsrc = db.getDiaForcedSources(region, ids, T0).sort_values("diaObjectId").reset_index(drop=True)
    exp_fsrc = l1db.frames.check_frame(db.tables["DiaForcedSource"], forced)
    pd.testing.assert_frame_equal(fsrc, exp_fsrc.sort_values("diaObjectId").reset_index(drop=True))
    assert db.getDiaFSources(region, ids, T0).shape == fsrc.shape
    db.close()


@pytest.mark.parametrize("source_select", ["by-oid", "by-fov"])
def test_history_windows_at_their_edges(make_config, source_select: str) -> None:
    rng = np.random.default_rng(2)
    months = 2
    db = _l1db(make_config, read_sources_months=months, read_forced_sources_months=months,
               source_select=source_select)
    visit_mjd = T0.tai.mjd
    start = visit_mjd - months * MONTH_DAYS
    # One object; sources just inside and just outside the window, and at the visit time.
    times = np.array([start - 1e-3, start + 1e-3, visit_mjd - 1.0, visit_mjd])
    n = len(times)
    ra = np.full(n, 30.0)
    dec = np.full(n, -40.0)
    obj_ids = np.full(n, 5, dtype=np.int64)
    sources = random_rows(rng, db.definitions["DiaSource"], n,
                          diaSourceId=np.arange(n, dtype=np.int64), diaObjectId=obj_ids, ra=ra, dec=dec,
                          midpointMjdTai=times)
    forced = random_rows(rng, db.definitions["DiaForcedSource"], n,
                         diaForcedSourceId=np.arange(n, dtype=np.int64), diaObjectId=obj_ids, ra=ra, dec=dec,
                         visit=np.arange(n, dtype=np.int64), detector=np.zeros(n, dtype=np.int16),
                         midpointMjdTai=times)
    db.storeDiaSources(sources)
    db.storeDiaForcedSources(forced)
    region = _circle(30.0, -40.0, 0.5)
    got = db.getDiaSources(region, np.array([5]), T0)
    assert sorted(got["diaSourceId"].tolist()) == [1, 2]
    got = db.getDiaForcedSources(region, np.array([5]), T0)
    assert sorted(got["diaForcedSourceId"].tolist()) == [1, 2]
    # An object that is not asked for is not returned, even inside the field.
    assert len(db.getDiaSources(region, np.array([6]), T0)) == 0
    db.close()

    db0 = open_l1db(db.config.replace(read_sources_months=0, read_forced_sources_months=0))
    empty = db0.getDiaSources(region, np.array([5]), T0)
    assert len(empty) == 0 and list(empty.columns) == [c.name for c in db.tables["DiaSource"].columns]
    assert len(db0.getDiaForcedSources(region, np.array([5]), T0)) == 0
    db0.close()


def test_reads_and_stores_more_ids_than_one_chunk(make_config, monkeypatch: pytest.MonkeyPatch, layout: dict) -> None:
    # Small chunks (SQL: IDs per statement; Cassandra: batches and queries in
    # flight), so that every chunked statement runs several times.
    monkeypatch.setattr(l1db.sql.chunks, "ID_CHUNKS", {"sqlite": 700, "mysql": 700, "postgresql": 700})
    rng = np.random.default_rng(3)
    db = _l1db(make_config, batch_max_kib=64, read_concurrency=3, write_concurrency=2, **layout)
    n = 2500
    ra, dec = random_sky_points(rng, n, [(50.0, -10.0)], 1.0)
    ids = np.arange(n, dtype=np.int64)
    objects, sources, forced = random_visit(rng, db.definitions, ra, dec, ids, visit=1, visit_mjd=T0.mjd - 2)
    db.store(T0 - 1 * u.day, objects, sources, forced)
    region = _circle(50.0, -10.0, 1.1)
    assert len(db.getDiaSources(region, ids, T0)) == n
    assert len(db.getDiaForcedSources(region, ids, T0)) == n
    # A second version of every object: validity update / DiaObjectLast delete in chunks.
    db.store(T0, objects, None, None)
    found = db.getDiaObjects(region)
    assert len(found) == n and found["diaObjectId"].is_unique
    assert (found["validityStartMjdTai"] == T0.tai.mjd).all()
    db.close()


@pytest.mark.parametrize("failing_table", ["DiaSource", "DiaForcedSource", "DiaObject"])
def test_store_is_atomic(make_sql_config, monkeypatch: pytest.MonkeyPatch, failing_table: str) -> None:
    rng = np.random.default_rng(4)
    db = _l1db(make_sql_config, dia_object_index="last_object_table")
    ra, dec = random_sky_points(rng, 200, [(80.0, -50.0)], 1.0)
    ids = np.arange(200, dtype=np.int64)
    objects, sources, forced = random_visit(rng, db.definitions, ra, dec, ids, visit=1, visit_mjd=T0.mjd)
    real_insert = l1db.sql.bulk_insert.insert_frame
    written: list[str] = []

    def insert_then_fail(conn, table, frame):
        n = real_insert(conn, table, frame)
        written.append(table.name)
        if table.name == failing_table:
            raise RuntimeError("injected failure")
        return n

    monkeypatch.setattr(l1db.sql.bulk_insert, "insert_frame", insert_then_fail)
    records: list[TimingRecord] = []
    with db.timing(records.append), pytest.raises(RuntimeError, match="injected"):
        db.store(T0, objects, sources, forced, visit_id=1)
    assert failing_table in written
    assert records == []  # a rolled-back store reports nothing as stored
    monkeypatch.setattr(l1db.sql.bulk_insert, "insert_frame", real_insert)
    assert all(count == 0 for name, count in db.tableRowCount().items() if name != "L1dbMetadata")
    assert db.lastVisit() is None
    # The same visit can then be stored in full.
    with db.timing(records.append):
        db.store(T0, objects, sources, forced, visit_id=1)
    counts = db.tableRowCount()
    assert counts["DiaObject"] == counts["DiaObjectLast"] == counts["DiaSource"] == counts["DiaForcedSource"] == 200
    ops = [r.op for r in records]
    assert ops[-1] == "store" and {"obj_insert", "src_insert", "fsrc_insert", "visit_insert"} <= set(ops)
    db.close()


def test_exactly_one_latest_version(make_config, layout: dict) -> None:
    rng = np.random.default_rng(5)
    db = _l1db(make_config, read_full_objects=1, **layout)
    n = 300
    ra, dec = random_sky_points(rng, n, [(150.0, -60.0)], 1.0)
    all_ids = np.arange(n, dtype=np.int64)
    versions: dict[int, float] = {}
    stored = 0
    for visit in range(4):
        pick = np.sort(rng.choice(n, size=150, replace=False))
        t = T0 + visit * u.day
        objects = random_rows(rng, db.definitions["DiaObject"], len(pick),
                              diaObjectId=all_ids[pick], ra=ra[pick], dec=dec[pick])
        db.store(t, objects, None, None, visit_id=visit)
        stored += len(pick)
        for i in all_ids[pick]:
            versions[int(i)] = t.tai.mjd
    if layout.get("dia_object_nightly"):
        assert db.tableRowCount()["DiaObjectNightly"] == stored
        before = db.getDiaObjects(_circle(150.0, -60.0, 1.1))
        assert db.dailyJob() == stored
        assert db.tableRowCount()["DiaObjectNightly"] == 0
        after = db.getDiaObjects(_circle(150.0, -60.0, 1.1))
        pd.testing.assert_frame_equal(
            before.sort_values("diaObjectId").reset_index(drop=True).drop(columns="validityEndMjdTai"),
            after.sort_values("diaObjectId").reset_index(drop=True).drop(columns="validityEndMjdTai"),
        )
    counts = db.tableRowCount()
    assert counts["DiaObject"] == stored
    found = db.getDiaObjects(_circle(150.0, -60.0, 1.1))
    assert found["diaObjectId"].is_unique
    assert dict(zip(found["diaObjectId"].tolist(), found["validityStartMjdTai"].tolist())) == versions
    if db.config.backend == "cassandra":
        assert counts["DiaObjectLast"] == counts["DiaObjectLastToPartition"] == len(versions)
        db.close()
        return
    engine = sa.create_engine(db.engine.url, poolclass=sa.pool.NullPool)
    table = db.schema.tables["DiaObject"]
    with engine.connect() as conn:
        rows = pd.DataFrame(conn.execute(sa.select(table.c.diaObjectId, table.c.validityStartMjdTai,
                                                   table.c.validityEndMjdTai)).all())
    if layout["dia_object_index"] == "last_object_table":
        assert counts["DiaObjectLast"] == len(versions)
    else:
        open_rows = rows[rows["validityEndMjdTai"].isna()]
        assert open_rows["diaObjectId"].is_unique and len(open_rows) == len(versions)
        # Each closed version ends where the next one starts.
        rows = rows.sort_values(["diaObjectId", "validityStartMjdTai"])
        nxt = rows.groupby("diaObjectId")["validityStartMjdTai"].shift(-1)
        closed = rows["validityEndMjdTai"].notna()
        np.testing.assert_array_equal(rows["validityEndMjdTai"][closed], nxt[closed])
    engine.dispose()
    db.close()


def test_latest_versions_hold_the_published_columns_and_full_rows_come_from_history(
        make_config, layout: dict) -> None:
    """getDiaObjects returns the latest version's values: AP columns (from DiaObjectLast where there is one),
    or with read_full_objects = 1 every DiaObject column of that version (read from DiaObject by key).

    Versions span time partitions (PostgreSQL 10 days, Cassandra 30), two fall in one partition, some
    objects move to other sky pixels, and random NULLs replace values of the previous version.
    """
    rng = np.random.default_rng(16)
    short = make_config(**layout)
    db = open_l1db(short)
    db.makeSchema()
    full = open_l1db(make_config(read_full_objects=1, **layout))
    n = 240
    ra, dec = random_sky_points(rng, n, [(150.0, -60.0)], 1.0)
    ids = np.arange(1, n + 1, dtype=np.int64)
    definition = db.definitions["DiaObject"]
    latest = {}
    for visit, (days, share) in enumerate([(0, 1.0), (45, 0.5), (46, 0.25)]):
        pick = np.sort(rng.choice(n, size=int(n * share), replace=False))
        moved = rng.random(len(pick)) < 0.3
        dec[pick[moved]] += 1.5  # another sky pixel (and Cassandra partition)
        objects = random_rows(rng, definition, len(pick), diaObjectId=ids[pick], ra=ra[pick], dec=dec[pick])
        t = T0 + days * u.day
        db.store(t, objects, None, None, visit_id=visit)
        objects["validityStartMjdTai"] = t.tai.mjd
        objects["validityEndMjdTai"] = np.nan
        for row in objects.itertuples(index=False):
            latest[row.diaObjectId] = row
    expected = l1db.frames.check_frame(db.tables["DiaObject"], pd.DataFrame(list(latest.values())))
    expected = expected.sort_values("diaObjectId").reset_index(drop=True)
    region = _circle(150.0, -58.0, 5.0)
    if layout.get("dia_object_nightly"):
        db.dailyJob()

    read = full.getDiaObjects(region).sort_values("diaObjectId").reset_index(drop=True)
    assert list(read.columns) == [c.name for c in db.tables["DiaObject"].columns]
    pd.testing.assert_frame_equal(read, expected)

    read = db.getDiaObjects(region).sort_values("diaObjectId").reset_index(drop=True)
    assert list(read.columns) == list(l1db.constants.AP_OBJECT_COLUMNS)
    pd.testing.assert_frame_equal(read, expected[list(l1db.constants.AP_OBJECT_COLUMNS)])
    full.close()
    db.close()


def _bad_inputs(db: L1db, rng: np.random.Generator):
    defs = db.definitions
    good = random_rows(rng, defs["DiaSource"], 5, diaSourceId=np.arange(5, dtype=np.int64),
                       ra=np.full(5, 1.0), dec=np.full(5, 1.0))
    return [
        (good.drop(columns=["midpointMjdTai", "visit"]), ["DiaSource", "midpointMjdTai", "visit"]),
        (good.assign(psfFlux=["x"] * 5), ["DiaSource", "psfFlux"]),
        (good.assign(colour=1), ["DiaSource", "colour"]),
        (good.iloc[:0], ["DiaSource", "empty"]),
        (good.drop(columns=["ra"]), ["DiaSource", "ra"]),
    ]


def test_bad_input_names_table_and_columns_and_writes_nothing(make_config) -> None:
    rng = np.random.default_rng(6)
    db = _l1db(make_config)
    ok_objects = random_rows(rng, db.definitions["DiaObject"], 5, diaObjectId=np.arange(5, dtype=np.int64),
                             ra=np.full(5, 1.0), dec=np.full(5, 1.0))
    for frame, words in _bad_inputs(db, rng):
        with pytest.raises(L1dbInputError) as err:
            db.store(T0, ok_objects, frame, None, visit_id=1)
        for word in words:
            assert word in str(err.value)
    with pytest.raises(L1dbInputError, match="DiaObject.*nDiaSources"):
        db.store(T0, ok_objects.drop(columns=["nDiaSources"]), None, None)
    with pytest.raises(TypeError, match="sphgeom"):
        db.getDiaObjects((10.0, 20.0, 1.0))
    with pytest.raises(TypeError):
        db.getDiaSources("everywhere", np.array([1]), T0)
    counts = db.tableRowCount()
    assert all(v == 0 for k, v in counts.items() if k != "L1dbMetadata")
    db.close()


def test_visits_and_monitoring(make_config) -> None:
    records: list[TimingRecord] = []
    rng = np.random.default_rng(7)
    db = open_l1db(make_config(dia_object_index="last_object_table"), monitor=records.append)
    db.makeSchema()
    assert db.lastVisit() is None and db.firstVisit() is None
    ra, dec = random_sky_points(rng, 50, [(5.0, 5.0)], 0.5)
    objects, sources, forced = random_visit(rng, db.definitions, ra, dec, np.arange(50, dtype=np.int64), 3, T0.mjd)
    db.store(T0, objects, sources, forced, visit_id=3, tile=1)
    db.saveVisit(3, T0, tile=0)
    db.saveVisit(2, T0 - 1 * u.day)
    visit, when = db.lastVisit()
    assert visit == 3 and abs(when.tai.mjd - T0.tai.mjd) < 1e-9
    visit, when = db.firstVisit()
    assert visit == 2 and when.tai.mjd == (T0 - 1 * u.day).tai.mjd  # to the bit
    assert db.storedTiles(3) == ({0, 1}, 1)
    assert db.storedTiles(4) == (set(), 0)
    ops = {r.op: r.rows for r in records}
    assert ops["obj_insert"] == 50 and ops["src_insert"] == 50 and ops["fsrc_insert"] == 50
    # SQL replaces the latest versions by delete + insert; Cassandra upserts them.
    last_op = "obj_last_upsert" if db.config.backend == "cassandra" else "obj_last_insert"
    assert ops["obj_last_delete"] == 0 and ops[last_op] == 50 and "store" in ops
    assert all(r.real >= 0 and r.user >= 0 for r in records)
    db.close()


@pytest.mark.parametrize("index", ["baseline", "last_object_table"])
def test_explain_logs_the_plan(make_sql_config, caplog: pytest.LogCaptureFixture, index: str) -> None:
    rng = np.random.default_rng(9)
    db = _l1db(make_sql_config, dia_object_index=index)
    with caplog.at_level(logging.INFO, logger="l1db.sql"):
        db.getDiaObjects(_circle(1.0, 1.0, 1.0), explain=True)
    assert "query plan" in caplog.text and "DiaObject" in caplog.text
    caplog.clear()
    objects = random_rows(rng, db.definitions["DiaObject"], 3, diaObjectId=np.arange(3, dtype=np.int64),
                          ra=np.full(3, 1.0), dec=np.full(3, 1.0))
    with caplog.at_level(logging.INFO, logger="l1db.sql"):
        db.storeDiaObjects(objects, T0, explain=True)
    assert "query plan for UPDATE" in caplog.text if index == "baseline" else "query plan for DELETE" in caplog.text
    assert db.tableRowCount()["DiaObject"] == 3  # explaining does not change what is stored
    db.close()


def test_missing_or_mismatched_schema(make_config) -> None:
    db = open_l1db(make_config())
    with pytest.raises(SchemaError, match="create_l1_schema"):
        db.getDiaObjects(_circle(1.0, 1.0, 1.0))
    db.makeSchema()
    db.close()
    # An option that shapes the schema, for each kind of backend.
    option = "part_pixel_level" if db.config.backend == "cassandra" else "dia_object_index"
    index = "pix_id_iov" if db.config.dia_object_index == "last_object_table" else "last_object_table"
    other = open_l1db(make_config(dia_object_index=index, part_pixel_level=8))
    with pytest.raises(SchemaError, match=option):
        other.lastVisit()
    other.close()


def test_refuses_a_latest_version_table_of_full_rows(make_config) -> None:
    """A database made when DiaObjectLast held every DiaObject column is refused with one line."""
    config = make_config(dia_object_index="last_object_table")
    db = open_l1db(config)
    db.makeSchema()
    obj = db.definitions["DiaObject"]
    if db.config.backend == "cassandra":
        from conftest import cassandra_session

        from l1db.cassandra.partitions import PART_COLUMN
        from l1db.cassandra.schema import table_ddl

        cluster, session = cassandra_session()
        try:
            session.execute(f'DROP TABLE "{db.keyspace}"."DiaObjectLast"', timeout=120)
            session.execute(table_ddl(db.keyspace, "DiaObjectLast", obj, (PART_COLUMN,), ("diaObjectId",)),
                            timeout=120)
        finally:
            cluster.shutdown()
    else:
        from l1db.tables import PIXEL_COLUMN, table_columns

        engine = sa.create_engine(db.engine.url, poolclass=sa.pool.NullPool)
        old = sa.Table("DiaObjectLast", sa.MetaData(), *table_columns(obj, True, ("diaObjectId",)))
        with engine.begin() as conn:
            sa.Table("DiaObjectLast", sa.MetaData(), autoload_with=conn).drop(conn)
            old.create(conn)
        engine.dispose()
        assert PIXEL_COLUMN in old.c
    db.close()
    db = open_l1db(config)
    with pytest.raises(SchemaError) as err:
        db.getDiaObjects(_circle(1.0, 1.0, 1.0))
    message = str(err.value)
    assert "DiaObjectLast" in message and "create_l1_schema --drop" in message and "\n" not in message
    db.close()


def test_published_default_lets_a_column_be_left_out(make_config) -> None:
    rng = np.random.default_rng(8)
    db = _l1db(make_config, source_select="by-oid")
    sources = random_rows(rng, db.definitions["DiaSource"], 3, diaSourceId=np.arange(3, dtype=np.int64),
                          diaObjectId=np.arange(3, dtype=np.int64), ra=np.full(3, 20.0), dec=np.full(3, -5.0),
                          midpointMjdTai=np.full(3, T0.mjd - 1))
    db.storeDiaSources(sources.drop(columns=["trailNdata"]))
    read = db.getDiaSources(_circle(20.0, -5.0, 0.1), np.arange(3), T0)
    assert read["trailNdata"].tolist() == [0, 0, 0]
    db.close()
