"""A visit's field of view and its division into tiles: N x N squares or the camera's detectors.

The field is a circle (a spherical cap) of diameter ``fov_deg`` centred on the
pointing. It is cut into tiles in the gnomonic (tangent-plane) projection
centred on the pointing, where the circle has radius ``tan r``: for
``--divide N`` into N x N squares of side ``2 tan(r) / N`` covering the
square ``[-tan r, tan r]^2``, for ``--divide camera`` into the survey camera's
189 detectors (`dia_sim.tiling` has the layouts, their numbering and the
detector size). Straight lines of the gnomonic projection are great circles,
so each tile is exactly a spherical convex polygon, which is what the
database region query gets. Every point of the circle lies in exactly one
tile, boundaries included.

Example::

    tiles = field_tiles(ra, dec, 3.5, n_divide=5)      # or n_divide="camera"
    inside = tiles[7].contains(src_ra, src_dec)
"""

from __future__ import annotations

import logging
import math

import numpy as np
from lsst import sphgeom

from l1db.sphere import radec_to_xyz, xyz_to_radec

from ._sphere import cap_solid_angle, sample_cap, tangent_basis
from .tiling import tiling

__all__ = ["FieldTile", "field_tiles"]

_LOG = logging.getLogger(__name__)

# Outward margin (radians, ~0.02 mas) added to the sphgeom regions so that
# they contain every point `contains` assigns to the tile despite rounding:
# the region must be a superset for the database query.
_REGION_PAD = 1e-10

# Gauss-Legendre nodes per smooth piece of the area integral; the pieces are
# analytic, so this is exact to rounding.
_GAUSS_NODES = 24


