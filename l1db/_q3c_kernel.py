"""Numba kernel: Q3C and modified-Q3C pixel index of many (ra, dec) points at once.

A private twin of lsst-sphgeom's ``Q3cPixelization::index`` (src/Q3cPixelization.cc)
and ``Mq3cPixelization::index`` (src/Mq3cPixelization.cc), which the Python
binding only offers one point per call. It repeats the C++ arithmetic operation
by operation, so that every index is bit-for-bit the one sphgeom computes:

1. ``UnitVector3d(LonLat::fromDegrees(ra, dec))``: the longitude is wrapped like
   NormalizedAngle (2*PI itself is left alone), both angles are multiplied by
   sphgeom's RAD_PER_DEG, and the vector is (cos lon cos lat, sin lon cos lat,
   sin lat), not renormalised (`l1db.sphere.unit_vector`, as in `l1db._htm_kernel`).
2. The cube face comes from sphgeom's 64-entry table indexed by six strict
   comparisons (x > y, x > -y, x > z, x > -z, y > z, y > -z). Strict
   comparisons decide the ties, and not symmetrically: a vector exactly on a
   cube edge or corner goes to the face the table names, e.g. (1, 0, 1) to +Z
   but (-1, 0, 1) to -X, (1, 1, 0) to +Y but (1, -1, 0) to -Y, (1, 1, 1) to +Z
   but (-1, -1, -1) to -X. (Both kinds share this face geometry; only the
   face numbers differ.)
3. u, v = (p[c0] / |p[c2]|) * (+-1), (p[c1] / |p[c2]|) * (+-1) with the face's
   component and sign tables; modified Q3C then applies sphgeom's atanApprox,
   u * (4/3 - |u| / 3), with the same decimal constants.
4. Grid coordinates s = u * 2**(L-1) + 2**(L-1), clamped to [0, 2**L - 1] and
   truncated toward zero (the SSE path of the x86-64 build: max with 0, then min
   with the maximum, then cvttpd; for finite values the same as the portable
   path's order).
5. Q3C: ``face << 2L | morton(s, t)``; modified Q3C: ``(face + 10) << 2L |
   hilbert(s, t)`` with sphgeom's mortonToHilbert lookup table (src/curve.h).

No multiply-add is fused (numba does not contract without fastmath, and the
lsst-sphgeom wheel is built without FMA), so every rounding matches.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from .sphere import unit_vector

__all__: list[str] = []

_U = 255  # UNUSED entry of the face tables (never reached, see tests)

# FACE_NUM, FACE_COMP, FACE_CONST of src/Q3cPixelization.cc.
_Q3C_FACE_NUM = np.array(
    [
        3, 3, 3, 3, _U, 0, _U, _U,
        _U, _U, 5, _U, _U, _U, _U, _U,
        _U, _U, _U, 2, _U, 0, _U, 2,
        _U, _U, 5, 2, _U, _U, _U, 2,
        4, _U, _U, _U, 4, 0, _U, _U,
        4, _U, 5, _U, 4, _U, _U, _U,
        _U, _U, _U, _U, _U, 0, _U, _U,
        _U, _U, 5, _U, 1, 1, 1, 1,
    ],
    dtype=np.int64,
)  # fmt: skip
_Q3C_FACE_COMP = np.array([[1, 0, 2], [1, 2, 0], [0, 2, 1], [1, 2, 0], [0, 2, 1], [1, 0, 2]], dtype=np.int64)
_Q3C_FACE_CONST = np.array(
    [[1.0, -1.0], [1.0, 1.0], [-1.0, 1.0], [-1.0, 1.0], [1.0, 1.0], [1.0, 1.0]], dtype=np.float64
)

# The same tables of src/Mq3cPixelization.cc.
_MQ3C_FACE_NUM = np.array(
    [
        4, 4, 4, 4, _U, 3, _U, _U,
        _U, _U, 0, _U, _U, _U, _U, _U,
        _U, _U, _U, 2, _U, 3, _U, 2,
        _U, _U, 0, 2, _U, _U, _U, 2,
        5, _U, _U, _U, 5, 3, _U, _U,
        5, _U, 0, _U, 5, _U, _U, _U,
        _U, _U, _U, _U, _U, 3, _U, _U,
        _U, _U, 0, _U, 1, 1, 1, 1,
    ],
    dtype=np.int64,
)  # fmt: skip
_MQ3C_FACE_COMP = np.array([[0, 1, 2], [1, 2, 0], [2, 0, 1], [0, 1, 2], [1, 2, 0], [2, 0, 1]], dtype=np.int64)
_MQ3C_FACE_CONST = np.array(
    [[1.0, 1.0], [1.0, 1.0], [1.0, -1.0], [-1.0, -1.0], [-1.0, -1.0], [-1.0, 1.0]], dtype=np.float64
)

# HILBERT_LUT_3 of src/curve.h (mortonToHilbert): 3 levels (6 bits) per lookup,
# the upper 2 bits of an entry carry the curve state into the next lookup.
_HILBERT_LUT_3 = np.array(
    [
        0x40, 0xc3, 0x01, 0x02, 0x04, 0x45, 0x87, 0x46, 0x8e, 0x8d, 0x4f, 0xcc, 0x08, 0x49, 0x8b, 0x4a,
        0xfa, 0x3b, 0xf9, 0xb8, 0x7c, 0xff, 0x3d, 0x3e, 0xf6, 0x37, 0xf5, 0xb4, 0xb2, 0xb1, 0x73, 0xf0,
        0x10, 0x51, 0x93, 0x52, 0xde, 0x1f, 0xdd, 0x9c, 0x54, 0xd7, 0x15, 0x16, 0x58, 0xdb, 0x19, 0x1a,
        0x20, 0x61, 0xa3, 0x62, 0xee, 0x2f, 0xed, 0xac, 0x64, 0xe7, 0x25, 0x26, 0x68, 0xeb, 0x29, 0x2a,
        0x00, 0x41, 0x83, 0x42, 0xce, 0x0f, 0xcd, 0x8c, 0x44, 0xc7, 0x05, 0x06, 0x48, 0xcb, 0x09, 0x0a,
        0x50, 0xd3, 0x11, 0x12, 0x14, 0x55, 0x97, 0x56, 0x9e, 0x9d, 0x5f, 0xdc, 0x18, 0x59, 0x9b, 0x5a,
        0xba, 0xb9, 0x7b, 0xf8, 0xb6, 0xb5, 0x77, 0xf4, 0x3c, 0x7d, 0xbf, 0x7e, 0xf2, 0x33, 0xf1, 0xb0,
        0x60, 0xe3, 0x21, 0x22, 0x24, 0x65, 0xa7, 0x66, 0xae, 0xad, 0x6f, 0xec, 0x28, 0x69, 0xab, 0x6a,
        0xaa, 0xa9, 0x6b, 0xe8, 0xa6, 0xa5, 0x67, 0xe4, 0x2c, 0x6d, 0xaf, 0x6e, 0xe2, 0x23, 0xe1, 0xa0,
        0x9a, 0x99, 0x5b, 0xd8, 0x96, 0x95, 0x57, 0xd4, 0x1c, 0x5d, 0x9f, 0x5e, 0xd2, 0x13, 0xd1, 0x90,
        0x70, 0xf3, 0x31, 0x32, 0x34, 0x75, 0xb7, 0x76, 0xbe, 0xbd, 0x7f, 0xfc, 0x38, 0x79, 0xbb, 0x7a,
        0xca, 0x0b, 0xc9, 0x88, 0x4c, 0xcf, 0x0d, 0x0e, 0xc6, 0x07, 0xc5, 0x84, 0x82, 0x81, 0x43, 0xc0,
        0xea, 0x2b, 0xe9, 0xa8, 0x6c, 0xef, 0x2d, 0x2e, 0xe6, 0x27, 0xe5, 0xa4, 0xa2, 0xa1, 0x63, 0xe0,
        0x30, 0x71, 0xb3, 0x72, 0xfe, 0x3f, 0xfd, 0xbc, 0x74, 0xf7, 0x35, 0x36, 0x78, 0xfb, 0x39, 0x3a,
        0xda, 0x1b, 0xd9, 0x98, 0x5c, 0xdf, 0x1d, 0x1e, 0xd6, 0x17, 0xd5, 0x94, 0x92, 0x91, 0x53, 0xd0,
        0x8a, 0x89, 0x4b, 0xc8, 0x86, 0x85, 0x47, 0xc4, 0x0c, 0x4d, 0x8f, 0x4e, 0xc2, 0x03, 0xc1, 0x80,
    ],
    dtype=np.int64,
)  # fmt: skip

MAX_LEVEL = 30
"""sphgeom's Q3cPixelization::MAX_LEVEL and Mq3cPixelization::MAX_LEVEL."""


