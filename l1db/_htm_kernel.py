"""Numba kernel: HTM trixel index of many (ra, dec) points at once.

A private twin of lsst-sphgeom's ``HtmPixelization::index`` (src/HtmPixelization.cc),
which the Python binding only offers one point per call. It repeats the C++
arithmetic operation by operation (the LonLat -> UnitVector3d conversion, the root
triangle choice with its tie-breaking on the coordinate planes, the midpoint
normalisation of Vector3d::normalize, which scales by the largest component first,
and the floating-point orientation test with its error bounds), so that every index
is bit-for-bit the one sphgeom computes. tests/test_pixelization.py checks this on
random points, poles, the RA seam and points on trixel edges.

When the floating-point orientation test cannot decide (a point within ~1e-15 of
a trixel edge, which at level 24 is several percent of all points), sphgeom
computes the sign of the determinant exactly with big integers; the kernel computes
the same exact sign with error-free floating-point expansions (Dekker products,
Shewchuk sums). Where those could underflow (a coordinate below 1e-90 that is not
zero) the kernel reports the point as undecided (index -1) and the caller asks
sphgeom for it.
"""

from __future__ import annotations

import logging
import math

import numpy as np
from numba import njit

from .sphere import unit_vector

__all__: list[str] = []

_LOG = logging.getLogger(__name__)

# sphgeom's orientation() error bounds (src/orientation.cc).
_RELATIVE_ERROR = 5.6e-16
_MAX_ABSOLUTE_ERROR = 1.7e-15
_MIN_ABSOLUTE_ERROR = 4.0e-307

# Root triangle vertices, VERTICES[r][i] in src/HtmPixelization.cc, shape (8, 3, 3).
_ROOT_VERTICES = np.array(
    [
        [[1, 0, 0], [0, 0, -1], [0, 1, 0]],
        [[0, 1, 0], [0, 0, -1], [-1, 0, 0]],
        [[-1, 0, 0], [0, 0, -1], [0, -1, 0]],
        [[0, -1, 0], [0, 0, -1], [1, 0, 0]],
        [[1, 0, 0], [0, 0, 1], [0, -1, 0]],
        [[0, -1, 0], [0, 0, 1], [-1, 0, 0]],
        [[-1, 0, 0], [0, 0, 1], [0, 1, 0]],
        [[0, 1, 0], [0, 0, 1], [1, 0, 0]],
    ],
    dtype=np.float64,
)

UNDECIDED = -1


@njit(cache=True, inline="always")
def _orientation(ax, ay, az, bx, by, bz, cx, cy, cz):
    """Sign of det[a, b, c] as sphgeom's orientation(); 2 when undecided."""
    bycz = by * cz
    bzcy = bz * cy
    bzcx = bz * cx
    bxcz = bx * cz
    bxcy = bx * cy
    bycx = by * cx
    determinant = ax * (bycz - bzcy) + ay * (bzcx - bxcz) + az * (bxcy - bycx)
    if determinant > _MAX_ABSOLUTE_ERROR:
        return 1
    if determinant < -_MAX_ABSOLUTE_ERROR:
        return -1
    permanent = (
        abs(ax) * (abs(bycz) + abs(bzcy)) + abs(ay) * (abs(bzcx) + abs(bxcz)) + abs(az) * (abs(bxcy) + abs(bycx))
    )
    max_error = _RELATIVE_ERROR * permanent + _MIN_ABSOLUTE_ERROR
    if determinant > max_error:
        return 1
    if determinant < -max_error:
        return -1
    return 2


# Dekker's splitter 2^27 + 1, and the smallest coordinate for which error-free
# products of three factors stay clear of underflow.
_SPLITTER = 134217729.0
_TINY = 1.0e-90


@njit(cache=True, inline="always")
def _two_product(a, b):
    """p, e with p + e == a * b exactly (Dekker, no FMA)."""
    p = a * b
    t = _SPLITTER * a
    a_hi = t - (t - a)
    a_lo = a - a_hi
    t = _SPLITTER * b
    b_hi = t - (t - b)
    b_lo = b - b_hi
    e = ((a_hi * b_hi - p) + a_hi * b_lo + a_lo * b_hi) + a_lo * b_lo
    return p, e


@njit(cache=True)
def _grow(expansion, n, b):
    """Add b to the nonoverlapping expansion[:n] (Shewchuk's Grow-Expansion)."""
    q = b
    for i in range(n):
        e = expansion[i]
        s = q + e
        bv = s - q
        av = s - bv
        expansion[i] = (q - av) + (e - bv)
        q = s
    expansion[n] = q
    return n + 1


@njit(cache=True)
def _add_triple_product(expansion, n, sign, a, b, c):
    p, e = _two_product(a, b)
    p1, e1 = _two_product(p, c)
    p2, e2 = _two_product(e, c)
    n = _grow(expansion, n, sign * p1)
    n = _grow(expansion, n, sign * e1)
    n = _grow(expansion, n, sign * p2)
    return _grow(expansion, n, sign * e2)


@njit(cache=True)
def _orientation_exact(ax, ay, az, bx, by, bz, cx, cy, cz, expansion):
    """Exact sign of det[a, b, c] (sphgeom's orientationExact); 2 if it could underflow."""
    for v in (ax, ay, az, bx, by, bz, cx, cy, cz):
        if v != 0.0 and abs(v) < _TINY:
            return 2
    n = 0
    n = _add_triple_product(expansion, n, 1.0, ax, by, cz)
    n = _add_triple_product(expansion, n, -1.0, ax, bz, cy)
    n = _add_triple_product(expansion, n, 1.0, ay, bz, cx)
    n = _add_triple_product(expansion, n, -1.0, ay, bx, cz)
    n = _add_triple_product(expansion, n, 1.0, az, bx, cy)
    n = _add_triple_product(expansion, n, -1.0, az, by, cx)
    # The components grow in magnitude: the last nonzero one carries the sign.
    for i in range(n - 1, -1, -1):
        if expansion[i] > 0.0:
            return 1
        if expansion[i] < 0.0:
            return -1
    return 0


