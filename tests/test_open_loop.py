"""Open-loop runs (``ap_proto --cadence``): visits released on the clock, overlapping, killed and resumed.

Short runs at low density on the tests' small patch (`ap_runs`), with a
cadence far shorter than a visit's time, so that visits overlap, finish out
of order and are left partly stored by a kill.

The daily job's pause (docs/open-loop.md, "Nights") is made long by another
client of the database, as in production a backup or an analyst's
transaction would: it holds a lock on DiaObject, which the visits only read
(they write DiaObjectNightly) and the nightly merge writes, so the merge
waits until the test lets it go, and the test knows when it waits.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import astropy.units as u
import lsst.sphgeom as sg
import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from ap_runs import RUN_OPTIONS, ap_proto_command, run_ap_proto
from astropy.time import Time
from cassandra import OperationTimedOut, ReadTimeout
from cassandra.cluster import NoHostAvailable
from conftest import catalog_fixture, write_config
from l1db_frames import random_rows, random_sky_points

from dia_sim.cli.log2csv import main as log2csv_main
from dia_sim.log2csv import OPEN_LOOP_COLUMNS, logs_to_table, read_behind
from dia_sim.open_loop import in_flight_steps, verdict
from dia_sim.plots import run_figures, write_plots
from dia_sim.report import load_run, render_report
from l1db import open_l1db
from l1db.cli.create_l1_schema import main as create_l1_schema
from l1db.config import normalize_url
from l1db.scratch import read_table, table_reader
from l1db.timer import TimingRecord, TimingSink
from l1db.timing_log import TimingLogWriter, latency_frame, parse_log

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
import bench_capacity  # noqa: E402
from _faults import check_database  # noqa: E402

sources = catalog_fixture(400)

#: Open loop: a visit released every 0.1 s (a visit takes far longer), tiles of 2 x 2 on 2 workers.
OPEN = ("--cadence", "0.1", "--max-in-flight", "25", "--divide", "2", "--workers", "2")


TILES = 4


def _stored_tiles(config: Path, read: Callable[[str, list[str]], pd.DataFrame] | None = None
                  ) -> set[tuple[int, int]]:
    """The (visit, tile) pairs L1dbVisit holds, through ``read`` (a `table_reader`'s) or a connection of its own."""
    visits = read("L1dbVisit", ["visitId", "tile"]) if read else read_table(config, "L1dbVisit", ["visitId", "tile"])
    return set(zip(visits["visitId"].astype(int), visits["tile"].astype(int)))


def _holes(stored: set[tuple[int, int]]) -> set[tuple[int, int]]:
    """Tiles missing from visits before the last one stored: visits that finished out of order."""
    last = max((v for v, _ in stored), default=0)
    return {(v, t) for v in range(1, last) for t in range(TILES)} - stored


def _kill_at_a_hole(config: Path, sources: Path, log: Path, timeout: float = 300.0) -> bool:
    """Run ap_proto open loop and kill -9 it as soon as a visit is stored while an earlier one is not whole.

    Returns whether the database holds such a hole after the kill (it may have been filled in the instant
    before it); False also when the run ended first.
    """
    proc = subprocess.Popen(ap_proto_command(config, sources, log, "-n", 12, *OPEN), stderr=subprocess.DEVNULL,
                            start_new_session=True)
    deadline = time.monotonic() + timeout
    try:
        # One connection for all the looks: connecting anew 50 times a second loaded the node under test.
        with table_reader(config) as read:
            while proc.poll() is None and time.monotonic() < deadline:
                try:
                    if _holes(_stored_tiles(config, read)):
                        break
                except (NoHostAvailable, OperationTimedOut, ReadTimeout):
                    # On a node busy with the run a look may time out. A look is only a moment to kill at;
                    # the next one comes.
                    pass
                time.sleep(0.02)
    finally:
        with contextlib.suppress(ProcessLookupError):  # the run may have ended first
            os.killpg(proc.pid, signal.SIGKILL)  # the driver and its pool's workers
        proc.wait()
    return bool(_holes(_stored_tiles(config)))


@pytest.mark.parametrize("index", ["last_object_table", "baseline"])
def test_open_loop_killed_and_resumed_stores_exactly_the_missing_visits(db_url: str, index: str, tmp_path: Path,
                                                                        sources: Path) -> None:
    config = write_config(tmp_path / "l1db.cfg", db_url, dia_object_index=index)
    assert create_l1_schema(["-c", str(config)]) == 0
    log = tmp_path / "timing.jsonl"
    # Visits finish out of order now and then (a later visit's tile stored before an earlier one's last tile):
    # kill there, resuming the run each time until a kill leaves such a hole.
    for _ in range(4):
        if _kill_at_a_hole(config, sources, log):
            break
    before = _stored_tiles(config)
    holes = _holes(before)
    assert holes, "no kill left a visit incomplete below the last one stored"
    last = max(v for v, _ in before)
    incomplete = {v for v in range(1, last + 1) if any((v, t) not in before for t in range(TILES))}

    # Resumed: the visits left incomplete (partly stored or not at all), then two new ones.
    assert run_ap_proto(config, sources, log, "-n", len(incomplete) + 2, *OPEN) == 0
    everything = {(v, t) for v in range(1, last + 3) for t in range(TILES)}
    assert _stored_tiles(config) == everything
    parsed = parse_log(log)
    resumed_run = parsed.provenance[-1]["run"]
    timings = parsed.timings
    resumed = timings[(timings["run"] == resumed_run) & (timings["op"] == "visit_insert")]
    # Exactly the tiles missing were stored by the resumed run, each once.
    assert sorted(zip(resumed["visit"], resumed["tile"])) == sorted(everything - before)

    # The fault-injection checks: visits contiguous and whole, no key twice, rows per visit as logged,
    # the latest-version table holding the newest version of every object.
    check = check_database(config, [log])
    assert check.problems == []
    assert check.visits == last + 2
    # A kill between a commit and its records: at most the tiles being stored then, one per worker.
    assert len(check.unlogged) <= 2 * len(parsed.provenance)

    # Every visit a run completed has its latency record, and log2csv its columns.
    table, _ = logs_to_table([log])
    complete_rows = table[table["complete"] == 1]
    assert len(complete_rows) and complete_rows["latency"].notna().all()
    assert (complete_rows["latency"] >= complete_rows["queue_wait"]).all()


def test_verdict_of_a_run_that_falls_behind(tmp_path: Path, sources: Path, capsys: pytest.CaptureFixture) -> None:
    config = write_config(tmp_path / "l1db.cfg", f"sqlite:///{tmp_path / 'l1db.sqlite3'}")
    assert create_l1_schema(["-c", str(config)]) == 0
    log = tmp_path / "timing.jsonl"
    # A pool of one (this process) and a cadence no visit can meet: the third release finds two in flight.
    assert run_ap_proto(config, sources, log, "-n", "8", "--cadence", "0.01", "--max-in-flight", "2") == 0
    err = capsys.readouterr().err
    parsed = parse_log(log)
    assert len(parsed.behind) == 1 and parsed.behind[0]["in_flight"] == 2
    behind_visit = parsed.behind[0]["visit"]
    assert "the database fell behind" in err and f"visit {behind_visit}" in err
    assert "did NOT keep up" in err
    # Every visit released before it was stored and logged: none after it.
    stored = sorted(read_table(config, "L1dbVisit", ["visitId"])["visitId"].astype(int))
    assert stored == list(range(1, behind_visit))
    latencies = parsed.latencies
    assert sorted(latencies["visit"]) == stored
    assert (np.diff(latencies.sort_values("visit")["released"]) > 0).all()
    result = verdict(latencies, 0.01, [behind_visit])
    assert not result.kept_up and result.visits == len(stored) and result.max_in_flight >= 2
    assert result.line() in err

    # The same verdict from the per-visit CSV and its sidecar: log2csv, plot_timing's figure, the report.
    csv = tmp_path / "run.csv"
    assert log2csv_main([str(log), "-o", str(csv)]) == 0
    assert result.line() in capsys.readouterr().err
    assert read_behind(csv) == parsed.behind
    run = load_run(csv)
    (from_csv,) = run.verdicts.values()
    assert (from_csv.kept_up, from_csv.visits, from_csv.max_in_flight, from_csv.behind_visit) == \
        (False, result.visits, result.max_in_flight, behind_visit)
    assert [from_csv.median, from_csv.p95, from_csv.max, from_csv.queue_wait] == \
        pytest.approx([result.median, result.p95, result.max, result.queue_wait], abs=1e-4)
    assert f"did NOT keep up ({result.visits} visits)" in render_report([run])
    figures = write_plots([csv], tmp_path / "plots")
    assert tmp_path / "plots" / "open_loop.png" in figures


def test_in_flight_and_verdict_from_records() -> None:
    records = [{"run": "r", "visit": v, "released": 100.0 + 10 * v, "began": 100.0 + 10 * v + 1,
                "stored": 100.0 + 10 * v + stored} for v, stored in ((0, 5), (1, 15), (2, 12), (3, 4))]
    frame = latency_frame(records)
    assert frame["latency"].tolist() == [5, 15, 12, 4] and frame["queue_wait"].tolist() == [1, 1, 1, 1]
    times, counts = in_flight_steps(frame)
    # 100 +1, 105 -1, 110 +1, 120 +1, 125 -1, 130 +1 (132 -1 of visit 2 comes later), 132 -1, 134 -1.
    assert counts.tolist() == [1, 0, 1, 2, 1, 2, 1, 0] and times.tolist() == sorted(times.tolist())
    result = verdict(frame, 10.0)
    assert result.max_in_flight == 2 and result.queue_wait == 4 and result.max == 15
    assert result.median == pytest.approx(8.5) and result.kept_up
    # A latency that grows by a cadence or more over the run: the queue grows, not kept up.
    growing = latency_frame([{**r, "stored": r["released"] + 5 + 20 * r["visit"]} for r in records])
    assert not verdict(growing, 10.0).kept_up


def test_bisection_of_the_sustainable_cadence() -> None:
    probed: list[float] = []

    def holds(cadence: float) -> bool:
        probed.append(cadence)
        return cadence >= 3.3

    found = bench_capacity.bisect(holds, 1.0, 9.0, 4)
    # The slowest first, then halvings of the interval: 5 holds, 3 does not, 4 and 3.5 hold.
    assert probed == [9.0, 5.0, 3.0, 4.0, 3.5] and found == 3.5
    probed.clear()
    assert bench_capacity.bisect(holds, 1.0, 2.0, 4) is None and probed == [2.0]


def test_capacity_probes_start_from_a_saved_state(tmp_path: Path, sources: Path,
                                                  capsys: pytest.CaptureFixture) -> None:
    from l1db.cli.l1db_state import main as l1db_state

    config = write_config(tmp_path / "l1db.cfg", f"sqlite:///{tmp_path / 'l1db.sqlite3'}")
    assert create_l1_schema(["-c", str(config)]) == 0
    assert run_ap_proto(config, sources, tmp_path / "history.jsonl", "-n", "2") == 0
    assert l1db_state(["save", "-c", str(config), str(tmp_path / "state")]) == 0
    run_ap_proto(config, sources, tmp_path / "more.jsonl", "-n", "1")  # the probe must not see this visit
    capsys.readouterr()
    code = bench_capacity.main(["-c", str(config), "--catalog", str(sources), "--state", str(tmp_path / "state"),
                                "--visits", "2", "--fast", "0.01", "--slow", "3", "--steps", "0",
                                "--work", str(tmp_path / "work"), "--", *RUN_OPTIONS])
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines() if line.startswith("| 3 |")]
    assert len(rows) == 1 and rows[0].split("|")[3].strip() == "2", out
    assert code == (0 if rows[0].split("|")[2].strip() == "yes" else 1)
    # The probe ran the two visits after the saved ones, on the saved history only.
    assert sorted(parse_log(tmp_path / "work" / "capacity-3.000.jsonl").latencies["visit"]) == [3, 4]
    assert sorted(read_table(config, "L1dbVisit", ["visitId"])["visitId"].astype(int)) == [1, 2, 3, 4]


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["int", "term"])
def test_a_stop_signal_between_releases_says_no_visit_was_in_flight(sig: signal.Signals, tmp_path: Path,
                                                                     sources: Path) -> None:
    """A first stop signal while an open loop waits for its next release, nothing in flight: the run ends at
    once, and says so (not "finishing the current visit")."""
    config = write_config(tmp_path / "l1db.cfg", f"sqlite:///{tmp_path / 'l1db.sqlite3'}")
    assert create_l1_schema(["-c", str(config)]) == 0
    log = tmp_path / "timing.jsonl"
    proc = subprocess.Popen(ap_proto_command(config, sources, log, "-n", "3", "--cadence", "120"),
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while not log.exists() or parse_log(log).latencies.empty:  # visit 1 stored, visit 2 due in two minutes
            assert proc.poll() is None and time.monotonic() < deadline, "visit 1 was not stored in time"
            time.sleep(0.1)
        signalled = time.monotonic()
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=60)
        took = time.monotonic() - signalled
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
    assert proc.returncode == 0 and "Traceback" not in err, err
    assert took < 30  # not at the next release
    assert "finishing the current visit" not in err and "abandon" not in err, err
    if sig == signal.SIGINT:
        assert "interrupt: no visit in flight, stopping" in err and "1 visit(s) done (stopped by Ctrl-C" in err, err
    else:
        assert "1 visit(s) done (stopped by SIGTERM after finishing nothing (no visit in flight)" in err, err
    assert sorted(parse_log(log).latencies["visit"]) == [1]


