"""Seeded random pointings: the centre of each visit's field.

Pointings are uniform on the sphere over the southern hemisphere, the full
sky, or a patch ``(ra_min, ra_max, dec_min, dec_max)`` given in degrees. A
patch's RA range may wrap through 0 (``350,10`` is the 20 degrees around
RA 0). Random pointings over a hemisphere revisit a field only every ~2,000
visits; a patch of a few fields makes them overlap within tens of visits.

The Dec limits are kept for the whole field where that is possible: centres
are drawn at least a field radius inside a Dec limit (the equator for the
southern sky, ``dec_min``/``dec_max`` for a patch), so that every field sees
the catalogue's full density. A pole is not a limit. A patch narrower than a
field in Dec keeps its centre line instead.

Example::

    rng = numpy.random.default_rng(1)
    ra, dec = random_pointings(rng, 100, area=parse_pointing_area("350,10,-40,-20"))
"""

from __future__ import annotations

import logging
import math

import numpy as np

from .survey import FOV_DEG, SKY

__all__ = ["PointingArea", "parse_pointing_area", "check_area_in_sky", "random_pointings", "sky_area",
           "centre_area_deg2"]

_LOG = logging.getLogger(__name__)

PointingArea = tuple[float, float, float, float]
"""``(ra_min, ra_max, dec_min, dec_max)`` in degrees."""


def parse_pointing_area(text: str) -> PointingArea:
    """Parse ``"RA_MIN,RA_MAX,DEC_MIN,DEC_MAX"`` (degrees).

    Raises
    ------
    ValueError
        Not four numbers, RA outside [0, 360], Dec outside [-90, 90],
        ``dec_min >= dec_max`` or an empty RA range; the message says which.
    """
    parts = [p.strip() for p in text.split(",")]
    if len(parts) != 4:
        raise ValueError(f"pointing area must be RA_MIN,RA_MAX,DEC_MIN,DEC_MAX (4 numbers), got {text!r}")
    try:
        values = [float(p) for p in parts]
    except ValueError:
        raise ValueError(f"pointing area must be 4 numbers in degrees, got {text!r}") from None
    if not all(math.isfinite(v) for v in values):
        raise ValueError(f"pointing area must be finite numbers, got {text!r}")
    area = (values[0], values[1], values[2], values[3])
    _check_area(area)
    return area


def check_area_in_sky(area: PointingArea, sky: str) -> None:
    """Refuse a pointing area that lies entirely outside ``sky``.

    A southern catalogue has no source north of the equator, so fields there
    would hold nothing but noise.

    Raises
    ------
    ValueError
        If ``sky`` is ``"south"`` and the area's Dec range is entirely > 0.
    """
    if sky == "south" and area[2] >= 0.0:
        raise ValueError(
            f"pointing area Dec {area[2]:g}..{area[3]:g} lies north of the equator, entirely outside "
            f"sky 'south'; use --sky full (and a full-sky catalogue)"
        )


def _check_area(area: PointingArea) -> None:
    ra_min, ra_max, dec_min, dec_max = area
    if not (0.0 <= ra_min <= 360.0 and 0.0 <= ra_max <= 360.0):
        raise ValueError(f"pointing area RA limits must be within [0, 360], got {ra_min}, {ra_max}")
    if not (-90.0 <= dec_min <= 90.0 and -90.0 <= dec_max <= 90.0):
        raise ValueError(f"pointing area Dec limits must be within [-90, 90], got {dec_min}, {dec_max}")
    if dec_min >= dec_max:
        raise ValueError(f"pointing area needs DEC_MIN < DEC_MAX, got {dec_min}, {dec_max}")
    if ra_min % 360.0 == ra_max % 360.0 and not (ra_min == 0.0 and ra_max == 360.0):
        raise ValueError(f"pointing area RA range is empty ({ra_min}, {ra_max}); use 0,360 for all RA")


