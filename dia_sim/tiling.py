"""How a visit's field is cut into tiles: N x N squares, or the camera's 189 detectors.

The ``divide`` option of ap_proto (validated by `l1db.config.parse_divide`)
is either an integer N or ``"camera"``; `tiling` turns it into a `Tiling`.
A tiling lives in the gnomonic (tangent-plane) projection of the field, in
units of the field circle's radius there (``tan r``: the circle is the unit
disc), so it needs no sky position; `dia_sim.field` puts it on the sky.
Every tile is a rectangle of that plane (a spherical convex polygon on the
sky), and every point of the unit disc belongs to exactly one tile,
boundaries included.

**N x N squares** (``divide = N``): squares of side ``2 / N`` covering the
square ``[-1, 1]^2``; ``tile = iy * N + ix``, ``ix`` growing to the east and
``iy`` to the north, both from 0.

**The camera** (``divide = camera``): the survey camera's focal plane, 21
science rafts of 3 x 3 detectors on a 5 x 5 raft grid without its four
corners, i.e. a 15 x 15 grid of square detectors without the four corner
3 x 3 blocks: 189 detectors. The circle must be covered, and the corner
rafts missing make the grid's inner corners at ``(+-4.5 s, +-4.5 s)`` (side
``s``) the points nearest the centre that no detector covers: the unit disc
is covered if and only if ``s >= 1 / (4.5 sqrt 2)``. The side is that
smallest value, `CAMERA_DETECTOR_SIDE` (0.157 of the radius: 0.275 degrees for
the default 3.5-degree field): the circle passes through those four inner
corners, and every point of the field lies on a detector. The grid is then
wider than the circle (7.5 s = 1.18 radii from the centre to an edge), so
44 detectors (`CAMERA_EMPTY_DETECTORS`: the outermost row or column of
every edge raft, 36, and the two end detectors of the row or column next to
it, 8) lie wholly outside it and see no source, as the corner squares of a
fine N x N grid do.

Detectors are numbered as LSSTCam's science detectors are: raft by raft in
the order of their names R01, R02, R03, R10, ..., R14, R20, ..., R43, and
within a raft S00, S01, ..., S22, so that ``detector = 9 * raft + 3 * row +
column`` (R01_S00 is 0, the centre R22_S11 is 94, R43_S22 is 188). A name
``Rab`` or ``Sab`` is row ``a`` (growing to the north), column ``b``
(growing to the east).

Example::

    cam = tiling("camera")
    cam.n_tiles                         # 189
    cam.tile_of(np.array([0.0]), np.array([0.0]))   # [94]
    cam.bounds(94)                      # (-s/2, s/2, -s/2, s/2)
"""

from __future__ import annotations

import math

import numpy as np

from .ids import MAX_TILES

__all__ = [
    "CAMERA",
    "CAMERA_DETECTORS",
    "CAMERA_DETECTOR_SIDE",
    "CAMERA_EMPTY_DETECTORS",
    "Tiling",
    "GridTiling",
    "CameraTiling",
    "tiling",
    "divide_of",
    "parse_divide",
    "DIVIDE_ALLOWED",
]

#: The ``divide`` value of the camera's detectors.
CAMERA = "camera"
#: Detectors of a camera grid side (15: 5 rafts of 3) and of one raft side.
_GRID = 15
_RAFT = 3
#: Side of a detector in units of the field circle's tangent-plane radius: the
#: smallest with which the 189 detectors cover the circle.
CAMERA_DETECTOR_SIDE = 1.0 / (4.5 * math.sqrt(2.0))