def test_closed_loop_writes_no_open_loop_record(tmp_path: Path, sources: Path) -> None:
    config = write_config(tmp_path / "l1db.cfg", f"sqlite:///{tmp_path / 'l1db.sqlite3'}")
    assert create_l1_schema(["-c", str(config)]) == 0
    log = tmp_path / "timing.jsonl"
    assert run_ap_proto(config, sources, log, "-n", "2") == 0
    parsed = parse_log(log)
    assert parsed.latencies.empty and parsed.behind == [] and parsed.unknown == 0
    table, _ = logs_to_table([log])
    assert table.loc[:, list(OPEN_LOOP_COLUMNS)].isna().all().all()
    assert isinstance(table, pd.DataFrame) and len(table) == 2
    assert "open_loop" not in run_figures(table)


def test_stores_out_of_order_write_their_replica_chunk_rows(make_sql_config) -> None:
    """With the replica on, a store out of order writes the chunk rows of its DiaObject versions too."""
    rng = np.random.default_rng(3)
    db = open_l1db(make_sql_config(dia_object_index="baseline", enable_replica=1))
    db.makeSchema()
    ra, dec = random_sky_points(rng, 50, [(150.0, -60.0)], 1.0)
    ids = np.arange(50, dtype=np.int64)
    for visit in (1, 0):
        t = Time("2026-01-01T00:00:00", scale="tai") + visit * u.day
        objects = random_rows(rng, db.definitions["DiaObject"], 50, diaObjectId=ids, ra=ra, dec=dec)
        db.store(t, objects, None, None, visit_id=visit, out_of_order=True)
    counts = db.tableRowCount()
    db.close()
    assert counts["DiaObject"] == counts["DiaObjectChunks"] == 100


