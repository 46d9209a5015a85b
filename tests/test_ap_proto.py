"""ap_proto end to end on SQLite, PostgreSQL and MariaDB.

Short runs at low density on a small pointing patch, so that fields overlap
and the history reads have work to do.
"""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from ap_runs import PATCH, ap_proto_command, run_ap_proto, visits_logged, wait_for_visits
from astropy.time import Time
from conftest import catalog_fixture, write_config

from dia_sim.catalog import SourceCatalog
from dia_sim.cli.ap_proto import main
from dia_sim.field import field_tiles
from dia_sim.options import load_ap_config
from l1db import open_l1db
from l1db.scratch import read_table
from l1db.timing_log import parse_log

PER_VISIT = 400


sources = catalog_fixture(PER_VISIT)


def _ops(log: Path) -> pd.DataFrame:
    return parse_log(log).timings


def _db_counts(config: Path) -> dict[str, int]:
    db = open_l1db(config)
    try:
        return db.tableRowCount()
    finally:
        db.close()


def _visits(config: Path) -> pd.DataFrame:
    return read_table(config, "L1dbVisit", ["visitId", "tile", "visitTimeMjdTai", "nTiles"])


def _logged_rows(timings: pd.DataFrame, op: str) -> int:
    return int(timings.loc[timings["op"] == op, "rows"].sum())


def test_run_logs_match_database(db_url: str, make_config, sources: Path, tmp_path: Path) -> None:
    config = make_config(dia_object_index="last_object_table")
    log = tmp_path / "timing.jsonl"
    from l1db.cli.create_l1_schema import main as create

    assert create(["-c", str(config)]) == 0
    assert run_ap_proto(config, sources, log, "-n", "6", "--row-count-every", "3") == 0
    parsed = parse_log(log)
    timings = parsed.timings
    assert parsed.malformed == 0
    assert sorted(timings["visit"].unique().tolist()) == [1, 2, 3, 4, 5, 6]
    counts = _db_counts(config)
    # What the log says was stored is what the database holds.
    assert _logged_rows(timings, "src_insert") == counts["DiaSource"] > 0
    assert _logged_rows(timings, "obj_insert") == counts["DiaObject"]
    assert _logged_rows(timings, "fsrc_insert") == counts["DiaForcedSource"] > 0
    objects = read_table(config, "DiaObject", ["diaObjectId"])
    assert objects["diaObjectId"].nunique() == counts["DiaObjectLast"] > 0
    if db_url.startswith("cassandra"):
        assert _logged_rows(timings, "obj_last_upsert") == counts["DiaObject"]
        assert counts["DiaObjectLastToPartition"] == counts["DiaObjectLast"]
    else:
        assert (_logged_rows(timings, "obj_last_insert") - _logged_rows(timings, "obj_last_delete")
                == counts["DiaObjectLast"])
    assert counts["L1dbVisit"] == 6
    # Fields overlap on the patch: later visits read objects and history.
    assert _logged_rows(timings, "obj_select") > 0 and _logged_rows(timings, "src_select") > 0
    # The row-count records are the server's estimates (no full scan), of every table, said so.
    assert [c["visit"] for c in parsed.counts] == [3, 6]
    assert [c["exact"] for c in parsed.counts] == [False, False]
    assert set(parsed.counts[-1]["tables"]) == set(counts)
    # Provenance: config, backend, versions, machine, seed.
    prov = parsed.provenance[0]
    if db_url.startswith("cassandra"):
        assert prov["backend"] == "cassandra" and prov["config"]["cassandra"]["replication_factor"] == 1
    else:
        assert prov["backend"] == sa.make_url(db_url).get_backend_name()
        assert prov["config"]["l1db"]["dia_object_index"] == "last_object_table"
    assert prov["config"]["ap_proto"]["seed"] == 1 and prov["seed"] == 1
    assert prov["machine"]["cpus"] >= 1 and prov["server_version"]
    assert prov["per_visit"] == pytest.approx(PER_VISIT, rel=0.05)
    # Every operation logged is a documented one; every visit logged each of these once.
    from l1db.timing_log import OPERATIONS

    assert set(timings["op"]) <= set(OPERATIONS)
    per_visit = timings.groupby(["visit", "op"]).size()
    for op in ("sim", "sim_detect", "sim_associate", "sim_rows", "obj_select", "src_select", "fsrc_select",
               "store", "visit"):
        assert (per_visit.xs(op, level="op") == 1).all(), op
    # One connection, made by the first visit's tile, timed apart from its visit (no back-pressure here).
    connects = timings[timings["op"] == "connect"]
    assert connects[["visit", "tile"]].values.tolist() == [[1, 0]]
    assert 0 < connects["real"].iloc[0] and connects["wait"].iloc[0] == 0 and connects["resent"].iloc[0] == 0


