"""Tests of dia_sim.schedule: night-time visit times."""

from __future__ import annotations

import numpy as np
import pytest
from astropy.time import Time, TimeDelta

from dia_sim.schedule import is_night, next_visit_time, visit_times


def _utc_hours(times: Time) -> np.ndarray:
    ymdhms = times.utc.ymdhms
    return ymdhms.hour + ymdhms.minute / 60 + ymdhms.second / 3600


def test_first_night_from_its_start():
    start = Time("2026-11-21T20:00:00", scale="utc")
    times = visit_times(start, 2000)
    assert times.scale == "tai" and times.format == "mjd" and len(times) == 2000
    assert abs((times[0] - start).to_value("s")) < 1e-6
    hours = _utc_hours(times)
    assert np.all((hours >= 20) | (hours < 6))
    steps = np.diff(times.tai.mjd) * 86400
    # 800 visits a night at 45 s; then a jump to 20:00 the next evening.
    within = np.round(steps, 3) == 45.0
    assert within.sum() == 2000 - 1 - 2
    jumps = np.flatnonzero(~within)
    np.testing.assert_array_equal(jumps, [799, 1599])
    assert times[800].utc.isot == "2026-11-22T20:00:00.000"
    assert times[799].utc.isot == "2026-11-22T05:59:15.000"


def test_daytime_start_moves_to_next_night():
    times = visit_times(Time("2026-11-21T12:34:56", scale="utc"), 3)
    assert times[0].utc.isot == "2026-11-21T20:00:00.000"
    assert times[2].utc.isot == "2026-11-21T20:01:30.000"
    times = visit_times(Time("2026-11-21T06:00:00", scale="utc"), 1)
    assert times[0].utc.isot == "2026-11-21T20:00:00.000"


def test_start_after_midnight_runs_to_dawn():
    times = visit_times(Time("2026-11-22T05:58:00", scale="utc"), 4, interval_s=30)
    assert [t.utc.isot for t in times] == [
        "2026-11-22T05:58:00.000",
        "2026-11-22T05:58:30.000",
        "2026-11-22T05:59:00.000",
        "2026-11-22T05:59:30.000",
    ]
    times = visit_times(Time("2026-11-22T05:59:50", scale="utc"), 2, interval_s=30)
    assert [t.utc.isot for t in times] == ["2026-11-22T05:59:50.000", "2026-11-22T20:00:00.000"]


def test_start_in_tai_and_other_scales():
    start_utc = Time("2026-11-21T21:00:00", scale="utc")
    a = visit_times(start_utc, 5)
    b = visit_times(start_utc.tai, 5)
    np.testing.assert_allclose((a - b).to_value("s"), 0, atol=1e-6)
    assert abs((a[0] - start_utc).to_value("s")) < 1e-6


def test_resume_matches_uninterrupted_schedule():
    start = Time("2026-11-21T23:00:00", scale="utc")
    full = visit_times(start, 1000)
    for k in (0, 10, 499, 500, 998):
        nxt = next_visit_time(full[k])
        assert nxt.scale == "tai"
        assert abs((nxt - full[k + 1]).to_value("s")) < 1e-6
    resumed = visit_times(next_visit_time(full[499]), 500)
    np.testing.assert_allclose((resumed - full[500:]).to_value("s"), 0, atol=1e-6)


def test_leap_second_night():
    """Intervals are SI seconds: a night holding a leap second keeps 45 s in TAI."""
    times = visit_times(Time("2016-12-31T23:58:00", scale="utc"), 6)
    np.testing.assert_allclose(np.diff(times.tai.mjd) * 86400, 45.0, atol=1e-5)


def test_custom_night_and_interval():
    times = visit_times(Time("2026-11-21T09:59:00", scale="utc"), 4, interval_s=40, night_start_hour=0, night_end_hour=10)
    assert [t.utc.isot for t in times] == [
        "2026-11-21T09:59:00.000",
        "2026-11-21T09:59:40.000",
        "2026-11-22T00:00:00.000",
        "2026-11-22T00:00:40.000",
    ]
    hours = _utc_hours(visit_times(Time("2026-11-21T00:00:00", scale="utc"), 3000, night_start_hour=0, night_end_hour=10))
    assert np.all(hours < 10)


def test_is_night():
    assert is_night(Time("2026-11-21T20:00:00", scale="utc"))
    assert is_night(Time("2026-11-21T05:59:59", scale="utc"))
    assert not is_night(Time("2026-11-21T06:00:00", scale="utc"))
    assert not is_night(Time("2026-11-21T19:59:59", scale="utc"))


def test_edge_cases_and_errors():
    start = Time("2026-11-21T20:00:00", scale="utc")
    empty = visit_times(start, 0)
    assert len(empty) == 0 and empty.scale == "tai"
    for kwargs in (dict(interval_s=0), dict(night_start_hour=24), dict(night_start_hour=6), dict(night_end_hour=2.5)):
        with pytest.raises(ValueError):
            visit_times(start, 1, **kwargs)
    with pytest.raises(ValueError):
        visit_times(start, -1)
    with pytest.raises(ValueError):
        visit_times(start + TimeDelta([0, 1], format="sec"), 1)


def test_a_year_of_visits():
    times = visit_times(Time("2026-01-01T20:00:00", scale="utc"), 400_000)
    assert len(times) == 400_000
    # 800 visits a night: 500 nights.
    assert 499 < (times[-1] - times[0]).to_value("jd") < 500
    hours = _utc_hours(times[::997])
    assert np.all((hours >= 20) | (hours < 6))