def test_stores_out_of_order_keep_the_latest_version(make_config, layout: dict) -> None:
    """Visits stored in a shuffled order (``out_of_order``): the latest version of each object wins, and
    the validity intervals still follow one another, as if they had been stored in order."""
    if layout.get("dia_object_nightly"):
        pytest.skip("the nightly table is merged by the daily job, in time order")
    rng = np.random.default_rng(11)
    config = make_config(read_full_objects=1, **layout)
    db = open_l1db(config)
    db.makeSchema()
    n = 200
    ra, dec = random_sky_points(rng, n, [(150.0, -60.0)], 1.0)
    newest: dict[int, float] = {}
    stored = 0
    for visit in (2, 0, 3, 1):
        pick = np.sort(np.random.default_rng(visit).choice(n, size=120, replace=False))
        t = Time("2026-01-01T00:00:00", scale="tai") + visit * u.day
        objects = random_rows(np.random.default_rng(visit), db.definitions["DiaObject"], len(pick),
                              diaObjectId=pick.astype(np.int64), ra=ra[pick], dec=dec[pick])
        db.store(t, objects, None, None, visit_id=visit, out_of_order=True)
        stored += len(pick)
        for i in pick.tolist():
            newest[i] = max(newest.get(i, 0.0), t.tai.mjd)
    found = db.getDiaObjects(sg.Circle(sg.UnitVector3d(sg.LonLat.fromDegrees(150.0, -60.0)),
                                       sg.Angle.fromDegrees(1.1)))
    assert found["diaObjectId"].is_unique
    assert dict(zip(found["diaObjectId"].tolist(), found["validityStartMjdTai"].tolist())) == newest
    assert db.tableRowCount()["DiaObject"] == stored
    db.close()
    if db.config.backend == "cassandra" or layout["dia_object_index"] == "last_object_table":
        return
    rows = read_table(config, "DiaObject", ["diaObjectId", "validityStartMjdTai", "validityEndMjdTai"])
    rows = rows.astype({"validityStartMjdTai": "float64", "validityEndMjdTai": "float64"})
    # One open version per object, and each closed one ends where the next one starts.
    assert rows.loc[rows["validityEndMjdTai"].isna(), "diaObjectId"].is_unique
    rows = rows.sort_values(["diaObjectId", "validityStartMjdTai"])
    following = rows.groupby("diaObjectId")["validityStartMjdTai"].shift(-1)
    pd.testing.assert_series_equal(rows["validityEndMjdTai"], following, check_names=False)