def test_sources_per_visit_within_poisson_tolerance(sources: Path, tmp_path: Path) -> None:
    from conftest import write_config

    config = write_config(tmp_path / "l1db.cfg", f"sqlite:///{tmp_path}/l1db.sqlite3")
    from l1db.cli.create_l1_schema import main as create

    assert create(["-c", str(config)]) == 0
    log = tmp_path / "timing.jsonl"
    n_visits = 12
    assert run_ap_proto(config, sources, log, "-n", str(n_visits), "--sky", "south") == 0
    detections = _ops(log).query("op == 'sim_detect'")["rows"].to_numpy()
    # Catalogue sources in a field are Poisson(PER_VISIT) too: the sum of three Poissons.
    expected = PER_VISIT + 100 + 10
    mean = detections.mean()
    assert abs(mean - expected) < 4 * np.sqrt(expected / n_visits)
    assert detections.std() < 4 * np.sqrt(expected)


def test_tiles_cover_the_field_exactly_once(sources: Path, tmp_path: Path) -> None:
    """With no noise and every source detected, a visit's DiaSources are the field's catalogue sources."""
    from conftest import write_config

    config = write_config(tmp_path / "l1db.cfg", f"sqlite:///{tmp_path}/l1db.sqlite3")
    from l1db.cli.create_l1_schema import main as create

    assert create(["-c", str(config)]) == 0
    log = tmp_path / "timing.jsonl"
    assert run_ap_proto(config, sources, log, "--false-per-visit", "0", "--transients-per-visit", "0",
                        "--divide", "2", "-n", "2") == 0
    visits = _visits(config)
    assert sorted(visits.groupby("visitId")["tile"].apply(sorted).tolist()) == [[0, 1, 2, 3]] * 2
    assert (visits["nTiles"] == 4).all()
    catalog = SourceCatalog.load(sources)
    stored = read_table(config, "DiaSource", ["visit", "diaSourceId"])
    assert stored["diaSourceId"].is_unique
    prov = parse_log(log).provenance[0]
    assert prov["config"]["ap_proto"]["divide"] == 2
    from dia_sim.cli.ap_proto import _options, _parser
    from dia_sim.visit_plan import plan_visit

    options = _options(_parser().parse_args(["--pointing-area", PATCH, "--divide", "2", str(sources)]),
                       load_ap_config(config))
    for visit_id, group in stored.groupby("visit"):
        row = visits[visits["visitId"] == visit_id].iloc[0]
        plan = plan_visit(int(visit_id), Time(row["visitTimeMjdTai"], format="mjd", scale="tai"), options)
        field = field_tiles(plan.ra, plan.dec, options.fov, 1)[0]
        ra, dec, _ = catalog.sources_in_region(field)
        assert len(group) == len(ra) > 0