class Tiling:
    """A cut of the unit disc of the tangent plane into rectangular tiles.

    Attributes
    ----------
    n_tiles : `int`
        Number of tiles, numbered ``0 .. n_tiles - 1``.
    divide : `int` or `str`
        The ``divide`` option value this tiling stands for.
    """

    n_tiles: int
    divide: int | str

    def bounds(self, tile: int) -> tuple[float, float, float, float]:
        """Rectangle of ``tile``: ``(x_min, x_max, y_min, y_max)``, x to the east, y to the north."""
        raise NotImplementedError

    def tile_of(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Tile of each point of the unit disc (int64; the caller masks the points outside it).

        Every point of the disc gets exactly one tile, boundaries included;
        NaN coordinates give -1.
        """
        raise NotImplementedError

    def check_tile(self, tile: int) -> int:
        """``tile`` as an `int`, or `ValueError` if it is not a tile number."""
        if int(tile) != tile or not 0 <= tile < self.n_tiles:
            raise ValueError(f"tile must be in 0..{self.n_tiles - 1}, got {tile}")
        return int(tile)


def _cells(coord: np.ndarray, origin: float, side: float, n: int) -> np.ndarray:
    """Cell index along one axis of a grid of ``n`` cells of ``side`` from ``origin`` (clipped), NaN kept."""
    with np.errstate(invalid="ignore"):
        return np.clip(np.floor((coord - origin) / side), 0, n - 1)


class GridTiling(Tiling):
    """``n x n`` squares covering ``[-1, 1]^2`` (``divide = n``)."""

    def __init__(self, n: int) -> None:
        if int(n) != n or n < 1:
            raise ValueError(f"n_divide must be a positive integer, got {n}")
        self.n = int(n)
        self.divide = self.n
        self.n_tiles = self.n * self.n
        self._side = 2.0 / self.n

    def bounds(self, tile: int) -> tuple[float, float, float, float]:
        tile = self.check_tile(tile)
        x0 = -1.0 + (tile % self.n) * self._side
        y0 = -1.0 + (tile // self.n) * self._side
        return x0, x0 + self._side, y0, y0 + self._side

    def tile_of(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        ix = _cells(x, -1.0, self._side, self.n)
        iy = _cells(y, -1.0, self._side, self.n)
        return np.nan_to_num(iy * self.n + ix, nan=-1).astype(np.int64)


def _camera_cell_table() -> np.ndarray:
    """Detector number of each cell ``[row, column]`` of the 15 x 15 grid; -1 in the corner rafts."""
    table = np.full((_GRID, _GRID), -1, dtype=np.int64)
    raft = 0
    for raft_row in range(_GRID // _RAFT):
        for raft_col in range(_GRID // _RAFT):
            if raft_row in (0, 4) and raft_col in (0, 4):
                continue
            for row in range(_RAFT):
                for col in range(_RAFT):
                    table[_RAFT * raft_row + row, _RAFT * raft_col + col] = 9 * raft + _RAFT * row + col
            raft += 1
    return table


_CAMERA_CELLS = _camera_cell_table()
#: Number of science detectors (tiles) of the camera.
CAMERA_DETECTORS = int((_CAMERA_CELLS >= 0).sum())
#: (row, column) grid cell of each detector.
_CAMERA_CELL_OF = np.argwhere(_CAMERA_CELLS >= 0)[np.argsort(_CAMERA_CELLS[_CAMERA_CELLS >= 0])]


class CameraTiling(Tiling):
    """The camera's 189 science detectors (``divide = camera``); see the module docstring."""

    def __init__(self) -> None:
        self.divide = CAMERA
        self.n_tiles = CAMERA_DETECTORS
        self.side = CAMERA_DETECTOR_SIDE
        self._origin = -_GRID / 2.0 * self.side

    def bounds(self, tile: int) -> tuple[float, float, float, float]:
        row, col = _CAMERA_CELL_OF[self.check_tile(tile)]
        x0 = self._origin + col * self.side
        y0 = self._origin + row * self.side
        return x0, x0 + self.side, y0, y0 + self.side

    def tile_of(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        col = _cells(x, self._origin, self.side, _GRID)
        row = _cells(y, self._origin, self.side, _GRID)
        nan = np.isnan(col) | np.isnan(row)
        col = np.nan_to_num(col).astype(np.int64)
        row = np.nan_to_num(row).astype(np.int64)
        # Only the four points where the circle touches the corner rafts (and
        # their rounding neighbours) fall in a corner raft: give them the
        # detector beside, whose edge they are on.
        corner = (_CAMERA_CELLS[row, col] < 0)
        col = np.where(corner, np.clip(col, _RAFT, _GRID - 1 - _RAFT), col)
        return np.where(nan, -1, _CAMERA_CELLS[row, col])


def _empty_detectors() -> int:
    """Detectors wholly outside the unit disc (their nearest point is at distance >= 1)."""
    cam = CameraTiling()
    count = 0
    for tile in range(cam.n_tiles):
        x0, x1, y0, y1 = cam.bounds(tile)
        count += math.hypot(max(x0, 0.0, -x1), max(y0, 0.0, -y1)) >= 1.0
    return count


#: Detectors that lie wholly outside the field circle (see the module docstring).
CAMERA_EMPTY_DETECTORS = _empty_detectors()


#: The largest N of N x N squares: tile numbers must fit the IDs' tile field.
MAX_DIVIDE = math.isqrt(MAX_TILES)
#: The allowed values of ``divide``, in words.
DIVIDE_ALLOWED = f"an integer from 1 to {MAX_DIVIDE}, or camera"


def parse_divide(value: int | str) -> int | str:
    """Value of the ``divide`` option: an integer from 1 to 64, or ``"camera"``; `ValueError` otherwise."""
    text = str(value).strip()
    if text.lower() == CAMERA:
        return CAMERA
    try:
        n = int(text)
    except ValueError:
        raise ValueError(f"bad value {text!r}; allowed: {DIVIDE_ALLOWED}") from None
    if not 1 <= n <= MAX_DIVIDE:
        raise ValueError(f"bad value {n}; allowed: {DIVIDE_ALLOWED}")
    return n


def tiling(divide: int | str) -> Tiling:
    """The tiling of a ``divide`` option value: an integer N (N x N squares) or ``"camera"``.

    Raises
    ------
    ValueError
        For any other value (the config and the command line check it
        before, with `parse_divide`).
    """
    if divide == CAMERA:
        return CameraTiling()
    if isinstance(divide, bool) or not isinstance(divide, (int, np.integer)):
        raise ValueError(f"divide must be a positive integer or {CAMERA!r}, got {divide!r}")
    return GridTiling(int(divide))


def divide_of(n_tiles: int) -> int | str | None:
    """The ``divide`` value that makes ``n_tiles`` tiles (for messages about a stored visit), or `None`."""
    if n_tiles == CAMERA_DETECTORS:
        return CAMERA
    n = math.isqrt(n_tiles)
    return n if n >= 1 and n * n == n_tiles else None