# -- the daily job's pause ---------------------------------------------------------------

#: Open loop of one worker (ap_proto's own process), a visit released every 0.2 s (a visit takes longer), the daily
#: job after every 3 visits, on the nightly table that the daily job merges into DiaObject.
PAUSED = ("--cadence", "0.2", "--max-in-flight", "25", "--workers", "1", "--daily-job-every", "3")
#: Seconds the test keeps the daily job waiting once it waits.
HOLD = 2.0


class _DiaObjectLock:
    """Another client's transaction holding DiaObject against writes (reads go on), until `release`.

    PostgreSQL's ``EXCLUSIVE`` table lock: the visits of a run on the nightly
    table read DiaObject and write DiaObjectNightly, the daily job's merge
    writes DiaObject and waits for the lock.
    """

    def __init__(self, url: str) -> None:
        self.engine = sa.create_engine(normalize_url(url), poolclass=sa.pool.NullPool)
        self.conn = self.engine.connect()
        self.conn.execute(sa.text('LOCK TABLE "DiaObject" IN EXCLUSIVE MODE'))  # in the transaction begun here
        self.pid = self.conn.execute(sa.text("SELECT pg_backend_pid()")).scalar_one()
        self.held = True

    def wait_blocked(self, proc: subprocess.Popen, timeout: float = 300.0) -> None:
        """Wait until a session of the database waits for the lock; fail if ``proc`` ends or ``timeout`` passes."""
        deadline = time.monotonic() + timeout
        with self.engine.connect() as watcher:
            while not watcher.execute(sa.text("SELECT count(*) FROM pg_stat_activity "
                                              "WHERE :pid = ANY(pg_blocking_pids(pid))"), {"pid": self.pid}).scalar():
                watcher.rollback()
                if proc.poll() is not None:
                    pytest.fail(f"ap_proto ended (exit {proc.returncode}) before its daily job waited for DiaObject")
                if time.monotonic() > deadline:
                    pytest.fail(f"no daily job waited for DiaObject within {timeout:g} s")
                time.sleep(0.05)

    def release(self) -> None:
        """End the transaction (the lock with it) and disconnect; again is nothing."""
        if self.held:
            self.held = False
            self.conn.rollback()
            self.conn.close()
            self.engine.dispose()


