"""Visit times: one visit every interval, night-time only.

As in the original prototype, "night" is a fixed range of UTC hours: from
``night_start_hour`` (default 20) to ``night_end_hour`` (default 6, the next
day), the end excluded. Within a night visits follow each other every
``interval_s`` seconds (SI seconds, so leap seconds are honoured); a visit
that would fall in daytime moves to the next night's start. With the
defaults a night holds 800 visits.

Times are returned in the TAI scale (the schema's times are MJD TAI).

Example::

    times = visit_times(Time("2026-11-21T20:00:00", scale="utc"), 1000)
    resume = next_visit_time(times[-1])
"""

from __future__ import annotations

import datetime
import logging

import numpy as np
from astropy.time import Time, TimeDelta

__all__ = ["is_night", "next_visit_time", "parse_time", "visit_times"]

_LOG = logging.getLogger(__name__)


def parse_time(text: str) -> Time:
    """An ISO 8601 time in TAI (``2026-01-01T20:00:00`` or ``2026-01-01 20:00:00``).

    Raises
    ------
    ValueError
        One line quoting ``text``.
    """
    for fmt in ("isot", "iso"):
        try:
            return Time(str(text).strip(), format=fmt, scale="tai")
        except ValueError:
            continue
    raise ValueError(f"bad time {text!r}; allowed: an ISO 8601 time in TAI, e.g. 2026-01-01T20:00:00")


def _check(interval_s: float, night_start_hour: int, night_end_hour: int) -> None:
    if not interval_s > 0:
        raise ValueError(f"interval between visits must be > 0 seconds, got {interval_s}")
    for hour in (night_start_hour, night_end_hour):
        if int(hour) != hour or not 0 <= hour <= 23:
            raise ValueError(f"night hours must be integers 0..23, got {hour}")
    if night_start_hour == night_end_hour:
        raise ValueError("night start and end hours must differ")


def _night_of(t: Time, night_start_hour: int, night_end_hour: int) -> tuple[Time, Time]:
    """The night containing ``t`` (UTC), or the next one if ``t`` is in daytime.

    Returns the night's start and end (end excluded) as UTC times.
    """
    length = datetime.timedelta(hours=(night_end_hour - night_start_hour) % 24)
    year, month, day = (int(v) for v in (t.ymdhms.year, t.ymdhms.month, t.ymdhms.day))
    today = datetime.datetime(year, month, day, night_start_hour)
    for offset in (-1, 0, 1):
        start_dt = today + datetime.timedelta(days=offset)
        start = Time(start_dt, scale="utc")
        end = Time(start_dt + length, scale="utc")
        if t < end:
            return start, end
    raise AssertionError("unreachable: a night starts within a day")  # pragma: no cover


def is_night(t: Time, night_start_hour: int = 20, night_end_hour: int = 6) -> bool:
    """Whether a (scalar) time is inside the night-time UTC hours."""
    _check(1.0, night_start_hour, night_end_hour)
    t = t.utc
    start, end = _night_of(t, night_start_hour, night_end_hour)
    return bool(start <= t < end)


def visit_times(
    start: Time,
    n: int,
    interval_s: float = 45.0,
    night_start_hour: int = 20,
    night_end_hour: int = 6,
) -> Time:
    """Times of ``n`` visits from ``start``, night-time only.

    Parameters
    ----------
    start : `astropy.time.Time`
        Time of the first visit (any scale); a daytime start moves to the
        next night's start.
    n : `int`
        Number of visits.
    interval_s : `float`
        Seconds between visits within a night.
    night_start_hour, night_end_hour : `int`
        Night-time UTC hours: ``hour >= night_start_hour or hour < night_end_hour``
        (for a night that does not cross midnight, the hours in between).

    Returns
    -------
    times : `astropy.time.Time`
        ``n`` times, scale TAI, format MJD.
    """
    _check(interval_s, night_start_hour, night_end_hour)
    if n < 0:
        raise ValueError(f"number of visits must be >= 0, got {n}")
    if not start.isscalar:
        raise ValueError("start must be a single time")
    t = start.utc
    jd1: list[np.ndarray] = []
    jd2: list[np.ndarray] = []
    remaining = n
    while remaining > 0:
        night_start, night_end = _night_of(t, night_start_hour, night_end_hour)
        first = t if t >= night_start else night_start
        fit = int(np.ceil((night_end - first).to_value("s") / interval_s)) + 1
        steps = TimeDelta(np.arange(min(fit, remaining)) * interval_s, format="sec")
        times = first + steps
        times = times[times < night_end]  # rounding at the night's end
        tai = times.tai
        jd1.append(tai.jd1)
        jd2.append(tai.jd2)
        remaining -= len(times)
        t = night_end
    if not jd1:
        return Time(np.zeros(0), format="mjd", scale="tai")
    result = Time(np.concatenate(jd1), np.concatenate(jd2), format="jd", scale="tai")
    result.format = "mjd"
    return result


def next_visit_time(
    previous: Time,
    interval_s: float = 45.0,
    night_start_hour: int = 20,
    night_end_hour: int = 6,
) -> Time:
    """Time of the visit after ``previous``, for resuming a run.

    ``previous + interval_s`` if that is night-time, else the next night's
    start: the same rule as `visit_times`, so
    ``next_visit_time(visit_times(t, k)[-1])`` equals ``visit_times(t, k + 1)[-1]``.

    Returns
    -------
    time : `astropy.time.Time`
        Scalar, scale TAI, format MJD.
    """
    _check(interval_s, night_start_hour, night_end_hour)
    candidate = previous + TimeDelta(interval_s, format="sec")
    return visit_times(candidate, 1, interval_s, night_start_hour, night_end_hour)[0]
