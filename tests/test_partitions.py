"""PostgreSQL time partitions: partitions made ahead, reads pruned to their window, retention.

That reads and stores return what the unpartitioned schema returns is checked by
the whole L1 API suite on the partitioned layouts (``conftest.PG_LAYOUTS`` and
``postgresql-partitioned``); this file checks what only partitions have.
"""

from __future__ import annotations

import logging
import math
import re
import threading
from pathlib import Path

import astropy.units as u
import lsst.sphgeom as sg
import numpy as np
import pytest
from astropy.time import Time
from conftest import write_config
from l1db_frames import random_rows, random_sky_points, random_visit

from l1db import MONTH_DAYS, L1db, open_l1db
from l1db.config import ConfigError, L1dbConfig, load_config
from l1db.errors import SchemaError
from l1db.timer import TimingRecord

T0 = Time(60000.0, format="mjd", scale="tai")
REPO = Path(__file__).resolve().parent.parent


def _circle(ra: float, dec: float, radius: float) -> sg.Circle:
    return sg.Circle(sg.UnitVector3d(sg.LonLat.fromDegrees(ra, dec)), sg.Angle.fromDegrees(radius))


def _partitions(db: L1db) -> dict[str, list[float]]:
    """Start (MJD) of every existing partition, per table, as the database lists them."""
    with db.engine.connect() as conn:
        rows = conn.exec_driver_sql(
            "SELECT p.relname, pg_get_expr(c.relpartbound, c.oid) FROM pg_inherits i "
            "JOIN pg_class c ON c.oid = i.inhrelid JOIN pg_class p ON p.oid = i.inhparent WHERE c.relkind = 'r'"
        ).all()
    found: dict[str, list[float]] = {}
    for parent, bound in rows:
        start = float(re.search(r"FROM \('([-0-9.]+)'\)", bound).group(1))
        found.setdefault(parent, []).append(start)
    return {t: sorted(v) for t, v in found.items()}


def _history(db: L1db, n: int, first_mjd: float, object_id: int = 5) -> np.ndarray:
    """Store one DiaSource and one DiaForcedSource a day for ``n`` days from ``first_mjd``; return their times."""
    rng = np.random.default_rng(3)
    times = first_mjd + np.arange(n, dtype=np.float64) + 0.25
    ids = np.full(n, object_id, dtype=np.int64)
    ra, dec = np.full(n, 30.0), np.full(n, -40.0)
    db.storeDiaSources(random_rows(rng, db.definitions["DiaSource"], n, diaSourceId=np.arange(n, dtype=np.int64),
                                   diaObjectId=ids, ra=ra, dec=dec, midpointMjdTai=times))
    db.storeDiaForcedSources(random_rows(rng, db.definitions["DiaForcedSource"], n,
                                         diaForcedSourceId=np.arange(n, dtype=np.int64), diaObjectId=ids,
                                         ra=ra, dec=dec, visit=np.arange(n, dtype=np.int64),
                                         detector=np.zeros(n, dtype=np.int16), midpointMjdTai=times))
    return times


@pytest.mark.parametrize("source_select", ["by-oid", "by-fov"])
def test_history_read_touches_only_the_partitions_of_its_window(
    pg_db_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture, source_select: str
) -> None:
    days, months = 10, 1
    db = open_l1db(write_config(tmp_path / "l1db.cfg", pg_db_url, dia_object_index="last_object_table",
                                history_partition_days=days, read_sources_months=months,
                                read_forced_sources_months=months, source_select=source_select))
    db.makeSchema()
    # 200 days of history up to 5 days after the visit: the stores make every partition they need.
    times = _history(db, 205, T0.mjd - 200)
    existing = _partitions(db)
    start, end = T0.mjd - months * MONTH_DAYS, T0.mjd
    region = _circle(30.0, -40.0, 0.5)
    for table, read in (("DiaSource", db.getDiaSources), ("DiaForcedSource", db.getDiaForcedSources)):
        assert len(existing[table]) > 20
        # The partitions [a, a + days) that meet the window (start, end).
        expected = {f"{table}_mjd{a:.0f}" for a in existing[table] if a < end and a + days > start}
        assert len(expected) == 3
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="l1db.sql"):
            got = read(region, np.array([5]), T0, explain=True)
        plan = caplog.text[caplog.text.index("query plan"):]
        scanned = {m.group(0) for m in re.finditer(rf"{table}_mjd-?\d+", plan)}
        assert scanned == expected, plan
        # And the rows are exactly those of the window.
        assert sorted(got["midpointMjdTai"].tolist()) == sorted(times[(times > start) & (times < end)].tolist())
    db.close()


