"""Time compression: the derived cadence, the schedule with days between nights, and ap_proto with it."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from astropy.time import Time
from conftest import catalog_fixture, write_config

from dia_sim.cli.ap_proto import main
from dia_sim.compression import DAYS_PER_YEAR, derive_cadence, field_area_deg2
from dia_sim.pointing import centre_area_deg2, random_pointings
from dia_sim.schedule import VisitSchedule, night_number, visit_mjd
from l1db.cli.create_l1_schema import main as create_l1_schema
from l1db.scratch import read_table
from l1db.timing_log import parse_log

PATCH = (0.0, 7.0, -30.0, -20.0)


@pytest.mark.parametrize("k, patch", [(10.0, PATCH), (80.0, None), (20.0, (0.0, 12.0, -34.0, -20.0)),
                                      (3.0, (350.0, 10.0, -40.0, -20.0))])
def test_cadence_gives_k_observations_a_year(k: float, patch) -> None:
    area = centre_area_deg2("south", patch, 3.5)
    cadence = derive_cadence(k, area, fov_deg=3.5)
    assert cadence.achieved_per_year == pytest.approx(k, rel=0.02)
    assert cadence.visits_per_year == pytest.approx(
        cadence.visits_per_night * DAYS_PER_YEAR / cadence.days_between_nights)
    # Exactly visits_per_night visits fit in a 10-hour night at the interval.
    assert math.ceil(36000.0 / cadence.interval) == cadence.visits_per_night
    record = cadence.as_dict(window_days=360.0)
    assert record["visits_to_fill_window"] == cadence.visits_to_fill(360.0)
    assert "K = " in cadence.describe(360.0) and "fills after" in cadence.describe(360.0)


def test_a_point_inside_the_patch_is_observed_k_times_a_year() -> None:
    """Monte Carlo over the real pointing generator: observations of the patch's centre per simulated year."""
    k = 12.0
    cadence = derive_cadence(k, centre_area_deg2("south", PATCH, 3.5), fov_deg=3.5)
    n = 40_000
    ra, dec = random_pointings(np.random.default_rng(5), n, area=PATCH, fov_deg=3.5)
    centre = np.radians([3.5, -25.0])
    cos_sep = (np.sin(centre[1]) * np.sin(np.radians(dec))
               + np.cos(centre[1]) * np.cos(np.radians(dec)) * np.cos(np.radians(ra) - centre[0]))
    fraction = np.count_nonzero(cos_sep >= np.cos(np.radians(1.75))) / n
    assert fraction * cadence.visits_per_year == pytest.approx(k, rel=0.05)


def test_bad_cadence_requests() -> None:
    with pytest.raises(ValueError, match="> 0"):
        derive_cadence(0.0, 100.0)
    with pytest.raises(ValueError, match="narrower than a field"):
        derive_cadence(10.0, centre_area_deg2("south", (0.0, 10.0, -21.0, -20.0), 3.5))
    assert field_area_deg2(3.5) == pytest.approx(9.6204, abs=1e-4)


def test_days_between_nights_in_the_schedule() -> None:
    start = Time("2026-01-01T20:00:00", scale="tai").mjd
    mjd = visit_mjd(start, np.arange(6), interval_s=18000.0, night_step=17)
    np.testing.assert_allclose((mjd - start) * 86400.0,
                               [0, 18000, 17 * 86400, 17 * 86400 + 18000, 34 * 86400, 34 * 86400 + 18000], atol=1e-4)
    schedule = VisitSchedule(1, start, 18000.0, night_step=17)
    assert [schedule.night(schedule.mjd(v)) for v in range(1, 7)] == [night_number(m) for m in mjd]
    assert len({schedule.night(schedule.mjd(v)) for v in range(1, 7)}) == 3
    # A whole night's worth of interval: one visit a night, each in its own night.
    one = VisitSchedule(1, start, 36000.0)
    assert [one.night(one.mjd(v)) - one.night(one.mjd(1)) for v in range(1, 4)] == [0, 1, 2]
    with pytest.raises(ValueError, match="days between nights"):
        visit_mjd(start, 1, night_step=0)


sources = catalog_fixture(300)


def _run(config: Path, sources: Path, log: Path, *extra: str) -> int:
    return main(["-c", str(config), "-l", str(log), "--pointing-area", "0,7,-30,-20", "--false-per-visit", "50",
                 "--transients-per-visit", "5", "--no-progress", *extra, str(sources)])


def test_compressed_run_schedule_daily_job_provenance_and_resume(tmp_path: Path, sources: Path,
                                                                 capsys: pytest.CaptureFixture) -> None:
    config = write_config(tmp_path / "l1db.cfg", f"sqlite:///{tmp_path}/l1db.sqlite3", dia_object_nightly=1)
    assert create_l1_schema(["-c", str(config)]) == 0
    log = tmp_path / "t.jsonl"
    assert _run(config, sources, log, "-n", "3", "--observations-per-year", "10") == 0
    err = capsys.readouterr().err
    assert "time compression: K = 10" in err and "2 visit(s) a night" in err and "every 17 day(s)" in err
    # Resumed: the schedule continues from the first stored visit.
    assert _run(config, sources, log, "-n", "3", "--observations-per-year", "10") == 0
    visits = read_table(config, "L1dbVisit", ["visitId", "visitTimeMjdTai"]).sort_values("visitId")
    days = (visits["visitTimeMjdTai"].to_numpy() - visits["visitTimeMjdTai"].iloc[0])
    np.testing.assert_allclose(days, [0, 18000 / 86400, 17, 17 + 18000 / 86400, 34, 34 + 18000 / 86400], atol=1e-8)
    parsed = parse_log(log)
    # Between nights (5 h apart within a night, 17 days between nights): the nightly merge, by night, not by gap.
    merges = parsed.timings[parsed.timings["op"] == "daily_merge"]["visit"].tolist()
    assert merges == [3, 5]
    compression = parsed.provenance[0]["time_compression"]
    assert compression["days_between_nights"] == 17 and compression["visits_per_night"] == 2
    assert compression["visits_to_fill_window"] == 44
    assert parsed.provenance[0]["config"]["ap_proto"]["interval"] == 18000.0
    json.dumps(parsed.provenance[0])
    # Another cadence on the same database is refused in one line.
    assert _run(config, sources, log, "-n", "1", "--observations-per-year", "20") == 1
    assert "cadence the database was made with" in capsys.readouterr().err


def test_compression_excludes_an_explicit_interval(tmp_path: Path, sources: Path,
                                                   capsys: pytest.CaptureFixture) -> None:
    config = write_config(tmp_path / "l1db.cfg", f"sqlite:///{tmp_path}/l1db.sqlite3")
    assert _run(config, sources, tmp_path / "t.jsonl", "--observations-per-year", "10", "-i", "60") == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--interval and --observations-per-year exclude each other" in err