@njit(cache=True, inline="always")
def _face_table_index(x, y, z):
    """sphgeom's faceNumber() table index: six strict comparisons."""
    index = 0
    if x > y:
        index += 32
    if x > -y:
        index += 16
    if x > z:
        index += 8
    if x > -z:
        index += 4
    if y > z:
        index += 2
    if y > -z:
        index += 1
    return index


@njit(cache=True, inline="always")
def _grid(u, grid_scale, st_max):
    """faceToGrid for one coordinate: scale, clamp (max with 0, min with st_max), truncate."""
    s = u * grid_scale + grid_scale
    s = max(s, 0.0)
    s = min(s, st_max)
    return np.int64(s)


@njit(cache=True, inline="always")
def _morton(x, y):
    """sphgeom's mortonIndex(x, y): bits of x at even, bits of y at odd positions."""
    a = np.int64(x)
    b = np.int64(y)
    b = (b | (b << 16)) & 0x0000FFFF0000FFFF
    a = (a | (a << 16)) & 0x0000FFFF0000FFFF
    b = (b | (b << 8)) & 0x00FF00FF00FF00FF
    a = (a | (a << 8)) & 0x00FF00FF00FF00FF
    b = (b | (b << 4)) & 0x0F0F0F0F0F0F0F0F
    a = (a | (a << 4)) & 0x0F0F0F0F0F0F0F0F
    b = (b | (b << 2)) & 0x3333333333333333
    a = (a | (a << 2)) & 0x3333333333333333
    b = (b | (b << 1)) & 0x5555555555555555
    a = (a | (a << 1)) & 0x5555555555555555
    return a | (b << 1)