def test_no_update_writes_nothing(db_url: str, make_config, sources: Path, tmp_path: Path) -> None:
    config = make_config()
    from l1db.cli.create_l1_schema import main as create

    assert create(["-c", str(config)]) == 0
    log = tmp_path / "timing.jsonl"
    assert run_ap_proto(config, sources, log, "-n", "2") == 0
    before = _db_counts(config)
    assert run_ap_proto(config, sources, log, "-n", "3", "--no-update") == 0
    assert _db_counts(config) == before
    timings = _ops(log)
    last_run = parse_log(log).provenance[-1]["run"]
    ops = set(timings.loc[timings["run"] == last_run, "op"])
    assert "obj_select" in ops and "src_select" in ops
    assert not ops & {"store", "obj_insert", "src_insert", "fsrc_insert", "visit_insert"}


def test_resume_after_kill(db_url: str, make_config, sources: Path, tmp_path: Path) -> None:
    config = make_config(dia_object_index="baseline")
    from l1db.cli.create_l1_schema import main as create

    assert create(["-c", str(config)]) == 0
    log = tmp_path / "timing.jsonl"
    total = 8
    proc = subprocess.Popen(ap_proto_command(config, sources, log, "-n", total), stderr=subprocess.PIPE, text=True)
    # Kill it hard once a few visits are in (mid-visit, most likely).
    try:
        wait_for_visits(log, 3, 120, proc)
    finally:
        proc.send_signal(signal.SIGKILL)
    proc.wait()
    done = len(_visits(config))
    assert 3 <= done < total
    # Resume: the next run continues after the last stored visit.
    assert run_ap_proto(config, sources, log, "-n", str(total - done)) == 0
    visits = _visits(config)
    assert sorted(visits["visitId"].tolist()) == list(range(1, total + 1))
    counts = _db_counts(config)
    stored = read_table(config, "DiaSource", ["visit", "diaSourceId"])
    assert stored["diaSourceId"].is_unique
    per_visit = stored.groupby("visit").size().to_dict()
    assert sorted(per_visit) == list(range(1, total + 1))
    assert sum(per_visit.values()) == counts["DiaSource"]
    # The log counts each stored row once: a store's records are written only
    # after its commit, so the killed visit's rolled-back rows are not in it.
    # (A kill in the instant between a commit and the writing of its records
    # leaves that one visit stored but unlogged.)
    timings = _ops(log)
    logged = timings[timings["op"] == "src_insert"].groupby("visit")["rows"].sum()
    for visit, rows in logged.items():
        assert per_visit[visit] == rows, visit
    assert len(set(per_visit) - set(logged.index)) <= 1


def test_sigint_finishes_the_visit_and_resumes(sources: Path, tmp_path: Path) -> None:
    from conftest import write_config

    config = write_config(tmp_path / "l1db.cfg", f"sqlite:///{tmp_path}/l1db.sqlite3")
    from l1db.cli.create_l1_schema import main as create

    assert create(["-c", str(config)]) == 0
    log = tmp_path / "timing.jsonl"
    proc = subprocess.Popen(ap_proto_command(config, sources, log, "-n", 200), stderr=subprocess.PIPE, text=True)
    try:
        wait_for_visits(log, 1, 120, proc)
    except BaseException:
        proc.kill()
        raise
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert "Traceback" not in err and "stopped by Ctrl-C" in err
    visits = _visits(config)
    n = len(visits)
    assert 1 <= n < 200
    assert _logged_rows(_ops(log), "src_insert") == _db_counts(config)["DiaSource"]


