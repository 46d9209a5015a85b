"""Visit times: one visit every interval, night-time only, computed from the visit number.

Everything is in TAI, the scale of the schema's times: the start time, the
visit times and the night. "Night" is a fixed range of hours of the TAI day,
as in the original prototype (which used UTC hours; TAI is 37 s ahead of UTC
since 2017): from ``night_start_hour`` (default 20) to ``night_end_hour``
(default 6, the next day), the end excluded. The first visit is at the start
time, or at the next night's start if the start time is in daytime; within a
night visits follow each other every ``interval_s`` seconds; a visit that
would fall in daytime moves to the next night's start. With the defaults a
night holds 800 visits.

The time of a visit is computed from its number alone (`visit_mjd`): the
``k``-th visit after the first is so many whole nights and intervals after
it. It never depends on the time of the visit before, so a run resumed
after the last stored visit gives every visit the same time, to the last
bit, as an uninterrupted run. Times are MJD (TAI) as float64, the type the
database stores.

Example::

    mjd = visit_mjd(parse_time("2026-01-01T20:00:00").mjd, np.arange(1000))
    schedule = VisitSchedule(first_visit=1, start_mjd=mjd[0])
    schedule.mjd(801)   # the first visit of the second night
"""

from __future__ import annotations

import dataclasses
import logging
import math
from typing import TYPE_CHECKING

import numpy as np

from l1db.constants import parse_time  # one parser of the tools' times (create_l1_schema's too)

__all__ = ["SECONDS_PER_DAY", "NIGHT_START_HOUR", "NIGHT_END_HOUR", "VisitSchedule", "is_night", "night_length_s",
           "night_number", "parse_time", "visit_mjd", "visit_times"]

if TYPE_CHECKING:
    from astropy.time import Time

_LOG = logging.getLogger(__name__)

SECONDS_PER_DAY = 86400.0
#: Default night-time TAI hours: from 20h to 6h the next day.
NIGHT_START_HOUR = 20
NIGHT_END_HOUR = 6


def night_length_s(night_start_hour: int = NIGHT_START_HOUR, night_end_hour: int = NIGHT_END_HOUR) -> float:
    """Seconds of one night (36,000 with the default hours)."""
    return ((night_end_hour - night_start_hour) % 24) * 3600.0


def night_number(mjd: float, night_start_hour: int = NIGHT_START_HOUR) -> int:
    """The night a time belongs to: the MJD day on whose evening that night starts.

    Two visits of the same night have the same number whatever the interval
    between them; the next night's visits a larger one (by the days between
    nights).
    """
    return math.floor(float(mjd) - night_start_hour / 24.0)


def _check(interval_s: float, night_start_hour: int, night_end_hour: int, night_step: int = 1) -> None:
    if not (math.isfinite(interval_s) and interval_s > 0):
        raise ValueError(f"interval between visits must be > 0 seconds, got {interval_s}")
    if int(night_step) != night_step or night_step < 1:
        raise ValueError(f"days between nights must be an integer >= 1, got {night_step}")
    for hour in (night_start_hour, night_end_hour):
        if int(hour) != hour or not 0 <= hour <= 23:
            raise ValueError(f"night hours must be integers 0..23, got {hour}")
    if night_start_hour == night_end_hour:
        raise ValueError("night start and end hours must differ")


def _to_mjd(t: Time | float) -> float:
    # astropy (half a second of CPU) is imported where a Time is handled: the schedule itself, and the
    # tools that only read runs (plot_timing, l1db_report), compute with MJDs.
    from astropy.time import Time

    return float(t.tai.mjd) if isinstance(t, Time) else float(t)


def is_night(t: Time | float, night_start_hour: int = 20, night_end_hour: int = 6) -> bool:
    """Whether a (scalar) time, a `Time` or an MJD in TAI, is inside the night-time TAI hours."""
    _check(1.0, night_start_hour, night_end_hour)
    mjd = _to_mjd(t)
    second = (mjd - math.floor(mjd)) * SECONDS_PER_DAY
    offset = (second - night_start_hour * 3600.0) % SECONDS_PER_DAY
    return offset < ((night_end_hour - night_start_hour) % 24) * 3600.0


