"""Positional association of DiaSources with DiaObjects.

Each source is matched to the nearest object within a radius. Positions become
unit vectors, so the match is exact on the whole sphere (poles, RA = 0 seam).
Objects are bucketed in a 3-d grid of cubes whose side is the chord of the
match radius; a source then needs only the 27 cubes around its own, found by
a merge walk over the objects' sorted cube keys (a numba kernel: the
per-source scan of a variable number of candidates is a loop numpy cannot
express without materialising every candidate pair).

One object takes at most one source per visit. When several sources pick the
same object the nearest source keeps it (ties: the lower source index) and the
others are left unmatched (-1), so that they start new DiaObjects; they are
not offered their second-nearest object.
"""

from __future__ import annotations

import logging

import numba
import numpy as np

from l1db.sphere import radec_to_xyz

__all__ = ["associate", "nearest_objects"]

_LOG = logging.getLogger(__name__)

_ARCSEC = np.pi / (180.0 * 3600.0)
# Cube indices per axis fit in 21 bits, so that a 3-d key fits in an int64.
_AXIS_BITS = 21
_AXIS_CELLS = 1 << _AXIS_BITS


@numba.njit(cache=True, nogil=True)
def _cell_keys(x, y, z, inv_cell):
    n = x.size
    keys = np.empty(n, dtype=np.int64)
    for i in range(n):
        ix = np.int64((x[i] + 1.0) * inv_cell)
        iy = np.int64((y[i] + 1.0) * inv_cell)
        iz = np.int64((z[i] + 1.0) * inv_cell)
        keys[i] = (ix << 42) | (iy << 21) | iz
    return keys


@numba.njit(cache=True, nogil=True)
def _nearest_kernel(skeys, sorder, sx, sy, sz, okeys, oorder, ox, oy, oz, r2):
    # Objects come sorted by cube key (okeys ascending; ox, oy, oz in that
    # order; oorder maps back to input indices). Sources are visited in key
    # order (sorder): a neighbour cube's key is then the source's key plus a
    # constant, so each of the 9 (x, y) neighbour columns keeps a cursor into
    # okeys that only moves forward, instead of a binary search per source.
    n = skeys.size
    m = okeys.size
    best = np.full(n, -1, dtype=np.int64)
    bestd2 = np.full(n, np.inf)
    top = np.int64(_AXIS_CELLS - 1)
    cursor = np.zeros(9, dtype=np.int64)
    for t in range(n):
        i = sorder[t]
        key = skeys[i]
        ix = key >> 42
        iy = (key >> 21) & top
        iz = key & top
        zlo = max(iz - 1, 0)
        zhi = min(iz + 1, top)
        x, y, z = sx[i], sy[i], sz[i]
        c = -1
        for jx in range(ix - 1, ix + 2):
            for jy in range(iy - 1, iy + 2):
                c += 1
                if jx < 0 or jx > top or jy < 0 or jy > top:
                    continue
                base = (jx << 42) | (jy << 21)
                lo = base | zlo
                hi = base | zhi
                k = cursor[c]
                if k > 0 and okeys[k - 1] >= lo:
                    # Clamping at the grid edge broke monotony: search afresh.
                    k = np.searchsorted(okeys, lo)
                while k < m and okeys[k] < lo:
                    k += 1
                cursor[c] = k
                while k < m and okeys[k] <= hi:
                    dx = ox[k] - x
                    dy = oy[k] - y
                    dz = oz[k] - z
                    d2 = dx * dx + dy * dy + dz * dz
                    j = oorder[k]
                    if d2 <= r2 and (d2 < bestd2[i] or (d2 == bestd2[i] and j < best[i])):
                        bestd2[i] = d2
                        best[i] = j
                    k += 1
    return best, bestd2


def _as_positions(ra: np.ndarray, dec: np.ndarray, what: str) -> tuple[np.ndarray, np.ndarray]:
    ra = np.ascontiguousarray(ra, dtype=np.float64)
    dec = np.ascontiguousarray(dec, dtype=np.float64)
    if ra.ndim != 1 or ra.shape != dec.shape:
        raise ValueError(f"{what} ra and dec must be 1-d arrays of the same length")
    return ra, dec


