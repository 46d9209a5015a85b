"""Cassandra's per-period tables (``[cassandra] time_partition_tables = 1``) on a real node.

Where the rows land (one table per time partition, each holding exactly its
rows, made once when two clients reach a new period at once), what a read
touches (the tables of its window's periods, no other; a period without a
table is empty), the layout recorded with the schema, the L1 API suite's
oracles on this layout, and ap_proto across a period boundary, resumed (with
the same rows as on SQLite) and saved and restored.

The read-only tests share one keyspace (`stored`): each keyspace costs the
shared node CPU.
"""

from __future__ import annotations

import dataclasses
import re
import threading
from collections.abc import Iterator
from pathlib import Path

import lsst.sphgeom as sg
import numpy as np
import pandas as pd
import pytest
import test_l1db as suite
import test_replica as replica
from ap_runs import run_ap_proto
from conftest import cassandra_session, catalog_fixture, create_test_database, write_config
from l1db_frames import random_rows, random_sky_points

from l1db import open_l1db
from l1db.cassandra.l1db_cassandra import L1dbCassandra
from l1db.cli.create_l1_schema import main as create_l1_schema
from l1db.config import load_config, parse_cassandra_url
from l1db.constants import parse_time, to_mjd_tai
from l1db.errors import SchemaError
from l1db.scratch import read_table
from l1db.timing_log import parse_log

#: The layout of these tests: 30-day periods from MJD 0 (period 2000 is MJD [60000, 60030)).
PERIODS = {"time_partition_tables": 1, "time_partition_days": 30, "part_pixelization": "mq3c",
           "part_pixel_level": 8}
#: The three periods the shared keyspace's rows are spread over.
STORED_PERIODS = (2000, 2001, 2002)
CENTER = (10.0, -20.0)

sources = catalog_fixture(300, seed=5)


def _circle(ra: float, dec: float, radius: float) -> sg.Circle:
    return sg.Circle(sg.UnitVector3d(sg.LonLat.fromDegrees(ra, dec)), sg.Angle.fromDegrees(radius))


@dataclasses.dataclass
class Stored:
    """The shared keyspace: its config file and URL, and the rows stored in it."""

    config: Path
    url: str
    ids: np.ndarray
    sources: pd.DataFrame
    forced: pd.DataFrame


def _keyspace_tables(url: str) -> list[str]:
    cluster, session = cassandra_session()
    try:
        rows = session.execute("SELECT table_name FROM system_schema.tables WHERE keyspace_name = %s",
                               [parse_cassandra_url(url).keyspace])
        return sorted(str(r[0]) for r in rows)
    finally:
        cluster.shutdown()


@pytest.fixture(scope="module")
def stored(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stored]:
    """A keyspace of per-period tables holding DiaSources and DiaForcedSources of three periods.

    The rows are stored by two clients at once, each half of every table's
    rows, so that both make the same three new tables at the same time.
    """
    tmp = tmp_path_factory.mktemp("periods")
    url, drop = create_test_database("cassandra", tmp)
    try:
        config = write_config(tmp / "periods.cfg", url, **PERIODS)
        with open_l1db(config) as db:
            db.makeSchema()
            definitions = db.definitions
        rng = np.random.default_rng(31)
        n_objects, n = 300, 900
        ra, dec = random_sky_points(rng, n_objects, [CENTER], 1.0)
        ids = np.arange(1, n_objects + 1, dtype=np.int64)
        owner = rng.integers(0, n_objects, n)
        # Spread over the three periods, a few rows right at their edges.
        times = rng.uniform(60000.0, 60090.0, n)
        times[:4] = [60000.0, 60030.0 - 1e-6, 60030.0, 60060.0]
        src = random_rows(rng, definitions["DiaSource"], n, diaSourceId=np.arange(n, dtype=np.int64),
                          diaObjectId=ids[owner], ra=ra[owner], dec=dec[owner], midpointMjdTai=times)
        fsrc = random_rows(rng, definitions["DiaForcedSource"], n, diaForcedSourceId=np.arange(n, dtype=np.int64),
                           diaObjectId=ids[owner], ra=ra[owner], dec=dec[owner],
                           visit=np.arange(n, dtype=np.int64), detector=np.zeros(n, dtype=np.int16),
                           midpointMjdTai=times)
        errors: list[BaseException] = []
        start = threading.Barrier(2)

        def store(half: slice) -> None:
            try:
                with open_l1db(config) as client:
                    client.checkSchema()
                    start.wait()
                    client.storeDiaSources(src.iloc[half].reset_index(drop=True))
                    client.storeDiaForcedSources(fsrc.iloc[half].reset_index(drop=True))
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=store, args=(half,)) for half in (slice(0, n, 2), slice(1, n, 2))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert not errors, errors
        yield Stored(config, url, ids, src, fsrc)
    finally:
        drop()