def visit_mjd(
    start_mjd: float,
    index: int | np.ndarray,
    interval_s: float = 45.0,
    night_start_hour: int = 20,
    night_end_hour: int = 6,
    night_step: int = 1,
) -> float | np.ndarray:
    """Time of the visits ``index`` (0 = the first) of a schedule starting at ``start_mjd``.

    Parameters
    ----------
    start_mjd : `float`
        Start time, MJD (TAI). In the night the first visit is exactly at it;
        in daytime, at the next night's start.
    index : `int` or array of `int`
        Visit numbers counted from the first visit, >= 0.
    interval_s : `float`
        Seconds between visits within a night.
    night_start_hour, night_end_hour : `int`
        Night-time TAI hours: ``hour >= night_start_hour or hour < night_end_hour``
        (for a night that does not cross midnight, the hours in between).
    night_step : `int`
        Days from one observing night to the next (1: every night).

    Returns
    -------
    mjd : `float` or `numpy.ndarray`
        MJD (TAI), float64; the same bits for a visit whether it is computed
        alone or in an array.
    """
    _check(interval_s, night_start_hour, night_end_hour, night_step)
    idx = np.asarray(index, dtype=np.int64)
    if idx.size and idx.min() < 0:
        raise ValueError(f"visit numbers must be >= 0, got {int(idx.min())}")
    start_mjd = float(start_mjd)
    if not math.isfinite(start_mjd):
        raise ValueError(f"start time must be finite, got {start_mjd}")
    night_start = night_start_hour * 3600.0
    length = night_length_s(night_start_hour, night_end_hour)
    # The night the start falls in (or the next one, from daytime), and the
    # start's offset into it.
    day = math.floor(start_mjd)
    since = (start_mjd - day) * SECONDS_PER_DAY - night_start
    days_back = math.floor(since / SECONDS_PER_DAY)
    night_day = day + days_back
    offset = since - days_back * SECONDS_PER_DAY
    first = start_mjd
    if offset >= length:  # daytime: the next night's start
        night_day += 1
        offset = 0.0
        first = night_day + night_start / SECONDS_PER_DAY
    # Rounded to 1 microsecond so that a start read back from a database
    # (which may sit a rounding error before or after the night's start)
    # gives the same count of visits in its first night.
    offset = round(offset, 6)
    in_first_night = math.ceil((length - offset) / interval_s)
    per_night = math.ceil(length / interval_s)
    later = idx - in_first_night
    nights = night_day + int(night_step) * (1 + later // per_night)
    mjd = np.where(
        idx < in_first_night,
        first + (idx * interval_s) / SECONDS_PER_DAY,
        nights + (night_start + (later % per_night) * interval_s) / SECONDS_PER_DAY,
    )
    return float(mjd) if mjd.ndim == 0 else mjd


def visit_times(
    start: Time | float,
    n: int,
    interval_s: float = 45.0,
    night_start_hour: int = 20,
    night_end_hour: int = 6,
) -> Time:
    """Times of the first ``n`` visits from ``start``, night-time only (see `visit_mjd`).

    Parameters
    ----------
    start : `astropy.time.Time` or `float`
        Start time (a `Time` in any scale, or an MJD in TAI).
    n : `int`
        Number of visits.
    interval_s, night_start_hour, night_end_hour
        As in `visit_mjd`.

    Returns
    -------
    times : `astropy.time.Time`
        ``n`` times, scale TAI, format MJD.
    """
    from astropy.time import Time

    if n < 0:
        raise ValueError(f"number of visits must be >= 0, got {n}")
    if isinstance(start, Time) and not start.isscalar:
        raise ValueError("start must be a single time")
    mjd = visit_mjd(_to_mjd(start), np.arange(n), interval_s, night_start_hour, night_end_hour)
    return Time(np.atleast_1d(mjd), format="mjd", scale="tai")


@dataclasses.dataclass(frozen=True)
class VisitSchedule:
    """The schedule of a database's visits: visit ID -> time.

    Attributes
    ----------
    first_visit : `int`
        ID of the first visit.
    start_mjd : `float`
        Its start time, MJD (TAI): the configured start time for a new
        database, the first stored visit's time for a resumed one.
    interval_s : `float`
        Seconds between visits within a night.
    night_start_hour, night_end_hour : `int`
        Night-time TAI hours.
    night_step : `int`
        Days from one observing night to the next.
    """

    first_visit: int
    start_mjd: float
    interval_s: float = 45.0
    night_start_hour: int = NIGHT_START_HOUR
    night_end_hour: int = NIGHT_END_HOUR
    night_step: int = 1

    def mjd(self, visit_id: int) -> float:
        """Time of visit ``visit_id`` (>= `first_visit`), MJD (TAI)."""
        return float(visit_mjd(self.start_mjd, int(visit_id) - self.first_visit, self.interval_s,
                               self.night_start_hour, self.night_end_hour, self.night_step))

    def night(self, mjd: float) -> int:
        """`night_number` of a time of this schedule."""
        return night_number(mjd, self.night_start_hour)