@contextlib.contextmanager
def _paused_run(url: str, config: Path, sources: Path, log: Path, n: int) -> Iterator[tuple[subprocess.Popen,
                                                                                               _DiaObjectLock]]:
    """An open-loop run of ``n`` visits (`PAUSED`) whose first daily job waits for DiaObject when this yields.

    On exit the lock is released and the run killed if it still runs (the test waits for it before, if it may end).
    """
    lock = _DiaObjectLock(url)
    proc = None
    try:
        proc = subprocess.Popen(ap_proto_command(config, sources, log, "-n", n, *PAUSED), stderr=subprocess.PIPE,
                                text=True, start_new_session=True)
        lock.wait_blocked(proc)
        yield proc, lock
    finally:
        lock.release()
        if proc is not None and proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()


def _nightly_config(tmp_path: Path, url: str) -> Path:
    config = write_config(tmp_path / "l1db.cfg", url, dia_object_nightly=1, dia_object_index="baseline")
    assert create_l1_schema(["-c", str(config)]) == 0
    return config


def test_visits_after_the_daily_job_are_released_on_a_restarted_clock(pg_db_url: str, tmp_path: Path,
                                                                       sources: Path) -> None:
    """The daily job waits for the visits in flight, runs, and the clock restarts after it: the visits after it
    are released then, a cadence apart, and their latency holds nothing of the daily job's time."""
    config = _nightly_config(tmp_path, pg_db_url)
    log = tmp_path / "timing.jsonl"
    with _paused_run(pg_db_url, config, sources, log, 5) as (proc, lock):
        time.sleep(HOLD)
        lock.release()
        _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    parsed = parse_log(log)
    latencies = parsed.latencies.set_index("visit").sort_index()
    assert latencies.index.tolist() == [1, 2, 3, 4, 5]
    released, stored = latencies["released"], latencies["stored"]
    # The daily job's own record: before visit 4, the nightly rows of visits 1 to 3 merged, for as long as it waited.
    daily = parsed.timings[parsed.timings["op"] == "daily_merge"]
    assert daily["visit"].tolist() == [4] and daily["tile"].tolist() == [0]
    merged = parsed.timings.query("op == 'obj_nightly_insert' and visit <= 3")["rows"].sum()
    assert daily["rows"].iloc[0] == merged > 0
    pause = float(daily["real"].iloc[0])
    assert pause >= HOLD
    # Visits 1 to 3 on the first clock; visit 4 released once the daily job had ended, visit 5 a cadence later.
    assert (released.loc[[2, 3]] - released.loc[1]).tolist() == pytest.approx([0.2, 0.4], abs=1e-5)
    assert released.loc[4] >= stored.loc[[1, 2, 3]].max() + pause - 1e-3
    assert released.loc[5] - released.loc[4] == pytest.approx(0.2, abs=1e-5)
    # On the first clock visit 4 would have been due at 0.6 s, and its latency would hold the pause.
    assert released.loc[4] - released.loc[1] >= 0.6 + HOLD
    assert (latencies["latency"] == stored - released).all()
    assert latencies.loc[[4, 5], "queue_wait"].ge(0).all()
    result = verdict(parsed.latencies, 0.2)
    assert result.visits == 5 and result.line() in err
    check = check_database(config, [log])
    assert check.problems == [] and check.visits == 5 and check.unlogged == []
    # log2csv: each visit's own rows once (the merge's obj_insert is not visit 4's), the merge in its own columns.
    table = logs_to_table([log])[0].set_index("visit")
    own = parsed.timings[~parsed.timings["daily"]].query("op == 'obj_nightly_insert'").groupby("visit")["rows"].sum()
    assert table["obj_stored"].tolist() == own.loc[[1, 2, 3, 4, 5]].tolist()
    assert table["obj_insert_real"].isna().all() and table["obj_validity_update_real"].isna().all()
    assert table["obj_merged"].isna().tolist() == [True, True, True, False, True]
    assert table.loc[4, "obj_merged"] == merged
    assert table.loc[4, "daily_merge_real"] == pytest.approx(pause, abs=1e-6)
    assert table["daily_merge_real"].drop(index=4).isna().all()
    assert (table["n_tiles"] == 1).all() and (table["complete"] == 1).all()