def _period_rows(url: str, table: str, key: str) -> dict[int, set[int]]:
    """``key`` of the rows of each per-period table of ``table``, by period, read with the driver."""
    keyspace = parse_cassandra_url(url).keyspace
    found = {}
    cluster, session = cassandra_session()
    try:
        for name in _keyspace_tables(url):
            if (match := re.fullmatch(rf"{table}_(\d+)", name)) is not None:
                rows = session.execute(f'SELECT "{key}" FROM "{keyspace}"."{name}"')
                found[int(match[1])] = {int(r[0]) for r in rows}
    finally:
        cluster.shutdown()
    return found


def test_each_period_table_holds_exactly_its_rows(stored: Stored) -> None:
    tables = _keyspace_tables(stored.url)
    for table, frame, key in (("DiaSource", stored.sources, "diaSourceId"),
                              ("DiaForcedSource", stored.forced, "diaForcedSourceId")):
        assert table not in tables  # no table of every period: only the per-period ones
        periods = np.floor(frame["midpointMjdTai"].to_numpy() / 30).astype(int)
        expected = {p: set(frame[key].to_numpy()[periods == p].tolist()) for p in STORED_PERIODS}
        assert all(expected.values())  # every period has rows
        assert _period_rows(stored.url, table, key) == expected, table
    # DiaObject's per-period tables are made as its rows need them: none stored here.
    assert not [t for t in tables if t.startswith("DiaObject_")]
    with open_l1db(stored.config) as db:
        for exact in (True, False):
            counts = db.tableRowCount(exact=exact)
            assert counts["DiaSource"] == counts["DiaForcedSource"] == len(stored.sources), exact
            assert counts["DiaObject"] == 0


class _Sent:
    """The CQL statements a client sends (its sessions' request listeners), and the tables they name."""

    def __init__(self, db: L1dbCassandra) -> None:
        self.queries: list[str] = []
        for session in (db._session, db._plain):
            session.add_request_init_listener(self._heard)

    def _heard(self, future) -> None:
        query = future.query
        text = getattr(getattr(query, "prepared_statement", None), "query_string", None)
        self.queries.append(text if text is not None else str(getattr(query, "query_string", query)))

    def tables(self, prefix: str) -> set[str]:
        """The tables named ``prefix_N`` that the SELECTs sent read from."""
        return {m[1] for q in self.queries if q.startswith("SELECT")
                for m in re.finditer(r'FROM "[^"]+"\."([^"]+)"', q) if re.fullmatch(rf"{prefix}_\d+", m[1])}


@pytest.mark.parametrize("spatial_queries", [0, 1, 3])
def test_a_read_touches_only_the_tables_of_its_window(stored: Stored, tmp_path: Path, spatial_queries: int) -> None:
    config = write_config(tmp_path / "read.cfg", stored.url, **PERIODS, read_sources_months=1,
                          read_forced_sources_months=1, spatial_queries=spatial_queries)
    db = open_l1db(config)
    assert isinstance(db, L1dbCassandra)
    sent = _Sent(db)
    region = _circle(*CENTER, 1.2)
    asked = stored.ids[::2]  # half the objects: the others' rows are trimmed away
    visit = 60075.0  # the window (60045, 60075): periods 2001 and 2002, not 2000
    for read, frame, key, table in ((db.getDiaSources, stored.sources, "diaSourceId", "DiaSource"),
                                    (db.getDiaForcedSources, stored.forced, "diaForcedSourceId", "DiaForcedSource")):
        sent.queries.clear()
        got = read(region, asked, visit)
        mjd = frame["midpointMjdTai"].to_numpy()
        inside = (mjd > visit - 30.0) & (mjd < visit) & np.isin(frame["diaObjectId"].to_numpy(), asked)
        assert len(got) > 0 and sorted(got[key].tolist()) == sorted(frame[key].to_numpy()[inside].tolist())
        assert sent.tables(table) == {f"{table}_2001", f"{table}_2002"}, sent.queries
        assert not [q for q in sent.queries if f'"{table}"' in q]  # never a table of every period
    db.close()