@njit(cache=True)
def _orient(ax, ay, az, bx, by, bz, cx, cy, cz, expansion):
    o = _orientation(ax, ay, az, bx, by, bz, cx, cy, cz)
    if o != 2:
        return o
    return _orientation_exact(ax, ay, az, bx, by, bz, cx, cy, cz, expansion)


@njit(cache=True, inline="always")
def _normalized_sum(ax, ay, az, bx, by, bz):
    """UnitVector3d(a + b): sphgeom's Vector3d::normalize of the sum.

    normalize() divides by the largest absolute component w first, so the
    result is (u, v, sign(w)) / sqrt(1 + (u*u + v*v)) with u, v the two other
    scaled components. Which of two equal components counts as the largest
    does not change any value.
    """
    x = ax + bx
    y = ay + by
    z = az + bz
    abs_x = abs(x)
    abs_y = abs(y)
    abs_z = abs(z)
    if abs_x >= abs_y and abs_x >= abs_z:
        u = y / abs_x
        v = z / abs_x
        norm = math.sqrt(1.0 + (u * u + v * v))
        return math.copysign(1.0, x) / norm, u / norm, v / norm
    if abs_y >= abs_z:
        u = x / abs_y
        v = z / abs_y
        norm = math.sqrt(1.0 + (u * u + v * v))
        return u / norm, math.copysign(1.0, y) / norm, v / norm
    u = x / abs_z
    v = y / abs_z
    norm = math.sqrt(1.0 + (u * u + v * v))
    return u / norm, v / norm, math.copysign(1.0, z) / norm


@njit(cache=True)
def _index_one(ra, dec, level, roots, expansion):
    """HTM index of one point (degrees), or `UNDECIDED`."""
    vx, vy, vz = unit_vector(ra, dec)

    if vz < 0.0:
        if vy > 0.0:
            r = 0 if vx > 0.0 else 1
        elif vy == 0.0:
            r = 0 if vx >= 0.0 else 2
        else:
            r = 2 if vx < 0.0 else 3
    else:
        if vy > 0.0:
            r = 7 if vx > 0.0 else 6
        elif vy == 0.0:
            r = 7 if vx >= 0.0 else 5
        else:
            r = 5 if vx < 0.0 else 4
    x0 = roots[r, 0, 0]
    y0 = roots[r, 0, 1]
    z0 = roots[r, 0, 2]
    x1 = roots[r, 1, 0]
    y1 = roots[r, 1, 1]
    z1 = roots[r, 1, 2]
    x2 = roots[r, 2, 0]
    y2 = roots[r, 2, 1]
    z2 = roots[r, 2, 2]
    index = np.int64(r + 8)
    for _ in range(level):
        m01x, m01y, m01z = _normalized_sum(x0, y0, z0, x1, y1, z1)
        m20x, m20y, m20z = _normalized_sum(x2, y2, z2, x0, y0, z0)
        # sphgeom computes m12 only once child 0 is ruled out; computing it up
        # front gives the same value and lets the three normalisations overlap
        # (about 15% faster).
        m12x, m12y, m12z = _normalized_sum(x1, y1, z1, x2, y2, z2)
        index <<= 2
        o = _orient(vx, vy, vz, m01x, m01y, m01z, m20x, m20y, m20z, expansion)
        if o == 2:
            return UNDECIDED
        if o >= 0:
            x1, y1, z1 = m01x, m01y, m01z
            x2, y2, z2 = m20x, m20y, m20z
            continue
        o = _orient(vx, vy, vz, m12x, m12y, m12z, m01x, m01y, m01z, expansion)
        if o == 2:
            return UNDECIDED
        if o >= 0:
            x0, y0, z0 = x1, y1, z1
            x1, y1, z1 = m12x, m12y, m12z
            x2, y2, z2 = m01x, m01y, m01z
            index += 1
            continue
        o = _orient(vx, vy, vz, m20x, m20y, m20z, m12x, m12y, m12z, expansion)
        if o == 2:
            return UNDECIDED
        if o >= 0:
            x0, y0, z0 = x2, y2, z2
            x1, y1, z1 = m20x, m20y, m20z
            x2, y2, z2 = m12x, m12y, m12z
            index += 2
        else:
            x0, y0, z0 = m12x, m12y, m12z
            x1, y1, z1 = m20x, m20y, m20z
            x2, y2, z2 = m01x, m01y, m01z
            index += 3
    return index


# Serial on purpose: numba's parallel layer here is GNU OpenMP, which aborts a
# process forked after it was used (ap_proto runs its tiles in forked processes),
# and the tiles already keep every core busy.
@njit(cache=True)
def htm_index(ra: np.ndarray, dec: np.ndarray, level: int, roots: np.ndarray) -> np.ndarray:
    """HTM index of each point (degrees); `UNDECIDED` where the exact test could underflow."""
    n = ra.shape[0]
    out = np.empty(n, dtype=np.int64)
    expansion = np.empty(24, dtype=np.float64)
    for k in range(n):
        out[k] = _index_one(ra[k], dec[k], level, roots, expansion)
    return out


def root_vertices() -> np.ndarray:
    """The root triangle vertex table the kernel expects."""
    return _ROOT_VERTICES
