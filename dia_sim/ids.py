"""Unique 64-bit ids for the rows a visit creates.

An id packs the visit, the tile and a running number::

    id = (visit << 32) | (tile << 20) | i        0 <= i < 2**20, 0 <= tile < 4096

so ids made by different visits or by different tiles of one visit never
collide, and a run that resumes after the last stored visit makes no id that
is already in the database. The same scheme serves new diaObjectIds,
diaSourceIds and diaForcedSourceIds (each unique within its own table).
"""

from __future__ import annotations

import logging

import numpy as np

__all__ = ["MAX_ROWS", "MAX_TILES", "MAX_VISIT", "make_ids", "split_ids"]

_LOG = logging.getLogger(__name__)

_ROW_BITS = 20
_TILE_BITS = 12
_VISIT_SHIFT = _ROW_BITS + _TILE_BITS

#: Largest number of ids one (visit, tile) can make, plus one.
MAX_ROWS = 1 << _ROW_BITS
#: Largest tile number, plus one.
MAX_TILES = 1 << _TILE_BITS
#: Largest visit id, plus one (keeps every id a positive signed 64-bit integer).
MAX_VISIT = 1 << (63 - _VISIT_SHIFT)


def make_ids(visit: int, tile: int, n: int) -> np.ndarray:
    """Return ``n`` ids unique to ``visit`` and ``tile``.

    Parameters
    ----------
    visit : `int`
        Visit id, ``0 <= visit < MAX_VISIT`` (2**31).
    tile : `int`
        Tile (or detector) number within the visit, ``0 <= tile < MAX_TILES`` (4096).
    n : `int`
        How many ids, ``0 <= n < MAX_ROWS`` (2**20).

    Returns
    -------
    ids : `numpy.ndarray` of `numpy.int64`
        ``(visit << 32) | (tile << 20) | arange(n)``.

    Raises
    ------
    ValueError
        If an argument is outside its range.
    """
    visit, tile, n = int(visit), int(tile), int(n)
    if not 0 <= visit < MAX_VISIT:
        raise ValueError(f"visit {visit} outside [0, {MAX_VISIT})")
    if not 0 <= tile < MAX_TILES:
        raise ValueError(f"tile {tile} outside [0, {MAX_TILES})")
    if not 0 <= n < MAX_ROWS:
        raise ValueError(f"cannot make {n} ids for one visit and tile; at most {MAX_ROWS - 1}")
    base = (visit << _VISIT_SHIFT) | (tile << _ROW_BITS)
    return np.arange(base, base + n, dtype=np.int64)


def split_ids(ids: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Inverse of `make_ids`: return the (visit, tile, row number) arrays of ``ids``."""
    ids = np.asarray(ids, dtype=np.int64)
    return ids >> _VISIT_SHIFT, (ids >> _ROW_BITS) & (MAX_TILES - 1), ids & (MAX_ROWS - 1)
