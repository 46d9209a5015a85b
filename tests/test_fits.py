"""Tests of dia_sim.fits (history depth, plateau slopes, survey-year projection) on synthetic CSVs of known slopes."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from dia_sim.cli.plot_timing import main as plot_timing
from dia_sim.fits import (
    SURVEY_YEAR_VISITS,
    fit_operations,
    history_months,
    line_fit,
    project,
    project_run,
    slopes_before_after,
    window_fill_visit,
)
from dia_sim.log2csv import (
    CSV_COLUMNS,
    provenance_path,
    read_csv,
    write_csv,
    write_provenance,
)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

#: A compressed cadence: 2 visits a night (5 h apart), a night every 17 days; 12 x 30-day windows.
CADENCE = {"interval": 18000.0, "days_between_nights": 17, "start_time": "2026-01-01T20:00:00"}
#: Visit 1 is the first; visit 1 + 44 is 22 nights x 17 days = 374 days later, the first past 360 days.
FILL = 45
#: Known coefficients of the synthetic run.
SRC_PER_VISIT = 3000.0       # src_read grows by this per visit until the window is full, then stays
SRC_SECONDS_PER_ROW = 2e-5   # src_select = 0.1 + this * src_read
STORE_SLOPE = 1e-3           # store = 0.5 + this * visit
FSRC_ROWS = 500.0


def _provenance(compressed: bool = True) -> list[dict]:
    record = {
        "record": "provenance", "format": 1, "run": "r1", "time": "2026-11-30T00:00:00+00:00",
        "backend": "postgresql",
        "config": {"l1db": {"read_sources_months": 12, "read_forced_sources_months": 12}, "ap_proto": CADENCE},
    }
    if compressed:
        record["time_compression"] = {"observations_per_year": 10.0, "achieved_per_year": 10.0}
    return [record]


def synthetic_table(n: int = 150, noise: float = 0.0, seed: int = 1) -> pd.DataFrame:
    """A per-visit table whose reads level off at visit `FILL` and whose times follow the known lines."""
    rng = np.random.default_rng(seed)
    visits = np.arange(1, n + 1)
    src = SRC_PER_VISIT * np.minimum(visits, FILL)
    table = pd.DataFrame({c: np.nan for c in CSV_COLUMNS}, index=range(n))
    table["run"] = "r1"
    table["visit"] = visits
    table["n_tiles"] = 1
    table["complete"] = 1
    table["failures"] = 0
    table["lost_real"] = 0.0
    table["obj_read"] = 10_000
    table["src_read"] = src
    table["fsrc_read"] = FSRC_ROWS
    table["obj_select_real"] = 0.2 + rng.normal(0, noise, n)
    table["src_select_real"] = 0.1 + SRC_SECONDS_PER_ROW * src + rng.normal(0, noise, n)
    table["fsrc_select_real"] = 0.05 + 1e-5 * FSRC_ROWS + rng.normal(0, noise, n)
    table["store_real"] = 0.5 + STORE_SLOPE * visits + rng.normal(0, noise, n)
    table["sim_real"] = 0.03
    table["sum_select_real"] = table["obj_select_real"] + table["src_select_real"] + table["fsrc_select_real"]
    table["visit_real"] = table["sum_select_real"] + table["store_real"] + table["sim_real"]
    return table


def _write(tmp_path: Path, table: pd.DataFrame, name: str = "run", compressed: bool = True) -> Path:
    csv = tmp_path / f"{name}.csv"
    write_csv(table, csv)
    write_provenance(provenance_path(csv), _provenance(compressed))
    return csv


def test_history_months_follow_the_cadence() -> None:
    months = history_months(np.arange(1, 6), _provenance())
    # Visits 1, 2 in night 0 (5 h apart), 3, 4 seventeen days later, 5 thirty-four days later.
    expected_days = np.array([0.0, 18000 / 86400, 17.0, 17.0 + 18000 / 86400, 34.0])
    np.testing.assert_allclose(months * 30.0, expected_days, atol=1e-6)


def test_window_fill_visit() -> None:
    assert window_fill_visit(np.arange(1, 151), _provenance()) == FILL
    assert math.isnan(window_fill_visit(np.arange(1, 30), _provenance()))
    # Without a cadence in the provenance: 45 s apart, 800 a night, every night (360 nights = 288,000 visits).
    assert math.isnan(window_fill_visit(np.arange(0, 1000), []))
    assert window_fill_visit(np.arange(0, 288_001), []) == 288_000


def test_slopes_before_and_after_the_window_fills() -> None:
    table = synthetic_table()
    slopes = slopes_before_after(table, ("src_select", "store", "obj_select"), FILL)
    before, after = slopes["src_select"]
    assert before == pytest.approx(SRC_PER_VISIT * SRC_SECONDS_PER_ROW, rel=1e-9)
    assert after == pytest.approx(0.0, abs=1e-12)
    assert slopes["store"] == pytest.approx((STORE_SLOPE, STORE_SLOPE), rel=1e-9)
    assert slopes["obj_select"] == pytest.approx((0.0, 0.0), abs=1e-12)


def test_fits_recover_known_slopes_with_noise() -> None:
    fits = fit_operations(synthetic_table(n=400, noise=0.01, seed=3))
    assert fits["src_select"].by_rows.slope == pytest.approx(SRC_SECONDS_PER_ROW, rel=0.03)
    assert fits["src_select"].by_rows.intercept == pytest.approx(0.1, abs=0.01)
    assert fits["store"].by_visit.slope == pytest.approx(STORE_SLOPE, rel=0.03)
    assert fits["store"].by_rows is None  # no row column of its own
    assert line_fit(np.ones(5), np.arange(5.0)) is None


def test_projection_to_a_survey_year() -> None:
    fits = fit_operations(synthetic_table())
    rows = 1_000_000.0
    frame = project(fits, SURVEY_YEAR_VISITS, {"src_read": rows}, nodes=(1, 4), growth="linear").set_index("op")
    src = 0.1 + SRC_SECONDS_PER_ROW * rows
    store = 0.5 + STORE_SLOPE * SURVEY_YEAR_VISITS
    assert frame.loc["src_select", "N=1"] == pytest.approx(src, rel=1e-9)
    assert frame.loc["src_select", "N=4"] == pytest.approx(src / 4, rel=1e-9)
    assert frame.loc["store", "N=1"] == frame.loc["store", "N=4"] == pytest.approx(store, rel=1e-9)
    assert frame.loc["visit", "N=4"] == pytest.approx(frame.drop("visit")["N=4"].sum(), rel=1e-12)
    # fsrc_read is constant: its time against rows has no slope to fit, so the rows are extrapolated
    # against the visit number (flat) and the time is the mean.
    assert frame.loc["fsrc_select", "rows"] == pytest.approx(FSRC_ROWS)
    # Without growth: the store as it takes over the last third of the run (visits 101-150 of 150).
    frame = project(fits, SURVEY_YEAR_VISITS, {"src_read": rows}, nodes=(1,)).set_index("op")
    assert frame.loc["store", "N=1"] == pytest.approx(0.5 + STORE_SLOPE * 125.5)
    assert frame.loc["store", "fit"] == "end of run"
    assert frame.loc["src_select", "N=1"] == pytest.approx(src, rel=1e-9)
    with pytest.raises(ValueError, match="growth"):
        project(fits, growth="cubic")


def test_project_run_scales_a_compressed_plateau() -> None:
    table = synthetic_table()
    frame, how = project_run(table, _provenance(), survey_per_year=80.0)
    plateau = SRC_PER_VISIT * FILL
    assert frame.set_index("op").loc["src_select", "rows"] == pytest.approx(plateau * 8.0)
    assert "80" in how and str(FILL) in how
    # Uncompressed: rows extrapolated linearly against the visit number.
    frame, how = project_run(table, _provenance(compressed=False))
    fit = line_fit(table["visit"].to_numpy(float), table["src_read"].to_numpy(float))
    assert frame.set_index("op").loc["src_select", "rows"] == pytest.approx(fit(SURVEY_YEAR_VISITS))
    assert "extrapolated" in how


def test_plot_timing_history_and_projection(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    a = _write(tmp_path, synthetic_table(), "a")
    b = _write(tmp_path, synthetic_table(noise=0.02), "b")
    out = tmp_path / "plots"
    assert plot_timing([str(a), str(b), "-o", str(out), "--label", "A", "B", "--history", "--project",
                        "--nodes", "1,3"]) == 0
    printed = capsys.readouterr().out
    for name in ("history.png", "a_projection.png", "b_projection.png", "a_selects.png"):
        data = (out / name).read_bytes()
        assert data[:8] == PNG_MAGIC and len(data) > 10_000, name
    assert "scale as 1/N" in printed
    assert "N=3" in printed and "src_select" in printed
    assert read_csv(a)["visit"].max() == 150


def test_plot_timing_bad_nodes(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    a = _write(tmp_path, synthetic_table(), "a")
    with pytest.raises(SystemExit) as exc:
        plot_timing([str(a), "-o", str(tmp_path), "--project", "--nodes", "0,3"])
    assert exc.value.code == 2
    assert "--nodes" in capsys.readouterr().err


def test_projection_uncertainty_is_the_fits_standard_error() -> None:
    """The stderr of a projected time: the standard error of the fitted line there (numpy's covariance)."""
    rng = np.random.default_rng(7)
    x = np.linspace(0, 1000, 60)
    y = 0.2 + 3e-4 * x + rng.normal(0, 0.05, x.size)
    fit = line_fit(x, y)
    assert fit is not None
    _, cov = np.polyfit(x, y, 1, cov=True)
    for at in (500.0, 288_000.0):
        v = np.array([at, 1.0])
        assert fit.stderr(at) == pytest.approx(float(np.sqrt(v @ cov @ v)), rel=1e-9)
    frame = project(fit_operations(synthetic_table(noise=0.02)), SURVEY_YEAR_VISITS, {"src_read": 1e6},
                    growth="linear").set_index("op")
    assert (frame["stderr"] > 0).all() and np.isfinite(frame["stderr"]).all()
    assert frame.loc["visit", "stderr"] == pytest.approx(float(np.sqrt((frame.drop("visit")["stderr"] ** 2).sum())))


def test_plot_timing_refuses_to_project_too_few_visits(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from dia_sim.fits import MIN_PROJECTION_VISITS

    table = synthetic_table()
    few = _write(tmp_path, table[table["visit"] < table["visit"].min() + 2], "few")
    out = tmp_path / "plots"
    assert plot_timing([str(few), "-o", str(out), "--project"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("plot_timing: ") and "Traceback" not in err, err
    assert f"has 2 complete visit(s); a projection needs at least {MIN_PROJECTION_VISITS}" in err
    assert not out.exists()  # refused before anything is written
    enough = _write(tmp_path, table[table["visit"] < table["visit"].min() + MIN_PROJECTION_VISITS], "enough")
    assert plot_timing([str(enough), "-o", str(out), "--project"]) == 0
    printed = capsys.readouterr().out
    assert "stderr" in printed and "standard error" in printed
    with pytest.raises(SystemExit):
        plot_timing(["--help"])
    assert f"at least {MIN_PROJECTION_VISITS} complete visits" in " ".join(capsys.readouterr().out.split())