def test_partitions_made_ahead_and_old_ones_dropped_by_retention(pg_db_url: str, tmp_path: Path) -> None:
    days, retention = 10, 40
    config = write_config(tmp_path / "l1db.cfg", pg_db_url, dia_object_index="last_object_table",
                          history_partition_days=days, retention_days=retention, read_sources_months=1,
                          read_forced_sources_months=1, start_time=T0.isot)
    records: list[TimingRecord] = []
    db = open_l1db(config, monitor=records.append)
    db.makeSchema(first_visit_mjd=T0.mjd)
    first = math.floor(T0.mjd / days) * days
    # At creation: the first visit's partition and the next one, for the three history tables.
    made = {t: [first, first + days] for t in ("DiaObject", "DiaSource", "DiaForcedSource")}
    assert _partitions(db) == made
    rng = np.random.default_rng(4)
    ra, dec = random_sky_points(rng, 30, [(10.0, -20.0)], 0.5)
    stored = {}
    for visit, offset in ((1, 0.0), (2, 15.0), (3, 100.0)):
        when = T0 + offset * u.day
        ids = np.arange(visit * 10, visit * 10 + 10, dtype=np.int64)
        objects, sources, forced = random_visit(rng, db.definitions, ra[ids - 10], dec[ids - 10], ids, visit,
                                                when.tai.mjd, first_source_id=visit * 100)
        db.store(when, objects, sources, forced, visit_id=visit)
        stored[visit] = (when, objects, sources, forced)
    # Each store made its visit's partition and the next one, without waiting for the daily job.
    last_mjd = stored[3][0].tai.mjd
    for table in made:
        assert _partitions(db)[table] == sorted({first, first + days, first + 2 * days,
                                                 math.floor(last_mjd / days) * days,
                                                 math.floor(last_mjd / days) * days + days})
    assert db.tableRowCount()["DiaSource"] == sum(len(s[2]) for s in stored.values())
    records.clear()
    db.dailyJob()
    # Partitions ending at or before (last visit - retention) are gone whole, with their rows.
    cutoff = last_mjd - retention
    for table, starts in _partitions(db).items():
        assert starts == [s for s in (first, first + days, first + 2 * days,
                                      math.floor(last_mjd / days) * days, math.floor(last_mjd / days) * days + days)
                          if s + days > cutoff], table
    counts = db.tableRowCount()
    assert counts["DiaSource"] == len(stored[3][2]) and counts["DiaForcedSource"] == len(stored[3][3])
    assert counts["DiaObject"] == len(stored[3][1])
    assert counts["DiaObjectLast"] == 30  # the latest versions are not history: all kept
    (daily,) = [r for r in records if r.op == "daily_partitions"]
    assert daily.rows == 3 * 3  # three partitions of each table dropped, none to make
    # The last visit's window is intact.
    field = _circle(10.0, -20.0, 1.5)
    got = db.getDiaSources(field, np.arange(30, 40), stored[3][0] + 1 * u.day)
    assert sorted(got["diaSourceId"].tolist()) == sorted(stored[3][2]["diaSourceId"].tolist())
    db.close()


def test_create_l1_schema_prints_the_partitions(pg_db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from l1db.cli.create_l1_schema import main

    days, start = 7, "2026-03-01T20:00:00"
    config = write_config(tmp_path / "l1db.cfg", pg_db_url, history_partition_days=days, start_time=start)
    assert main(["-c", str(config), "--start-time", start]) == 0
    out = capsys.readouterr().out
    mjd = Time(start, scale="tai").mjd
    first = math.floor(mjd / days) * days
    assert "time partitions of 7 days" in out
    assert "DiaSource: 104 columns, key (diaSourceId, midpointMjdTai)" in out
    assert "DiaForcedSource: 14 columns, key (diaObjectId, visit, detector, midpointMjdTai)" in out
    for table, column in (("DiaSource", "midpointMjdTai"), ("DiaForcedSource", "midpointMjdTai")):
        line = next(x for x in out.splitlines() if x.strip().startswith(f"{table}: partitioned"))
        assert f"RANGE ({column}), 2 time partitions of {days} days" in line
        assert f"{table}_mjd{first} [{first}, {first + days})" in line
        assert f"{table}_mjd{first + days} [{first + days}, {first + 2 * days})" in line
    # With baseline DiaObject is the read path of the latest versions: not partitioned.
    assert "DiaObject: partitioned" not in out


def test_a_client_with_other_partitions_is_refused(pg_db_url: str, tmp_path: Path) -> None:
    db = open_l1db(write_config(tmp_path / "a.cfg", pg_db_url, history_partition_days=10))
    db.makeSchema()
    db.close()
    for days in (0, 20):
        other = open_l1db(write_config(tmp_path / f"b{days}.cfg", pg_db_url, history_partition_days=days))
        with pytest.raises(SchemaError, match=f"history_partition_days: database '10', config '{days}'"):
            other.lastVisit()
        other.close()


def test_concurrent_clients_make_each_partition_once(pg_db_url: str, tmp_path: Path) -> None:
    config = write_config(tmp_path / "l1db.cfg", pg_db_url, history_partition_days=1, start_time=T0.isot)
    open_l1db(config).makeSchema(first_visit_mjd=T0.mjd)
    clients = [open_l1db(config) for _ in range(4)]
    barrier = threading.Barrier(len(clients))
    errors: list[BaseException] = []

    def store(i: int) -> None:
        rng = np.random.default_rng(i)
        n = 40
        # Every client needs the same 20 partitions that do not exist yet.
        times = T0.mjd + 30 + np.arange(n) * 0.5
        frame = random_rows(rng, clients[i].definitions["DiaSource"], n,
                            diaSourceId=np.arange(i * n, (i + 1) * n, dtype=np.int64),
                            diaObjectId=np.arange(n, dtype=np.int64), ra=np.full(n, 1.0), dec=np.full(n, 1.0),
                            midpointMjdTai=times)
        barrier.wait()
        try:
            clients[i].storeDiaSources(frame)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=store, args=(i,)) for i in range(len(clients))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    starts = _partitions(clients[0])["DiaSource"]
    assert len(starts) == len(set(starts)) == 2 + 20
    assert clients[0].tableRowCount()["DiaSource"] == 4 * 40
    for db in clients:
        db.close()


def test_options_refused_where_there_are_no_time_partitions() -> None:
    for url in ("sqlite:///x.sqlite3", "mysql://u@127.0.0.1/db"):
        with pytest.raises(ConfigError, match="history_partition_days"):
            open_l1db(L1dbConfig(url=url).replace(history_partition_days=10))


def test_partitioned_example_config() -> None:
    config = load_config(REPO / "cfg" / "l1db-pg-partitioned.cfg")
    assert config.history_partition_days == 30 and config.retention_days >= 12 * MONTH_DAYS
    assert config.dia_object_index == "last_object_table"