@pytest.mark.parametrize("signals", [(signal.SIGINT,), (signal.SIGINT, signal.SIGTERM)], ids=["int", "int-term"])
def test_a_stop_signal_during_the_daily_job_ends_the_run_cleanly(signals: tuple[signal.Signals, ...],
                                                                 pg_db_url: str, tmp_path: Path,
                                                                 sources: Path) -> None:
    """A stop signal while the run waits for its daily job: no visit is released after it, every visit stored is
    whole and logged, and a resumed run stores exactly the visits missing.

    A first signal lets the daily job finish (the run ends as after a visit); a second one abandons it, rolled
    back or done, whichever it was: its record is in the log if and only if its rows were merged.
    """
    config = _nightly_config(tmp_path, pg_db_url)
    log = tmp_path / "timing.jsonl"
    with _paused_run(pg_db_url, config, sources, log, 6) as (proc, lock):
        for sig in signals:
            proc.send_signal(sig)
            time.sleep(0.2)
        lock.release()
        _, err = proc.communicate(timeout=300)
    assert "Traceback" not in err, err
    assert "interrupt: finishing the daily job (Ctrl-C again to abandon it)" in err, err
    if len(signals) == 1:
        assert proc.returncode == 0 and "3 visit(s) done (stopped by Ctrl-C" in err, err
    else:
        assert proc.returncode == 130 and "interrupted between visits" in err, err
    parsed = parse_log(log)
    assert parsed.malformed == 0
    # Visits 1 to 3 (before the daily job), whole, each tile logged once, and no later visit released.
    assert sorted(parsed.latencies["visit"]) == [1, 2, 3]
    assert sorted(parsed.timings.query("op == 'visit_insert'")["visit"]) == [1, 2, 3]
    check = check_database(config, [log])
    assert check.problems == [] and check.visits == 3 and check.unlogged == []
    nightly = read_table(config, "DiaObjectNightly", ["diaObjectId"])
    daily = parsed.timings[parsed.timings["op"] == "daily_merge"]
    if len(signals) == 1:
        assert len(daily) == 1 and len(nightly) == 0
    else:
        assert (len(daily), len(nightly) == 0) in ((0, False), (1, True))

    # Resumed: exactly the visits missing, each tile once.
    assert run_ap_proto(config, sources, log, "-n", "3", *PAUSED) == 0
    parsed = parse_log(log)
    timings = parsed.timings
    resumed = timings[(timings["run"] == parsed.provenance[-1]["run"]) & (timings["op"] == "visit_insert")]
    assert sorted(resumed["visit"]) == [4, 5, 6]
    check = check_database(config, [log])
    assert check.problems == [] and check.visits == 6 and check.unlogged == []