@njit(cache=True, inline="always")
def _morton_to_hilbert(z, level, lut):
    """sphgeom's mortonToHilbert(z, level): three levels per table lookup."""
    h = np.int64(0)
    state = np.int64(0)
    m = 2 * level
    while m >= 6:
        m -= 6
        j = lut[state | ((z >> m) & 0x3F)]
        h = (h << 6) | (j & 0x3F)
        state = j & 0xC0
    if m != 0:
        r = 6 - m
        j = lut[state | ((z << r) & 0x3F)]
        h = (h << m) | ((j & 0x3F) >> r)
    return h


@njit(cache=True, inline="always")
def _vector_index(x, y, z, level, face_num, face_comp, face_const, modified, lut):
    """Q3cPixelization::index (``modified``: Mq3cPixelization::index) of the vector (x, y, z)."""
    face = face_num[_face_table_index(x, y, z)]
    # p(FACE_COMP[face][i]) without an array: component number -> value.
    c0 = face_comp[face, 0]
    c1 = face_comp[face, 1]
    c2 = face_comp[face, 2]
    p0 = x if c0 == 0 else (y if c0 == 1 else z)
    p1 = x if c1 == 0 else (y if c1 == 1 else z)
    w = abs(x if c2 == 0 else (y if c2 == 1 else z))
    u = (p0 / w) * face_const[face, 0]
    v = (p1 / w) * face_const[face, 1]
    if modified:
        # atanApprox, same decimal constants as sphgeom.
        u = u * (1.3333333333333333 - 0.3333333333333333 * abs(u))
        v = v * (1.3333333333333333 - 0.3333333333333333 * abs(v))
    # GRID_SCALE[level] = 2**(level-1) and ST_MAX[level] = 2**level - 1, exact doubles.
    grid_scale = math.ldexp(1.0, level - 1)
    st_max = math.ldexp(1.0, level) - 1.0
    curve = _morton(_grid(u, grid_scale, st_max), _grid(v, grid_scale, st_max))
    if modified:
        return (np.int64(face + 10) << (2 * level)) | _morton_to_hilbert(curve, level, lut)
    return (np.int64(face) << (2 * level)) | curve


@njit(cache=True)
def _index_loop(ra, dec, level, face_num, face_comp, face_const, modified, lut):
    n = ra.shape[0]
    out = np.empty(n, dtype=np.int64)
    for k in range(n):
        x, y, z = unit_vector(ra[k], dec[k])
        out[k] = _vector_index(x, y, z, level, face_num, face_comp, face_const, modified, lut)
    return out


@njit(cache=True)
def _vector_index_loop(xyz, level, face_num, face_comp, face_const, modified, lut):
    n = xyz.shape[0]
    out = np.empty(n, dtype=np.int64)
    for k in range(n):
        out[k] = _vector_index(xyz[k, 0], xyz[k, 1], xyz[k, 2], level, face_num, face_comp, face_const, modified, lut)
    return out


# Serial on purpose, like `l1db._htm_kernel.htm_index`: numba's parallel layer
# here is GNU OpenMP, which aborts a process forked after it was used.
def q3c_index(ra: np.ndarray, dec: np.ndarray, level: int) -> np.ndarray:
    """Q3C index (sphgeom's Q3cPixelization(level).index) of each point in degrees.

    ``ra`` and ``dec`` are contiguous 1-D float64 arrays; ``level`` 0 to 30.
    """
    return _index_loop(ra, dec, level, _Q3C_FACE_NUM, _Q3C_FACE_COMP, _Q3C_FACE_CONST, False, _HILBERT_LUT_3)


def mq3c_index(ra: np.ndarray, dec: np.ndarray, level: int) -> np.ndarray:
    """Modified-Q3C index (sphgeom's Mq3cPixelization(level).index) of each point in degrees.

    ``ra`` and ``dec`` are contiguous 1-D float64 arrays; ``level`` 0 to 29 (at
    level 30 the indices reach 2**64 and do not fit int64).
    """
    return _index_loop(ra, dec, level, _MQ3C_FACE_NUM, _MQ3C_FACE_COMP, _MQ3C_FACE_CONST, True, _HILBERT_LUT_3)


def vector_index(xyz: np.ndarray, level: int, modified: bool) -> np.ndarray:
    """Q3C or modified-Q3C index of unit vectors, rows of an (n, 3) float64 array.

    For tests: exact ties (cube edges and corners) cannot be reached from
    degrees, but can be as vectors.
    """
    if modified:
        tables = (_MQ3C_FACE_NUM, _MQ3C_FACE_COMP, _MQ3C_FACE_CONST)
    else:
        tables = (_Q3C_FACE_NUM, _Q3C_FACE_COMP, _Q3C_FACE_CONST)
    return _vector_index_loop(np.ascontiguousarray(xyz, dtype=np.float64), level, *tables, modified, _HILBERT_LUT_3)