def nearest_objects(
    src_ra: np.ndarray,
    src_dec: np.ndarray,
    obj_ra: np.ndarray,
    obj_dec: np.ndarray,
    radius_arcsec: float = 1.0,
) -> tuple[np.ndarray, np.ndarray]:
    """For each source, the nearest object within ``radius_arcsec``.

    Several sources may get the same object; `associate` resolves that.

    Parameters
    ----------
    src_ra, src_dec : `numpy.ndarray`
        Source positions, degrees.
    obj_ra, obj_dec : `numpy.ndarray`
        Object positions, degrees.
    radius_arcsec : `float`
        Match radius, > 0.

    Returns
    -------
    index : `numpy.ndarray` of `numpy.int64`
        Index into the objects of each source's nearest object, -1 if none is
        within the radius. Equidistant objects: the lower index.
    chord2 : `numpy.ndarray` of `numpy.float64`
        Squared chord length (unit sphere) to that object; inf if none.
    """
    src_ra, src_dec = _as_positions(src_ra, src_dec, "source")
    obj_ra, obj_dec = _as_positions(obj_ra, obj_dec, "object")
    if not radius_arcsec > 0:
        raise ValueError(f"match radius must be positive, got {radius_arcsec}")
    if src_ra.size == 0 or obj_ra.size == 0:
        return np.full(src_ra.size, -1, dtype=np.int64), np.full(src_ra.size, np.inf)
    radius = min(radius_arcsec * _ARCSEC, np.pi)
    chord = 2.0 * np.sin(radius / 2.0)
    # Slightly larger cubes than the radius, so rounding never puts two points
    # within the radius more than one cube apart; bounded below so that cube
    # indices fit in their bits.
    cell = max(chord * (1.0 + 1e-9), 2.0 / (_AXIS_CELLS - 2))
    inv_cell = 1.0 / cell
    # Contiguous components: the kernels take 1-d C arrays.
    ox, oy, oz = np.ascontiguousarray(radec_to_xyz(obj_ra, obj_dec).T)
    sx, sy, sz = np.ascontiguousarray(radec_to_xyz(src_ra, src_dec).T)
    okeys = _cell_keys(ox, oy, oz, inv_cell)
    skeys = _cell_keys(sx, sy, sz, inv_cell)
    oorder = np.argsort(okeys)
    sorder = np.argsort(skeys)
    return _nearest_kernel(
        skeys, sorder, sx, sy, sz,
        okeys[oorder], oorder, ox[oorder], oy[oorder], oz[oorder],
        chord * chord,
    )


def associate(
    src_ra: np.ndarray,
    src_dec: np.ndarray,
    obj_ra: np.ndarray,
    obj_dec: np.ndarray,
    radius_arcsec: float = 1.0,
) -> np.ndarray:
    """Match each source to the nearest object within ``radius_arcsec``.

    Parameters
    ----------
    src_ra, src_dec : `numpy.ndarray`
        Positions of the DiaSources of this visit, degrees.
    obj_ra, obj_dec : `numpy.ndarray`
        Positions of the DiaObjects in the field, degrees.
    radius_arcsec : `float`
        Match radius, > 0.

    Returns
    -------
    index : `numpy.ndarray` of `numpy.int64`
        For each source, the index into the objects of its match, or -1.
        No object index appears twice: when several sources are nearest to one
        object, the nearest source keeps it (ties: lower source index) and the
        others get -1 (they start new DiaObjects).
    """
    index, chord2 = nearest_objects(src_ra, src_dec, obj_ra, obj_dec, radius_arcsec)
    matched = np.flatnonzero(index >= 0)
    if matched.size < 2:
        return index
    # Among the sources of one object, sorted by distance then source index,
    # only the first keeps it.
    order = np.lexsort((matched, chord2[matched], index[matched]))
    srt = matched[order]
    obj = index[srt]
    losers = srt[1:][obj[1:] == obj[:-1]]
    index[losers] = -1
    return index