class FieldTile:
    """One tile of a visit's field (the whole field for ``n_divide=1``).

    Parameters
    ----------
    center_ra, center_dec : `float`
        Pointing, degrees.
    fov_deg : `float`
        Diameter of the field circle, degrees (0 < fov_deg < 180).
    n_divide : `int` or `str`, optional
        The ``divide`` option: the field is split into ``n_divide x
        n_divide`` tiles, or into the camera's 189 detectors for ``"camera"``.
    tile : `int`, optional
        Tile (detector) number, ``0 .. n_tiles - 1``.
    """

    def __init__(
        self, center_ra: float, center_dec: float, fov_deg: float, n_divide: int | str = 1, tile: int = 0
    ) -> None:
        if not (0.0 < fov_deg < 180.0):
            raise ValueError(f"field of view must be between 0 and 180 degrees, got {fov_deg}")
        if not -90.0 <= center_dec <= 90.0:
            raise ValueError(f"pointing Dec must be within [-90, 90], got {center_dec}")
        self._tiling = tiling(n_divide)
        self.tile = self._tiling.check_tile(tile)
        self.center_ra = float(center_ra) % 360.0
        self.center_dec = float(center_dec)
        self.fov_deg = float(fov_deg)
        self.n_divide = self._tiling.divide
        self._radius = math.radians(self.fov_deg) / 2.0
        self._cos_radius = math.cos(self._radius)
        self._half = math.tan(self._radius)  # circle radius in the tangent plane
        self._center, self._east, self._north = tangent_basis(self.center_ra, self.center_dec)
        self._region: sphgeom.Region | None = None
        self._area_fraction: float | None = None

    def __repr__(self) -> str:
        return (
            f"FieldTile(center_ra={self.center_ra!r}, center_dec={self.center_dec!r}, "
            f"fov_deg={self.fov_deg!r}, n_divide={self.n_divide!r}, tile={self.tile})"
        )

    @property
    def radius_deg(self) -> float:
        """Radius of the field circle, degrees."""
        return self.fov_deg / 2.0

    @property
    def n_tiles(self) -> int:
        """Number of tiles of the field."""
        return self._tiling.n_tiles

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """Tile square in the tangent plane: ``(xi_min, xi_max, eta_min, eta_max)``."""
        x0, x1, y0, y1 = self._tiling.bounds(self.tile)
        h = self._half
        return x0 * h, x1 * h, y0 * h, y1 * h

    @property
    def region(self) -> sphgeom.Region:
        """Region for database queries: a superset of the points in the tile.

        The field `~lsst.sphgeom.Circle` for a single tile, otherwise the tile
        square as a `~lsst.sphgeom.ConvexPolygon`; both padded outwards by
        ~0.02 mas so that rounding never puts a tile point outside.
        """
        if self._region is None:
            self._region = self._make_region()
        return self._region

    def _make_region(self) -> sphgeom.Region:
        center = sphgeom.UnitVector3d(*self._center)
        if self.n_tiles == 1:
            return sphgeom.Circle(center, sphgeom.Angle(self._radius + _REGION_PAD))
        xi0, xi1, eta0, eta1 = self.bounds
        xi0, eta0 = xi0 - _REGION_PAD, eta0 - _REGION_PAD
        xi1, eta1 = xi1 + _REGION_PAD, eta1 + _REGION_PAD
        corners = []
        for xi, eta in ((xi0, eta0), (xi1, eta0), (xi1, eta1), (xi0, eta1)):
            v = self._center + xi * self._east + eta * self._north
            corners.append(sphgeom.UnitVector3d(*v))
        return sphgeom.ConvexPolygon(corners)

    def tangent_coords(self, ra: np.ndarray, dec: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Gnomonic coordinates of points and their cosine distance to the centre.

        Returns
        -------
        xi, eta : `numpy.ndarray`
            Tangent-plane coordinates (east, north), meaningful where ``cos_dist > 0``.
        cos_dist : `numpy.ndarray`
            Cosine of the angular distance to the pointing.
        """
        xyz = radec_to_xyz(np.atleast_1d(ra), np.atleast_1d(dec))
        return self._tangent_xyz(xyz)

    def _tangent_xyz(self, xyz: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        cos_dist = xyz @ self._center
        with np.errstate(divide="ignore", invalid="ignore"):
            xi = (xyz @ self._east) / cos_dist
            eta = (xyz @ self._north) / cos_dist
        return xi, eta, cos_dist

    def tile_of(self, ra: np.ndarray, dec: np.ndarray) -> np.ndarray:
        """Tile number of each point, or -1 for points outside the field circle."""
        return self._tile_of_xyz(radec_to_xyz(np.atleast_1d(ra), np.atleast_1d(dec)))

    def _tile_of_xyz(self, xyz: np.ndarray) -> np.ndarray:
        xi, eta, cos_dist = self._tangent_xyz(xyz)
        inside = cos_dist >= self._cos_radius
        return np.where(inside, self._tiling.tile_of(xi / self._half, eta / self._half), -1)

    def contains(self, ra: np.ndarray, dec: np.ndarray) -> np.ndarray:
        """Whether points (degrees) are inside the field circle and in this tile."""
        return self.tile_of(ra, dec) == self.tile

    def contains_xyz(self, xyz: np.ndarray) -> np.ndarray:
        """Like `contains`, for unit vectors of shape ``(n, 3)``."""
        return self._tile_of_xyz(xyz) == self.tile

    def sample_uniform(self, rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
        """``n`` points uniform on the sphere within this tile of the field.

        Draws uniformly in a cap holding the tile and keeps the points that
        `contains` accepts (rejection), so the result is exactly uniform on
        circle ∩ tile.

        Returns
        -------
        ra, dec : `numpy.ndarray`
            Degrees, ``n`` each.
        """
        if n < 0:
            raise ValueError(f"number of points must be >= 0, got {n}")
        if n == 0:
            return np.empty(0), np.empty(0)
        if self.area_fraction == 0.0:
            raise ValueError(f"tile {self.tile} lies outside the field circle: no points to draw")
        cap_center, cap_radius = self._sampling_cap()
        cap_area = cap_solid_angle(cap_radius)
        field_area = cap_solid_angle(self._radius)
        acceptance = self.area_fraction * field_area / cap_area
        chunks: list[np.ndarray] = []
        have = 0
        while have < n:
            batch = int((n - have) / acceptance * 1.1) + 16
            xyz = sample_cap(rng, cap_center, cap_radius, batch)
            xyz = xyz[self.contains_xyz(xyz)]
            chunks.append(xyz)
            have += len(xyz)
        xyz = np.concatenate(chunks)[:n]
        return xyz_to_radec(xyz)

    def _sampling_cap(self) -> tuple[np.ndarray, float]:
        if self.n_tiles > 1:
            bound = self.region.getBoundingCircle()
            radius = bound.getOpeningAngle().asRadians()
            if radius < self._radius:
                c = bound.getCenter()
                return np.array([c.x(), c.y(), c.z()]), radius
        return self._center, self._radius

    @property
    def area_fraction(self) -> float:
        """Share of the field's solid angle in this tile (the tiles sum to 1).

        Exactly 0 for tiles that lie outside the circle (corners of a fine
        grid, the camera's outer detectors).
        """
        if self._area_fraction is None:
            field_area = cap_solid_angle(self._radius)
            self._area_fraction = _tile_solid_angle(self._half, *self.bounds) / field_area
        return self._area_fraction


def _tile_solid_angle(half: float, xi0: float, xi1: float, eta0: float, eta1: float) -> float:
    """Solid angle of {xi^2 + eta^2 <= half^2} ∩ [xi0, xi1] x [eta0, eta1] in the tangent plane.

    The gnomonic area element is ``dxi deta / (1 + xi^2 + eta^2)^(3/2)``; the
    eta integral is analytic, and with ``xi = half sin(t)`` the remaining
    integrand is analytic between the points where the circle crosses the
    square's edges, so Gauss-Legendre on each piece is exact to rounding.
    """
    t_lo = math.asin(max(-1.0, min(1.0, xi0 / half)))
    t_hi = math.asin(max(-1.0, min(1.0, xi1 / half)))
    breaks = {t_lo, t_hi}
    for eta in (eta0, eta1):
        if abs(eta) < half:
            t_cross = math.acos(abs(eta) / half)
            breaks.update(b for b in (t_cross, -t_cross) if t_lo < b < t_hi)
    edges = sorted(breaks)
    nodes, weights = np.polynomial.legendre.leggauss(_GAUSS_NODES)
    total = 0.0
    for a, b in zip(edges[:-1], edges[1:]):
        t = 0.5 * (b - a) * nodes + 0.5 * (b + a)
        xi = half * np.sin(t)
        chord = half * np.cos(t)  # half height of the circle at xi
        hi = np.minimum(eta1, chord)
        lo = np.maximum(eta0, -chord)
        b2 = 1.0 + xi * xi

        def primitive(eta: np.ndarray) -> np.ndarray:
            return eta / (b2 * np.sqrt(b2 + eta * eta))

        g = np.where(hi > lo, primitive(hi) - primitive(lo), 0.0)
        total += 0.5 * (b - a) * float(np.sum(weights * g * chord))
    return total


def field_tiles(center_ra: float, center_dec: float, fov_deg: float, n_divide: int | str = 1) -> list[FieldTile]:
    """All tiles of a field (``n_divide**2``, or 189 for ``"camera"``), in tile-number order."""
    return [FieldTile(center_ra, center_dec, fov_deg, n_divide, tile) for tile in range(tiling(n_divide).n_tiles)]