def test_a_period_without_a_table_is_empty(stored: Stored, tmp_path: Path) -> None:
    config = write_config(tmp_path / "read.cfg", stored.url, **PERIODS, read_sources_months=1,
                          read_forced_sources_months=1)
    db = open_l1db(config)
    assert isinstance(db, L1dbCassandra)
    sent = _Sent(db)
    region = _circle(*CENTER, 1.2)
    # Before the first table: (59990, 60020) is periods 1999 (no table) and 2000.
    got = db.getDiaSources(region, stored.ids, 60020.0)
    mjd = stored.sources["midpointMjdTai"].to_numpy()
    assert sorted(got["diaSourceId"].tolist()) == sorted(stored.sources["diaSourceId"][mjd < 60020.0].tolist())
    assert sent.tables("DiaSource") == {"DiaSource_2000"}
    # After the last: no table of the window, no row and no error.
    sent.queries.clear()
    for read, table in ((db.getDiaSources, "DiaSource"), (db.getDiaForcedSources, "DiaForcedSource")):
        empty = read(region, stored.ids, 60300.0)
        assert len(empty) == 0 and list(empty.columns) == [c.name for c in db.tables[table].columns]
    assert not sent.tables("DiaSource") and not sent.tables("DiaForcedSource")
    db.close()