def random_pointings(
    rng: np.random.Generator,
    n: int,
    sky: str = SKY,
    area: PointingArea | None = None,
    fov_deg: float = FOV_DEG,
) -> tuple[np.ndarray, np.ndarray]:
    """Draw ``n`` pointings uniformly on the sphere.

    Parameters
    ----------
    rng : `numpy.random.Generator`
        Random generator (seeded by the caller for reproducible runs).
    n : `int`
        Number of pointings.
    sky : `str`
        ``"south"`` (Dec <= 0) or ``"full"``; ignored when ``area`` is given.
    area : `tuple`, optional
        ``(ra_min, ra_max, dec_min, dec_max)`` degrees; RA may wrap through 0.
    fov_deg : `float`
        Field diameter, degrees: centres stay a field radius inside Dec limits
        (see the module docstring). 0 for no margin.

    Returns
    -------
    ra, dec : `numpy.ndarray`
        Degrees; RA in [0, 360).
    """
    if n < 0:
        raise ValueError(f"number of pointings must be >= 0, got {n}")
    if fov_deg < 0:
        raise ValueError(f"field of view must be >= 0, got {fov_deg}")
    area = sky_area(sky, area)
    ra_min, ra_max, dec_min, dec_max = area
    dec_lo, dec_hi = _centre_band(dec_min, dec_max, fov_deg / 2.0)
    width = _ra_width(ra_min, ra_max)
    ra = (ra_min + rng.random(n) * width) % 360.0
    # Uniform on the sphere: sin(Dec) uniform between the limits.
    s_lo, s_hi = math.sin(math.radians(dec_lo)), math.sin(math.radians(dec_hi))
    dec = np.degrees(np.arcsin(s_lo + rng.random(n) * (s_hi - s_lo)))
    return ra, dec


def sky_area(sky: str = SKY, area: PointingArea | None = None) -> PointingArea:
    """The pointing area: ``area`` (checked) or the whole of ``sky`` (``"south"`` or ``"full"``)."""
    if area is not None:
        _check_area(area)
        return area
    if sky == "south":
        return (0.0, 360.0, -90.0, 0.0)
    if sky == "full":
        return (0.0, 360.0, -90.0, 90.0)
    raise ValueError(f"sky must be 'south' or 'full', got {sky!r}")


def centre_area_deg2(sky: str = SKY, area: PointingArea | None = None, fov_deg: float = FOV_DEG) -> float:
    """Solid angle, square degrees, of the region where `random_pointings` puts field centres.

    Centres are uniform over it, so a point at least a field radius inside it
    is in a visit's field with probability (field area / this area).
    A patch narrower than a field in Dec (centres on a line) gives 0.
    """
    ra_min, ra_max, dec_min, dec_max = sky_area(sky, area)
    dec_lo, dec_hi = _centre_band(dec_min, dec_max, fov_deg / 2.0, warn=False)
    steradians = math.radians(_ra_width(ra_min, ra_max)) * (math.sin(math.radians(dec_hi))
                                                           - math.sin(math.radians(dec_lo)))
    return steradians * (180.0 / math.pi) ** 2


def _ra_width(ra_min: float, ra_max: float) -> float:
    width = ra_max - ra_min
    return width + 360.0 if width <= 0.0 else width  # wraps through RA 0


def _centre_band(dec_min: float, dec_max: float, radius: float, warn: bool = True) -> tuple[float, float]:
    """Dec band for field centres keeping the field inside ``[dec_min, dec_max]``."""
    lo = dec_min + radius if dec_min > -90.0 else dec_min
    hi = dec_max - radius if dec_max < 90.0 else dec_max
    if lo > hi:
        if not warn:
            return 0.5 * (dec_min + dec_max), 0.5 * (dec_min + dec_max)
        _LOG.warning(
            "pointing Dec range %g..%g is narrower than a field; centres stay on Dec %g",
            dec_min, dec_max, 0.5 * (dec_min + dec_max),
        )
        lo = hi = 0.5 * (dec_min + dec_max)
    return lo, hi
