"""Points on the unit sphere: RA/Dec in degrees <-> unit vectors, for every layer.

One conversion, written once: `unit_vector` for numba kernels (one point,
with sphgeom's rounding, so that the pixelization kernels index exactly as
lsst-sphgeom does) and `radec_to_xyz` / `xyz_to_radec` for numpy arrays (the
simulation, the benchmarks). Unit vectors are in the ICRS-like frame
x = (RA 0, Dec 0), z = north pole.
"""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = ["RAD_PER_DEG", "unit_vector", "radec_to_xyz", "xyz_to_radec"]

#: sphgeom's RAD_PER_DEG (constants.h), written with the same decimal digits so
#: that it rounds to the same double: degrees times this give exactly the
#: radians of ``LonLat.fromDegrees`` (and of ``numpy.radians``).
RAD_PER_DEG = 0.0174532925199432957692369076849
# sphgeom's PI, likewise.
_TWO_PI = 2.0 * 3.1415926535897932384626433832795


@njit(cache=True, inline="always")
def _xyz(lon, lat):  # noqa: ANN001, ANN202 - numba: scalars in kernels, arrays through .py_func
    """Unit vector components of a longitude and latitude in radians."""
    cos_lat = np.cos(lat)
    return np.cos(lon) * cos_lat, np.sin(lon) * cos_lat, np.sin(lat)


@njit(cache=True, inline="always")
def unit_vector(ra, dec):  # noqa: ANN001, ANN201 - numba kernel
    """``UnitVector3d(LonLat::fromDegrees(ra, dec))`` of one point, with sphgeom's rounding (no renormalisation).

    For numba kernels; a numba dispatcher (inlined into its callers, so
    that editing this function recompiles them only once their own cache
    is invalidated too).
    """
    # NormalizedAngle::fromDegrees wraps into [0, 2*PI] and leaves exactly 2*PI alone.
    lon = ra * RAD_PER_DEG
    if lon < 0.0:
        lon = np.fmod(lon, _TWO_PI) + _TWO_PI
    elif lon > _TWO_PI:
        lon = np.fmod(lon, _TWO_PI)
    return _xyz(lon, dec * RAD_PER_DEG)


def radec_to_xyz(ra: np.ndarray | float, dec: np.ndarray | float) -> np.ndarray:
    """Unit vectors, shape ``(..., 3)``, of RA/Dec in degrees.

    Parameters
    ----------
    ra, dec : `numpy.ndarray` or `float`
        Positions in degrees, same shape.

    Returns
    -------
    xyz : `numpy.ndarray`
        float64, the input's shape plus a last axis of 3.
    """
    lon = np.asarray(ra, dtype=np.float64) * RAD_PER_DEG
    lat = np.asarray(dec, dtype=np.float64) * RAD_PER_DEG
    return np.stack(_xyz.py_func(lon, lat), axis=-1)


def xyz_to_radec(xyz: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """RA in [0, 360) and Dec in [-90, 90] degrees of vectors (not necessarily unit), shape ``(..., 3)``."""
    x, y, z = xyz[..., 0], xyz[..., 1], xyz[..., 2]
    ra = np.degrees(np.arctan2(y, x)) % 360.0
    # A tiny negative angle gives exactly 360.0 after the modulo; fold it back.
    ra = np.where(ra >= 360.0, 0.0, ra)
    dec = np.degrees(np.arctan2(z, np.hypot(x, y)))
    return ra, dec
