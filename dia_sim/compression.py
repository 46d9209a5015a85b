"""Time compression: a visit cadence that gives each point of the patch K observations a simulated year.

A survey field is visited a few hundred times over ten years, so that a
persistent variable has ~80 DiaSources in the 12-month history window. A
random pointing over a hemisphere revisits a field only every ~2,000 visits,
and at 800 visits a night the window fills after ~290,000 visits: far beyond a
run on a small machine. Compressing time brings that depth within reach: the
pointings are confined to a patch (``pointing_area``) and the simulated
clock advances faster between visits, so that the window fills after a few
hundred visits while every object still has the history a survey gives it.

Field centres are uniform over the patch's centre region (`dia_sim.pointing`),
so a point well inside it is in a visit's field with probability
p = field area / centre-region area. K observations a year need
``K / p`` visits a simulated year; the cadence that gives them is
``visits_per_night`` visits in each observing night (one every
``interval`` seconds, the night's length divided by that number) and an
observing night every ``days_between_nights`` days.

What stays realistic per visit: the rows read per object (history depth), the
field's density (sources per visit), the rows stored per visit. What does
not: the number of distinct objects in the database (a patch, not a
hemisphere), hence the table and index sizes; and the forced photometry,
which stops ``forced_cutoff_days`` after an object's last detection, so
that with a revisit every 365/K days longer than that cutoff, fewer
DiaForcedSources are made than in the survey.

Example::

    cadence = derive_cadence(20.0, centre_area_deg2("south", (0, 12, -34, -20)))
    cadence.describe()   # "K = 20.0 observations per point per year on ..."
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from .schedule import night_length_s
from .survey import FOV_DEG

__all__ = ["Cadence", "derive_cadence", "field_area_deg2", "DAYS_PER_YEAR"]

#: A simulated year, days (Julian year).
DAYS_PER_YEAR = 365.25

#: Largest relative error of the achieved visits a year accepted before trying more days between nights.
_TOLERANCE = 0.02


def field_area_deg2(fov_deg: float) -> float:
    """Solid angle of a circular field of diameter ``fov_deg``, square degrees."""
    radius = math.radians(fov_deg / 2.0)
    return 2.0 * math.pi * (1.0 - math.cos(radius)) * (180.0 / math.pi) ** 2


@dataclasses.dataclass(frozen=True)
class Cadence:
    """A time-compressed visit cadence and what it gives.

    Attributes
    ----------
    observations_per_year : `float`
        K asked for: observations of each point of the patch per simulated year.
    centre_area_deg2 : `float`
        Area of the region where field centres fall, square degrees.
    field_area_deg2 : `float`
        Area of one field, square degrees.
    visits_per_night : `int`
        Visits in each observing night.
    days_between_nights : `int`
        Days from one observing night to the next.
    interval : `float`
        Seconds between the visits of a night (the night's length divided by
        ``visits_per_night``, rounded up to the millisecond).
    """

    observations_per_year: float
    centre_area_deg2: float
    field_area_deg2: float
    visits_per_night: int
    days_between_nights: int
    interval: float

    @property
    def visits_per_year(self) -> float:
        """Visits in a simulated year."""
        return self.visits_per_night * DAYS_PER_YEAR / self.days_between_nights

    @property
    def achieved_per_year(self) -> float:
        """Observations of a point (well inside the patch) per simulated year that the cadence gives."""
        return self.visits_per_year * self.field_area_deg2 / self.centre_area_deg2

    def visits_to_fill(self, window_days: float) -> int:
        """Visits after which a history window of ``window_days`` is full."""
        return math.ceil(window_days / self.days_between_nights) * self.visits_per_night

    def as_dict(self, window_days: float | None = None) -> dict[str, Any]:
        """The cadence and what it gives, for the provenance record."""
        out: dict[str, Any] = {
            "observations_per_year": self.observations_per_year,
            "achieved_per_year": round(self.achieved_per_year, 3),
            "centre_area_deg2": round(self.centre_area_deg2, 3),
            "field_area_deg2": round(self.field_area_deg2, 4),
            "fields_in_patch": round(self.centre_area_deg2 / self.field_area_deg2, 3),
            "visits_per_night": self.visits_per_night,
            "days_between_nights": self.days_between_nights,
            "interval": self.interval,
            "visits_per_year": round(self.visits_per_year, 3),
        }
        if window_days is not None:
            out["window_days"] = window_days
            out["visits_to_fill_window"] = self.visits_to_fill(window_days)
        return out

    def describe(self, window_days: float | None = None) -> str:
        """One line for a user: the cadence derived and what it gives."""
        line = (
            f"time compression: K = {self.observations_per_year:g} observations per point per year on "
            f"{self.centre_area_deg2:,.0f} deg2 of field centres ({self.centre_area_deg2 / self.field_area_deg2:,.1f}"
            f" fields): {self.visits_per_night} visit(s) a night, one every {self.interval:g} s, a night every "
            f"{self.days_between_nights} day(s) = {self.visits_per_year:,.1f} visits a simulated year "
            f"(K achieved {self.achieved_per_year:.2f})"
        )
        if window_days is not None:
            line += f"; the {window_days:g}-day history window fills after {self.visits_to_fill(window_days):,} visits"
        return line


def derive_cadence(
    observations_per_year: float,
    centre_area: float,
    fov_deg: float = FOV_DEG,
    night_seconds: float | None = None,
) -> Cadence:
    """The cadence giving each point of the patch ``observations_per_year`` observations a simulated year.

    The visits a year needed are K x (centre area / field area). At a visit
    a day or more, every night is observed, with as many visits as a day
    needs; below that, one visit (or a few) every few days: the fewest days
    between nights whose whole number of visits a night comes within 2 % of
    the rate asked for (else the closest).

    Parameters
    ----------
    observations_per_year : `float`
        K, > 0.
    centre_area : `float`
        Area of the region of field centres, square degrees
        (`dia_sim.pointing.centre_area_deg2`).
    fov_deg : `float`
        Field of view diameter, degrees.
    night_seconds : `float`, optional
        Length of a night; default: the schedule's (10 h).

    Raises
    ------
    ValueError
        K not > 0, or a patch without area (narrower than a field in Dec).
    """
    if not (math.isfinite(observations_per_year) and observations_per_year > 0):
        raise ValueError(f"observations per year must be > 0, got {observations_per_year}")
    if not centre_area > 0:
        raise ValueError("the pointing area leaves no room for field centres (it is narrower than a field in "
                         "Dec); give a patch at least two fields high for time compression")
    field = field_area_deg2(fov_deg)
    night = night_length_s() if night_seconds is None else float(night_seconds)
    per_day = observations_per_year * centre_area / field / DAYS_PER_YEAR
    best: tuple[float, int, int] | None = None
    for step in range(1, 3 * int(DAYS_PER_YEAR) + 1):
        n = max(1, round(per_day * step))
        error = abs(n / step / per_day - 1.0)
        if best is None or error < best[0]:
            best = (error, n, step)
        if error <= _TOLERANCE or per_day >= 1.0:
            break
    assert best is not None
    _, n, step = best
    # Rounded up to the millisecond, so that exactly n visits fit in a night.
    interval = math.ceil(night / n * 1000.0) / 1000.0
    if math.ceil(night / interval) != n:
        raise ValueError(f"K = {observations_per_year:g} makes {float(n):.4g} visits a night, which leaves no room "
                         f"between visits (they are a millisecond apart at least); give a smaller K or patch")
    return Cadence(float(observations_per_year), float(centre_area), field, n, step, interval)
