"""Tests of dia_sim.schedule: night-time visit times in TAI, computed from the visit number."""

from __future__ import annotations

import numpy as np
import pytest
from astropy.time import Time, TimeDelta

from dia_sim.schedule import VisitSchedule, is_night, parse_time, visit_mjd, visit_times


def _tai_hours(times: Time) -> np.ndarray:
    ymdhms = times.tai.ymdhms
    return ymdhms.hour + ymdhms.minute / 60 + ymdhms.second / 3600


def _isot(mjd: float) -> str:
    return Time(mjd, format="mjd", scale="tai").isot


def test_the_documented_default_start_is_the_first_visit() -> None:
    """The default start, 2026-01-01T20:00:00 TAI, is the first visit's time exactly (no UTC in between)."""
    start = parse_time("2026-01-01T20:00:00")
    times = visit_times(start, 3)
    assert times.scale == "tai" and times.format == "mjd"
    assert [t.isot for t in times] == ["2026-01-01T20:00:00.000", "2026-01-01T20:00:45.000",
                                       "2026-01-01T20:01:30.000"]
    assert times[0].mjd == start.mjd


def test_first_night_from_its_start() -> None:
    start = Time("2026-11-21T20:00:00", scale="tai")
    times = visit_times(start, 2000)
    assert len(times) == 2000
    hours = _tai_hours(times)
    assert np.all((hours >= 20) | (hours < 6))
    steps = np.diff(times.mjd) * 86400
    # 800 visits a night at 45 s; then a jump to 20:00 the next evening.
    within = np.abs(steps - 45.0) < 1e-5
    jumps = np.flatnonzero(~within)
    np.testing.assert_array_equal(jumps, [799, 1599])
    assert times[800].isot == "2026-11-22T20:00:00.000"
    assert times[799].isot == "2026-11-22T05:59:15.000"


def test_daytime_start_moves_to_next_night() -> None:
    times = visit_times(Time("2026-11-21T12:34:56", scale="tai"), 3)
    assert times[0].isot == "2026-11-21T20:00:00.000"
    assert times[2].isot == "2026-11-21T20:01:30.000"
    times = visit_times(Time("2026-11-21T06:00:00", scale="tai"), 1)
    assert times[0].isot == "2026-11-21T20:00:00.000"
    # A UTC start is converted: 19:59:30 UTC is 20:00:07 TAI, in the night.
    times = visit_times(Time("2026-11-21T19:59:30", scale="utc"), 1)
    assert times[0].isot == "2026-11-21T20:00:07.000"


def test_start_after_midnight_runs_to_dawn() -> None:
    times = visit_times(Time("2026-11-22T05:58:00", scale="tai"), 4, interval_s=30)
    assert [t.isot for t in times] == [
        "2026-11-22T05:58:00.000",
        "2026-11-22T05:58:30.000",
        "2026-11-22T05:59:00.000",
        "2026-11-22T05:59:30.000",
    ]
    times = visit_times(Time("2026-11-22T05:59:50", scale="tai"), 2, interval_s=30)
    assert [t.isot for t in times] == ["2026-11-22T05:59:50.000", "2026-11-22T20:00:00.000"]


def test_one_visit_computed_alone_is_bit_identical_to_the_run() -> None:
    """A resumed run computes each visit's time from its number: the same bits as the uninterrupted run."""
    for start_text in ("2026-01-01T20:00:00", "2026-11-22T05:41:07.123456", "2026-11-22T12:00:00"):
        start = parse_time(start_text).mjd
        full = visit_mjd(start, np.arange(2500), 45.0)
        alone = np.array([visit_mjd(start, k, 45.0) for k in range(0, 2500, 7)])
        np.testing.assert_array_equal(alone, full[::7])
        # Resuming from the first stored visit's time (as read back from a database) changes nothing.
        resumed = VisitSchedule(first_visit=11, start_mjd=float(full[0]), interval_s=45.0)
        assert [resumed.mjd(11 + k) for k in (0, 1, 799, 800, 1799, 2499)] == \
            [full[k] for k in (0, 1, 799, 800, 1799, 2499)]


def test_custom_night_and_interval() -> None:
    times = visit_times(Time("2026-11-21T09:59:00", scale="tai"), 4, interval_s=40, night_start_hour=0,
                        night_end_hour=10)
    assert [t.isot for t in times] == [
        "2026-11-21T09:59:00.000",
        "2026-11-21T09:59:40.000",
        "2026-11-22T00:00:00.000",
        "2026-11-22T00:00:40.000",
    ]
    hours = _tai_hours(visit_times(Time("2026-11-21T00:00:00", scale="tai"), 3000, night_start_hour=0,
                                   night_end_hour=10))
    assert np.all(hours < 10)


def test_is_night() -> None:
    assert is_night(Time("2026-11-21T20:00:00", scale="tai"))
    assert is_night(Time("2026-11-21T05:59:59", scale="tai"))
    assert not is_night(Time("2026-11-21T06:00:00", scale="tai"))
    assert not is_night(Time("2026-11-21T19:59:59", scale="tai"))
    # 19:59:30 UTC is 20:00:07 TAI: night.
    assert is_night(Time("2026-11-21T19:59:30", scale="utc"))
    assert all(is_night(t) for t in visit_times(Time("2026-11-21T13:00:00", scale="tai"), 1700)[::50])


def test_parse_time() -> None:
    assert parse_time("2026-01-01 20:00:00").isot == "2026-01-01T20:00:00.000"
    assert parse_time(" 2026-01-01T20:00:00.5 ").scale == "tai"
    for bad in ("garbage", "", "2026-13-01T00:00:00", "61041.5"):
        with pytest.raises(ValueError, match="ISO 8601"):
            parse_time(bad)


def test_edge_cases_and_errors() -> None:
    start = Time("2026-11-21T20:00:00", scale="tai")
    empty = visit_times(start, 0)
    assert len(empty) == 0 and empty.scale == "tai"
    for kwargs in (dict(interval_s=0), dict(interval_s=float("nan")), dict(night_start_hour=24),
                   dict(night_start_hour=6), dict(night_end_hour=2.5)):
        with pytest.raises(ValueError):
            visit_times(start, 1, **kwargs)
    with pytest.raises(ValueError):
        visit_times(start, -1)
    with pytest.raises(ValueError):
        visit_times(start + TimeDelta([0, 1], format="sec"), 1)
    with pytest.raises(ValueError):
        visit_mjd(start.mjd, -1)


def test_a_year_of_visits() -> None:
    times = visit_times(Time("2026-01-01T20:00:00", scale="tai"), 400_000)
    assert len(times) == 400_000
    # 800 visits a night: 500 nights.
    assert 499 < (times[-1] - times[0]).to_value("jd") < 500
    hours = _tai_hours(times[::997])
    assert np.all((hours >= 20) | (hours < 6))
    assert np.all(np.diff(times.mjd) > 0)
