"""Constants and time helpers shared by the API, the backends, the config and the tools.

This module imports nothing from the package, so that any module may use it
without an import circle (`l1db.config` needs `MONTH_DAYS`, the API and both
backends need all three). astropy (about half a second of CPU) is imported by the
two time helpers when first called, not here: every command imports this module
through `l1db.config`, and most never handle a time.
"""

from __future__ import annotations

import datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from astropy.time import Time

__all__ = ["AP_OBJECT_COLUMNS", "MONTH_DAYS", "to_mjd_tai", "mjd_tai_time", "parse_time"]

#: DiaObject columns returned by `l1db.api.L1db.getDiaObjects` when ``read_full_objects = 0``:
#: what the AP loop needs to associate, to decide on forced photometry and to
#: update the summaries.
AP_OBJECT_COLUMNS = (
    "diaObjectId",
    "validityStartMjdTai",
    "ra",
    "dec",
    "nDiaSources",
    "firstDiaSourceMjdTai",
    "lastDiaSourceMjdTai",
)

#: Length of a "month" of the history windows, in days.
MONTH_DAYS = 30.0


def to_mjd_tai(visit_time: Time | datetime.datetime | float) -> float:
    """MJD (TAI) of a visit time: an astropy `Time`, a `datetime` (taken to be TAI) or an MJD (TAI) already.

    An MJD is returned as it is, and ``to_mjd_tai(mjd_tai_time(mjd)) == mjd`` to the bit: the AP loop's
    workers hand the API the MJDs of their visits, without astropy.
    """
    if isinstance(visit_time, float):
        return float(visit_time)
    from astropy.time import Time

    if isinstance(visit_time, datetime.datetime):
        visit_time = Time(visit_time.replace(tzinfo=None), scale="tai")
    if not isinstance(visit_time, Time):
        raise TypeError(f"visit_time must be an astropy Time, a datetime or an MJD (float), not "
                        f"{type(visit_time).__name__}")
    return float(visit_time.tai.mjd)


def mjd_tai_time(mjd: float) -> Time:
    """The astropy `Time` of an MJD (TAI)."""
    from astropy.time import Time

    return Time(mjd, format="mjd", scale="tai")


def parse_time(text: str) -> Time:
    """An ISO 8601 time in TAI (``2026-01-01T20:00:00`` or ``2026-01-01 20:00:00``).

    Raises
    ------
    ValueError
        One line quoting ``text``.
    """
    from astropy.time import Time

    for fmt in ("isot", "iso"):
        try:
            return Time(str(text).strip(), format=fmt, scale="tai")
        except ValueError:
            continue
    raise ValueError(f"bad time {text!r}; allowed: an ISO 8601 time in TAI, e.g. 2026-01-01T20:00:00")