def test_the_other_layout_is_a_one_line_error(stored: Stored, tmp_path: Path, sources: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    columns = write_config(tmp_path / "columns.cfg", stored.url, **{**PERIODS, "time_partition_tables": 0})
    with open_l1db(columns) as db, pytest.raises(SchemaError, match="time_partition_tables: database '1', config '0'"):
        db.lastVisit()
    assert run_ap_proto(columns, sources, tmp_path / "t.jsonl", "-n", "1") == 1
    err = capsys.readouterr().err
    assert err.startswith("ap_proto: error: ") and err.count("\n") == 1 and "time_partition_tables" in err, err


# -- the L1 API suite's oracles on this layout (10-day periods: the windows span several, some without a table) --

def _periods_config(make_cassandra_config):
    def make(**options: object) -> Path:
        return make_cassandra_config(**{**PERIODS, "time_partition_days": 10, **options})
    return make


def test_round_trip_every_column(make_cassandra_config) -> None:
    suite.test_round_trip_every_column(_periods_config(make_cassandra_config))


def test_history_windows_at_their_edges(make_cassandra_config) -> None:
    # source_select is the SQL backends' choice: Cassandra reads the window's partitions either way.
    suite.test_history_windows_at_their_edges(_periods_config(make_cassandra_config), "by-fov")


def test_exactly_one_latest_version(make_cassandra_config) -> None:
    suite.test_exactly_one_latest_version(_periods_config(make_cassandra_config), {})


def test_latest_versions_and_full_rows_from_the_period_tables(make_cassandra_config) -> None:
    # Versions 0, 45 and 46 days after the first: three DiaObject periods of 10 days, read by read_full_objects.
    suite.test_latest_versions_hold_the_published_columns_and_full_rows_come_from_history(
        _periods_config(make_cassandra_config), {})


def test_reads_and_stores_more_ids_than_one_chunk(make_cassandra_config, monkeypatch: pytest.MonkeyPatch) -> None:
    suite.test_reads_and_stores_more_ids_than_one_chunk(_periods_config(make_cassandra_config), monkeypatch, {})


def test_replica_chunk_tables_hold_exactly_the_stored_rows(make_cassandra_config) -> None:
    # The replica's tables are not per period; the store writes both in one concurrent write.
    replica.test_chunk_tables_hold_exactly_the_stored_rows(_periods_config(make_cassandra_config), {})


# -- ap_proto across a period boundary --

def test_ap_proto_across_a_period_boundary_resumes_as_on_sqlite(make_cassandra_config, sources: Path,
                                                                 tmp_path: Path) -> None:
    """1-day periods, visits an hour apart over midnight TAI (a period boundary), in two runs: the second
    resumes after the first; every row is in its period's table, and the rows and the per-visit counts
    (history reads included) are SQLite's."""
    run = ("--start-time", "2026-01-01T22:30:00", "--interval", "3600")
    configs = {
        "sqlite": write_config(tmp_path / "sqlite.cfg", f"sqlite:///{tmp_path}/l1db.sqlite3",
                               dia_object_index="last_object_table"),
        "cassandra": make_cassandra_config(**{**PERIODS, "time_partition_days": 1}),
    }
    rows = {}
    for name, config in configs.items():
        # Cassandra: the first visit's tables and the next period's made here, before any store.
        assert create_l1_schema(["-c", str(config), "--start-time", run[1]]) == 0
        if name == "cassandra":
            day = int(np.floor(to_mjd_tai(parse_time(run[1]))))
            for table in ("DiaObject", "DiaSource", "DiaForcedSource"):
                assert set(_period_rows(load_config(config).url, table, "diaObjectId")) == {day, day + 1}
        for part, visits in ((1, 2), (2, 2)):
            log = tmp_path / f"{name}-{part}.jsonl"
            assert run_ap_proto(config, sources, log, *run, "-n", visits) == 0
            timings = parse_log(log).timings
            assert sorted(timings["visit"].unique().tolist()) == ([1, 2] if part == 1 else [3, 4])
            rows[name, part] = timings.groupby(["visit", "op"])["rows"].sum()
    for part in (1, 2):
        for op in ("obj_select", "src_select", "fsrc_select", "obj_insert", "src_insert", "fsrc_insert"):
            pd.testing.assert_series_equal(rows["sqlite", part].xs(op, level="op"),
                                           rows["cassandra", part].xs(op, level="op"), obj=op)
    # The resumed run read the first run's history, across the boundary.
    assert rows["cassandra", 2].xs("src_select", level="op").sum() > 0
    url = load_config(configs["cassandra"]).url
    visits = read_table(configs["sqlite"], "L1dbVisit", ["visitId", "visitTimeMjdTai"])
    days = np.floor(visits["visitTimeMjdTai"].to_numpy()).astype(int)
    assert len(set(days.tolist())) == 2  # the visits span two periods
    sqlite_sources = read_table(configs["sqlite"], "DiaSource", ["diaSourceId", "midpointMjdTai"])
    periods = np.floor(sqlite_sources["midpointMjdTai"].to_numpy()).astype(int)
    expected = {int(p): set(sqlite_sources["diaSourceId"].to_numpy()[periods == p].tolist())
                for p in np.unique(periods)}
    found = _period_rows(url, "DiaSource", "diaSourceId")
    assert {p: ids for p, ids in found.items() if ids} == expected
    # The rows themselves (read_table reads a table's per-period tables as one).
    columns = ["diaSourceId", "diaObjectId", "visit", "ra", "dec", "psfFlux", "midpointMjdTai"]
    stored = {name: read_table(config, "DiaSource", columns).sort_values("diaSourceId").reset_index(drop=True)
              for name, config in configs.items()}
    assert len(stored["cassandra"]) == sum(len(ids) for ids in expected.values())
    pd.testing.assert_frame_equal(stored["sqlite"], stored["cassandra"], check_dtype=False)
    # The next period's tables were made ahead of the stores that would reach it.
    assert max(found) == max(days) + 1 and not found[max(days) + 1]



def test_a_saved_state_restores_the_period_tables(make_cassandra_config, sources: Path, tmp_path: Path) -> None:
    """l1db_state saves every per-period table, a restore makes them and imports their rows, and the next
    visit (in the next period) does the same on both."""
    from test_state import _tables

    from l1db.cli.l1db_state import main as l1db_state

    options = {**PERIODS, "time_partition_days": 1}
    original = make_cassandra_config(**options)
    (tmp_path / "target").mkdir()
    target_url, drop = create_test_database("cassandra", tmp_path / "target")
    try:
        restored = write_config(tmp_path / "restored.cfg", target_url, **options)
        assert create_l1_schema(["-c", str(original)]) == 0
        run = ("--start-time", "2026-01-01T22:30:00", "--interval", "3600")
        assert run_ap_proto(original, sources, tmp_path / "first.jsonl", *run, "-n", 2) == 0
        saved = tmp_path / "saved"
        assert l1db_state(["save", "-c", str(original), str(saved)]) == 0
        assert l1db_state(["restore", "-c", str(restored), str(saved)]) == 0
        before = _tables(original)
        assert [t for t in before if t.startswith("DiaSource_")]  # the comparison covers per-period tables
        after = _tables(restored)
        assert list(after) == list(before)
        for table in before:
            pd.testing.assert_frame_equal(after[table], before[table], check_exact=True, obj=table)
        # One more visit on each, past midnight TAI: the next period, the same rows.
        for config, log in ((original, "original.jsonl"), (restored, "restored.jsonl")):
            assert run_ap_proto(config, sources, tmp_path / log, *run, "-n", 1) == 0
        original_tables, restored_tables = _tables(original), _tables(restored)
        assert list(original_tables) == list(restored_tables) and len(original_tables["L1dbVisit"]) == 3
        for table, frame in original_tables.items():
            pd.testing.assert_frame_equal(restored_tables[table], frame, check_exact=True, obj=table)
    finally:
        drop()