@pytest.mark.parametrize("divide", [1, 2])
def test_sigterm_finishes_the_visit_like_a_first_ctrl_c(divide: int, sources: Path, tmp_path: Path) -> None:
    """SIGTERM (a scheduler stopping the job: to the whole process group) ends the current visit, exit 0, one line."""
    import os

    config = write_config(tmp_path / "l1db.cfg", f"sqlite:///{tmp_path}/l1db.sqlite3")
    from l1db.cli.create_l1_schema import main as create

    assert create(["-c", str(config)]) == 0
    log = tmp_path / "timing.jsonl"
    command = ap_proto_command(config, sources, log, "-n", 1000, "--divide", divide)
    proc = subprocess.Popen(command, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        wait_for_visits(log, 1, 120, proc)
    except BaseException:
        os.killpg(proc.pid, signal.SIGKILL)
        raise
    os.killpg(proc.pid, signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    lines = err.splitlines()
    assert len(lines) == 1 and "stopped by SIGTERM" in lines[0] and "run again to resume" in lines[0], err
    # Every tile of every visit begun was finished, stored and logged: nothing half done.
    visits = _visits(config)
    assert 1 <= visits["visitId"].nunique() < 1000
    assert (visits.groupby("visitId").size() == divide**2).all()
    timings = _ops(log)
    assert _logged_rows(timings, "src_insert") == _db_counts(config)["DiaSource"]
    assert set(timings["visit"]) == set(visits["visitId"])
    # It resumes at the next visit.
    assert run_ap_proto(config, sources, log, "-n", "1", "--divide", str(divide)) == 0
    assert _visits(config)["visitId"].max() == visits["visitId"].max() + 1


#: Tiles of a visit in the second-SIGTERM test: a visit long enough (9 tiles of 30-50 ms each on a fast
#: machine) that the second signal, sent after the first has been handled, still finds it unfinished.
_DIVIDE = 3
_TILES = _DIVIDE**2


@pytest.mark.parametrize("workers", [1, 2])
def test_second_sigterm_logs_every_tile_it_keeps(workers: int, sources: Path, tmp_path: Path) -> None:
    """A second SIGTERM abandons the visit: every tile kept is stored and logged, and the message names them.

    The tiles being stored finish and are logged, on a pool of workers and in ap_proto's own
    process (a pool of one, where a signal falling between a tile's commit and its records once
    left a tile stored without them). The two signals are sent a moment apart (the first must have
    been handled, or the kernel merges them); where the visit ended in that moment (the run then
    stops after it, and the second signal finds nothing to abandon), the run is tried again, with a
    shorter moment, up to 3 times.
    """
    import os
    import re

    config = write_config(tmp_path / "l1db.cfg", f"sqlite:///{tmp_path}/l1db.sqlite3")
    from l1db.cli.create_l1_schema import main as create

    assert create(["-c", str(config)]) == 0
    log = tmp_path / "timing.jsonl"
    command = ap_proto_command(config, sources, log, "-n", 1000, "--divide", _DIVIDE, "--workers", workers)
    for pause in (0.05, 0.02, 0.01):
        logged = visits_logged(log)
        proc = subprocess.Popen(command, stderr=subprocess.PIPE, text=True, start_new_session=True)
        try:
            wait_for_visits(log, logged + _TILES + 1, 120, proc)  # a visit's tiles, and a tile of the next
        except BaseException:
            os.killpg(proc.pid, signal.SIGKILL)
            raise
        os.killpg(proc.pid, signal.SIGTERM)
        time.sleep(pause)  # the first handled, the visit not yet finished
        os.killpg(proc.pid, signal.SIGTERM)
        _, err = proc.communicate(timeout=120)
        if "stopped by SIGTERM after finishing the current visit" not in err:
            break
        # Too late: the visit ended before the second signal (which then ended the process, or found the
        # run closing). Nothing was abandoned; the next attempt resumes after the stored visits.
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "rolled back" not in err, err
    last = err.strip().splitlines()[-1]
    assert last.startswith("ap_proto: interrupted; visit ") and last.endswith("Run again to resume."), err
    # The log accounts for every tile in the database: its store (one visit_insert a tile) and its rows.
    visits = _visits(config)
    timings = _ops(log)
    stored_tiles = visits.groupby("visitId")["tile"].apply(sorted).to_dict()
    logged_tiles = timings[timings["op"] == "visit_insert"].groupby("visit")["tile"].apply(sorted).to_dict()
    assert stored_tiles == logged_tiles
    stored = read_table(config, "DiaSource", ["visit"]).groupby("visit").size().to_dict()
    logged = timings[timings["op"] == "src_insert"].groupby("visit")["rows"].sum().to_dict()
    assert stored == logged
    # The message says what was kept: the abandoned visit's tiles in the database.
    abandoned = int(visits["visitId"].max())
    kept = re.search(rf"visit (\d+) (?:abandoned: (\d+) of its {_TILES} tiles kept, stored and logged \(([\d, ]+)\)"
                     r"|abandoned: none of its|completed after all)", last)
    assert kept is not None, last
    if kept.group(3):
        assert int(kept.group(1)) == abandoned
        assert [int(t) for t in kept.group(3).split(",")] == stored_tiles[abandoned]
    elif "none" in last:
        assert int(kept.group(1)) == abandoned + 1
    else:
        assert int(kept.group(1)) == abandoned and stored_tiles[abandoned] == list(range(_TILES))
    # The resume completes the visit, and the log still equals the database.
    assert run_ap_proto(config, sources, log, "-n", "1", "--divide", str(_DIVIDE)) == 0
    visits = _visits(config)
    assert (visits.groupby("visitId").size() == _TILES).all()
    timings = _ops(log)
    assert (read_table(config, "DiaSource", ["visit"]).groupby("visit").size().to_dict()
            == timings[timings["op"] == "src_insert"].groupby("visit")["rows"].sum().to_dict())


def test_bad_input_is_one_line(sources: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from conftest import write_config

    good = write_config(tmp_path / "l1db.cfg", f"sqlite:///{tmp_path}/l1db.sqlite3")
    cases = []
    # No schema yet.
    cases.append((["-c", str(good), str(sources)], "create_l1_schema"))
    # Missing and malformed sources files.
    cases.append((["-c", str(good), str(tmp_path / "nope.npy")], "not found"))
    bad = tmp_path / "bad.npy"
    np.save(bad, np.zeros((3, 3)))
    cases.append((["-c", str(good), str(bad)], "bad.npy"))
    # Unreachable database.
    unreachable = write_config(tmp_path / "pg.cfg", "postgresql://nobody:pw@127.0.0.1:1/x")
    cases.append((["-c", str(unreachable), str(sources)], "cannot connect"))
    # Bad option values.
    cases.append((["-c", str(good), "--pointing-area", "1,2,3", str(sources)], "pointing"))
    cases.append((["-c", str(good), "--detection-fraction", "2", str(sources)],
                  "--detection-fraction: bad value '2'; allowed: a number from 0 to 1"))
    for argv, words in cases:
        assert main(["-l", str(tmp_path / "t.jsonl"), "--no-progress", *argv]) == 1, argv
        err = capsys.readouterr().err
        assert err.startswith("ap_proto: error") and err.count("\n") == 1, err
        assert words in err and "Traceback" not in err and "pw@" not in err


def test_nightly_table_merged_by_the_daily_job(make_sql_config, sources: Path, tmp_path: Path) -> None:
    config = make_sql_config(dia_object_nightly=1)
    from l1db.cli.create_l1_schema import main as create

    assert create(["-c", str(config)]) == 0
    log = tmp_path / "timing.jsonl"
    assert run_ap_proto(config, sources, log, "-n", "7", "--daily-job-every", "3") == 0
    timings = _ops(log)
    merges = timings[timings["op"] == "daily_merge"]
    assert merges["visit"].tolist() == [4, 7]
    counts = _db_counts(config)
    stored = _logged_rows(timings, "obj_nightly_insert")
    # Visits 1-3 and 4-6 were merged; visit 7's versions wait in the nightly table.
    assert counts["DiaObject"] + counts["DiaObjectNightly"] == stored
    assert counts["DiaObjectNightly"] == int(timings.query("op == 'obj_nightly_insert' and visit == 7")["rows"].sum())
    assert _logged_rows(timings, "daily_merge") == counts["DiaObject"]


def test_same_seed_same_data_on_cassandra_and_sqlite(make_cassandra_config, sources: Path, tmp_path: Path) -> None:
    """The backend changes the timings, never the data: same counts per visit, same rows stored."""
    from conftest import write_config

    from l1db.cli.create_l1_schema import main as create

    configs = {
        "sqlite": write_config(tmp_path / "sqlite.cfg", f"sqlite:///{tmp_path}/l1db.sqlite3",
                               dia_object_index="last_object_table"),
        "cassandra": make_cassandra_config(),
    }
    rows = {}
    for name, config in configs.items():
        assert create(["-c", str(config)]) == 0
        log = tmp_path / f"{name}.jsonl"
        assert run_ap_proto(config, sources, log, "-n", "8") == 0
        timings = _ops(log)
        rows[name] = timings.groupby(["visit", "op"])["rows"].sum()
    ops = ["sim_detect", "obj_select", "sim_associate", "src_select", "fsrc_select", "sim_rows", "obj_insert",
           "src_insert", "fsrc_insert"]
    for op in ops:
        pd.testing.assert_series_equal(rows["sqlite"].xs(op, level="op"), rows["cassandra"].xs(op, level="op"),
                                       obj=op)
    # Later visits read history: the comparison is not of empty reads.
    assert rows["cassandra"].xs("src_select", level="op").sum() > 0
    columns = ["diaSourceId", "diaObjectId", "visit", "ra", "dec", "psfFlux"]
    stored = {name: read_table(config, "DiaSource", columns).sort_values("diaSourceId").reset_index(drop=True)
              for name, config in configs.items()}
    pd.testing.assert_frame_equal(stored["sqlite"], stored["cassandra"], check_dtype=False)


def test_resumed_runs_give_bit_identical_times(sql_backend: str, tmp_path: Path, sources: Path,
                                               capsys: pytest.CaptureFixture) -> None:
    """Each visit's time comes from its ID: 3 + 3 + 4 visits in three runs store the bits of one 10-visit run."""
    from conftest import create_test_database

    from l1db.cli.create_l1_schema import main as create

    # Three visits before dawn, then the next night: the resume crosses the day.
    start = ["--start-time", "2026-01-02T05:57:45.123456", "--start-visit-id", "101"]
    stored = {}
    for name, chunks in (("whole", [10]), ("resumed", [3, 3, 4])):
        url, drop = create_test_database(sql_backend, tmp_path)
        try:
            config = write_config(tmp_path / f"{name}.cfg", url, dia_object_index="baseline")
            assert create(["-c", str(config)]) == 0
            for n in chunks:
                assert run_ap_proto(config, sources, tmp_path / f"{name}.jsonl", "-n", str(n), *start) == 0
            stored[name] = (
                _visits(config).sort_values("visitId").reset_index(drop=True),
                read_table(config, "DiaObject", ["diaObjectId", "validityStartMjdTai"])
                .sort_values(["diaObjectId", "validityStartMjdTai"]).reset_index(drop=True),
                read_table(config, "DiaSource", ["diaSourceId", "midpointMjdTai"])
                .sort_values("diaSourceId").reset_index(drop=True),
            )
            if name == "resumed":
                # Another interval than the database's is refused before anything is written.
                log = tmp_path / "other.jsonl"
                capsys.readouterr()
                assert run_ap_proto(config, sources, log, "-n", "1", "-i", "30") == 1
                err = capsys.readouterr().err
                assert err.count("\n") == 1 and "--interval" in err and not log.exists()
        finally:
            drop()
    for whole, resumed in zip(stored["whole"], stored["resumed"]):
        pd.testing.assert_frame_equal(whole, resumed, check_exact=True)
    visits = stored["whole"][0]
    times = Time(visits["visitTimeMjdTai"].to_numpy(), format="mjd", scale="tai").isot.tolist()
    assert visits["visitId"].tolist() == list(range(101, 111))
    assert times[:4] == ["2026-01-02T05:57:45.123", "2026-01-02T05:58:30.123", "2026-01-02T05:59:15.123",
                         "2026-01-02T20:00:00.000"]


def test_first_visit_at_the_documented_start_time(tmp_path: Path, sources: Path) -> None:
    from l1db.cli.create_l1_schema import main as create

    config = write_config(tmp_path / "l1db.cfg", f"sqlite:///{tmp_path}/l1db.sqlite3")
    assert create(["-c", str(config)]) == 0
    assert run_ap_proto(config, sources, tmp_path / "t.jsonl", "-n", "2") == 0
    visits = _visits(config).sort_values("visitId")
    times = Time(visits["visitTimeMjdTai"].to_numpy(), format="mjd", scale="tai")
    assert times.isot.tolist() == ["2026-01-01T20:00:00.000", "2026-01-01T20:00:45.000"]
    assert visits["visitTimeMjdTai"].iloc[0] == Time("2026-01-01T20:00:00", scale="tai").mjd


def test_a_column_dropped_is_refused_before_any_visit(tmp_path: Path, sources: Path,
                                                      capsys: pytest.CaptureFixture) -> None:
    """A table that lost a column is refused when the database is opened: one line, exit 1, nothing stored."""
    from l1db.cli.create_l1_schema import main as create

    config = write_config(tmp_path / "l1db.cfg", f"sqlite:///{tmp_path}/l1db.sqlite3")
    assert create(["-c", str(config)]) == 0
    engine = sa.create_engine(f"sqlite:///{tmp_path}/l1db.sqlite3")
    with engine.begin() as conn:
        conn.exec_driver_sql('ALTER TABLE "DiaSource" DROP COLUMN "apFlux"')
    engine.dispose()
    capsys.readouterr()
    assert run_ap_proto(config, sources, tmp_path / "t.jsonl", "-n", "1") == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert "table DiaSource has 103 columns, the table definitions give it 104" in err
    assert _visits(config).empty


def test_error_not_worth_a_retry_is_recorded_and_stops_at_once(tmp_path: Path, sources: Path,
                                                                capsys: pytest.CaptureFixture) -> None:
    """A statement the database refuses is no connection problem: one failure record (no retry), one line,
    exit 1, at once. (A trigger that writes to a table that is not there: a column dropped would be
    refused when the database is opened, before any visit, by the schema check.)"""
    from l1db.cli.create_l1_schema import main as create

    config = write_config(tmp_path / "l1db.cfg", f"sqlite:///{tmp_path}/l1db.sqlite3", retry_wait=30)
    assert create(["-c", str(config)]) == 0
    log = tmp_path / "t.jsonl"
    assert run_ap_proto(config, sources, log, "-n", "1") == 0
    engine = sa.create_engine(f"sqlite:///{tmp_path}/l1db.sqlite3")
    with engine.begin() as conn:
        conn.exec_driver_sql('CREATE TRIGGER "refuse" BEFORE INSERT ON "DiaSource" '
                             'BEGIN INSERT INTO "NoSuchTable" VALUES (1); END')
    engine.dispose()
    capsys.readouterr()
    start = time.monotonic()
    assert run_ap_proto(config, sources, log, "-n", "2") == 1
    assert time.monotonic() - start < 30  # no wait for a retry
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no such table: main.NoSuchTable" in err and "Traceback" not in err, err
    failures = parse_log(log).failures
    assert failures[["visit", "error", "attempt", "retry"]].to_dict("records") == [
        {"visit": 2, "error": "OperationalError", "attempt": 1, "retry": False}]
    assert failures["op"].iloc[0] == "store"
    assert _visits(config)["visitId"].tolist() == [1]