@pytest.mark.parametrize(("loop", "signals"), [(PAUSED, (signal.SIGINT, signal.SIGTERM, signal.SIGINT)),
                                               (("--daily-job-every", "3"), (signal.SIGINT,))],
                         ids=["open-int-term-int", "closed-int"])
def test_stop_signals_between_the_daily_jobs_commit_and_its_records(loop: tuple[str, ...],
                                                                    signals: tuple[signal.Signals, ...],
                                                                    tmp_path: Path, sources: Path,
                                                                    capsys: pytest.CaptureFixture,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """Stop signals arriving once the merge is committed, before its records are written: the merge is logged.

    The run's log writer hands the daily job's first record over only after the test has seen from the
    database that the merge is committed (the nightly table empty) and has sent this process ``signals``: a
    first one (the run ends after the daily job, in the closed loop too: the visit after it is not begun), a
    second one (which abandons what runs) and a third (which would cut a tile). None may separate the merge
    from its records: it ends logged, and the run ends after it.
    """
    config = _nightly_config(tmp_path, f"sqlite:///{tmp_path / 'l1db.sqlite3'}")
    log = tmp_path / "timing.jsonl"
    seen: list[int] = []  # the nightly rows left when the daily job's first record was handed over
    made = TimingLogWriter.sink

    def signalling_sink(writer: TimingLogWriter, visit: int, tile: int = 0, **kwargs: Any) -> TimingSink:
        # Only the loop's own work writes through a writer's sink (a tile's records are held: HeldRecords).
        sink = made(writer, visit, tile, **kwargs)

        def hand_over(record: TimingRecord) -> None:
            if not seen:
                seen.append(len(read_table(config, "DiaObjectNightly", ["diaObjectId"])))
                for sig in signals:
                    os.kill(os.getpid(), sig)
            sink(record)

        return hand_over

    monkeypatch.setattr(TimingLogWriter, "sink", signalling_sink)
    assert run_ap_proto(config, sources, log, "-n", "5", "--workers", "1", *loop) == (130 if len(signals) > 1 else 0)
    assert seen == [0]  # committed: the signals came in the gap
    err = capsys.readouterr().err
    assert "interrupt: finishing the daily job" in err and "Traceback" not in err
    parsed = parse_log(log)
    daily = parsed.timings[parsed.timings["op"] == "daily_merge"]
    merged = parsed.timings.query("op == 'obj_nightly_insert' and visit <= 3")["rows"].sum()
    assert daily["visit"].tolist() == [4] and daily["rows"].tolist() == [merged] and merged > 0
    assert sorted(parsed.timings.query("op == 'visit_insert'")["visit"]) == [1, 2, 3]
    check = check_database(config, [log])
    assert check.problems == [] and check.visits == 3 and check.unlogged == []
