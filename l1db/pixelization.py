"""Sky pixelization: points -> pixel index, regions -> pixel ranges -> SQL.

One small type, `Pixelization`, hides the choice between HTM, Q3C and modified
Q3C (through lsst-sphgeom) and HEALPix (through healpy, nested ordering). The L1
database uses it in two places: the ``pixelId`` column of stored rows
(`Pixelization.pixel_index`) and region reads (`Pixelization.envelope` then
`Pixelization.pixel_ranges_clause`). The ranges cover a superset of the region;
`region_contains` trims the rows read back to exactly the region, with sphgeom's
own point-in-region test.

Pixel indices agree exactly with ``HtmPixelization(level).index(UnitVector3d(
LonLat.fromDegrees(ra, dec)))`` (likewise ``Q3cPixelization`` and
``Mq3cPixelization``) and with ``healpy.ang2pix(2**level, ra, dec, nest=True,
lonlat=True)``. sphgeom indexes one point per Python call, so HTM, Q3C and
modified-Q3C indices come from numba twins of its algorithms (`l1db._htm_kernel`,
`l1db._q3c_kernel`).
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Iterable, Sequence
from types import ModuleType

import lsst.sphgeom
import numpy as np
import sqlalchemy

from . import _htm_kernel, _q3c_kernel
from .pixel_kinds import LEVEL_LIMITS, PIXELIZATION_KINDS
from .sphere import RAD_PER_DEG

__all__ = ["Pixelization", "region_contains", "check_region"]

_LOG = logging.getLogger(__name__)


def _healpy() -> ModuleType:
    """healpy, imported on first use: it imports matplotlib and astropy (about a second), which the
    commands that never compute a HEALPix index (``--help``, HTM and MQ3C databases) need not pay."""
    return importlib.import_module("healpy")


# The kinds computed by lsst-sphgeom (envelope) and its class for each.
_SPHGEOM_CLASSES = {
    "htm": lsst.sphgeom.HtmPixelization,
    "q3c": lsst.sphgeom.Q3cPixelization,
    "mq3c": lsst.sphgeom.Mq3cPixelization,
}

# HEALPix envelopes are computed at an order where the region's bounding circle
# spans about this many pixels per allowed range, then refined while they fit.
_HEALPIX_PIXELS_PER_RANGE = 16
# Extra radius (radians, ~0.2 milliarcsec) on HEALPix queries, against rounding
# between sphgeom's and healpy's geometry.
_HEALPIX_PAD = 1e-9


def check_region(region: object) -> None:
    """Raise if ``region`` is not an sphgeom region.

    Parameters
    ----------
    region : `object`
        Anything.

    Raises
    ------
    TypeError
        If ``region`` is not an `lsst.sphgeom.Region` (Circle, ConvexPolygon, Box, ...).
    """
    if not isinstance(region, lsst.sphgeom.Region):
        raise TypeError(
            f"{region!r} (type {type(region).__name__}) is not an lsst.sphgeom.Region; "
            "use lsst.sphgeom.Circle, ConvexPolygon or Box"
        )


def _coordinates(ra: object, dec: object) -> tuple[np.ndarray, np.ndarray]:
    """Validate positions in degrees and return them as 1-D float64 arrays."""
    ra_arr = np.ascontiguousarray(ra, dtype=np.float64)
    dec_arr = np.ascontiguousarray(dec, dtype=np.float64)
    if ra_arr.shape != dec_arr.shape:
        raise ValueError(f"ra and dec have different shapes: {ra_arr.shape} and {dec_arr.shape}")
    ra_arr = ra_arr.reshape(-1)
    dec_arr = dec_arr.reshape(-1)
    # Read-only views (the caller's arrays keep their flags): numba compiles a
    # kernel once per signature, and read-only (pandas' to_numpy() views) is
    # part of it; one signature is what warm_up compiles.
    ra_arr.flags.writeable = dec_arr.flags.writeable = False
    if not (np.isfinite(ra_arr).all() and np.isfinite(dec_arr).all()):
        raise ValueError("ra and dec must be finite (no NaN or infinity)")
    if (np.abs(dec_arr) > 90.0).any():
        raise ValueError(f"dec must lie in [-90, 90] degrees, got values up to {np.abs(dec_arr).max()!r}")
    return ra_arr, dec_arr


def region_contains(region: lsst.sphgeom.Region, ra: np.ndarray, dec: np.ndarray) -> np.ndarray:
    """Which points lie in a region: the exact client-side trim.

    Parameters
    ----------
    region : `lsst.sphgeom.Region`
        The region.
    ra, dec : `numpy.ndarray`
        Positions in degrees, same shape.

    Returns
    -------
    inside : `numpy.ndarray`
        Boolean mask of ``ra``'s shape; element by element equal to
        ``region.contains(UnitVector3d(LonLat.fromDegrees(ra, dec)))``.

    Raises
    ------
    TypeError
        If ``region`` is not an sphgeom region.
    ValueError
        If a coordinate is not finite or ``|dec| > 90``.
    """
    check_region(region)
    shape = np.shape(ra)
    ra_arr, dec_arr = _coordinates(ra, dec)
    # sphgeom's vectorized contains(lon, lat) runs LonLat.fromRadians per point;
    # multiplying by sphgeom's RAD_PER_DEG reproduces fromDegrees bit for bit.
    inside = region.contains(ra_arr * RAD_PER_DEG, dec_arr * RAD_PER_DEG)
    return np.asarray(inside, dtype=bool).reshape(shape)


def _ranges_from_pixels(pixels: np.ndarray) -> np.ndarray:
    """Half-open ranges (n, 2) of consecutive values in a sorted unique array."""
    if pixels.size == 0:
        return np.empty((0, 2), dtype=np.int64)
    breaks = np.flatnonzero(np.diff(pixels) != 1) + 1
    begins = pixels[np.concatenate(([0], breaks))]
    ends = pixels[np.concatenate((breaks - 1, [pixels.size - 1]))] + 1
    return np.column_stack((begins, ends)).astype(np.int64)


def _merge_ranges(ranges: np.ndarray, max_ranges: int) -> np.ndarray:
    """Join touching ranges, then close the smallest gaps until ``max_ranges`` remain."""
    if len(ranges) == 0:
        return ranges
    ranges = ranges[np.argsort(ranges[:, 0], kind="stable")]
    gaps = ranges[1:, 0] - ranges[:-1, 1]
    keep = gaps > 0
    n_excess = int(keep.sum()) + 1 - max_ranges
    if n_excess > 0:
        # Close the n_excess smallest remaining gaps (ties: the lower ones).
        candidates = np.flatnonzero(keep)
        order = np.argsort(gaps[candidates], kind="stable")
        keep[candidates[order[:n_excess]]] = False
    starts = np.concatenate(([True], keep))
    ends = np.concatenate((keep, [True]))
    return np.column_stack((ranges[starts, 0], ranges[ends, 1]))


class Pixelization:
    """Sky pixelization of one kind and level.

    Parameters
    ----------
    kind : `str`
        ``"htm"`` (lsst-sphgeom's `~lsst.sphgeom.HtmPixelization`), ``"q3c"``
        (`~lsst.sphgeom.Q3cPixelization`), ``"mq3c"``
        (`~lsst.sphgeom.Mq3cPixelization`) or ``"healpix"`` (healpy, nested
        ordering, nside = 2**level).
    level : `int`
        HTM, Q3C or modified-Q3C level, or HEALPix order, within the kind's
        `l1db.pixel_kinds.LEVEL_LIMITS`.
    max_ranges : `int`, optional
        Largest number of pixel ranges `envelope` returns (at least 1). More
        ranges give a tighter superset of the region and a longer SQL predicate.

    Raises
    ------
    ValueError
        If ``kind``, ``level`` or ``max_ranges`` is invalid.
    """

    def __init__(self, kind: str, level: int, max_ranges: int = 64):
        if kind not in PIXELIZATION_KINDS:
            raise ValueError(f"unknown pixelization {kind!r}; expected one of {', '.join(PIXELIZATION_KINDS)}")
        low, high = LEVEL_LIMITS[kind]
        if isinstance(level, bool) or not isinstance(level, (int, np.integer)) or not low <= level <= high:
            raise ValueError(f"{kind} level must be an integer from {low} to {high}, got {level!r}")
        if isinstance(max_ranges, bool) or not isinstance(max_ranges, (int, np.integer)) or max_ranges < 1:
            raise ValueError(f"max_ranges must be a positive integer, got {max_ranges!r}")
        self.kind = kind
        self.level = int(level)
        self.max_ranges = int(max_ranges)
        if kind in _SPHGEOM_CLASSES:
            self._sphgeom = _SPHGEOM_CLASSES[kind](self.level)
        else:
            self._nside = 2**self.level

    def __repr__(self) -> str:
        return f"Pixelization({self.kind!r}, {self.level}, max_ranges={self.max_ranges})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Pixelization):
            return NotImplemented
        return (self.kind, self.level, self.max_ranges) == (other.kind, other.level, other.max_ranges)

    def __hash__(self) -> int:
        return hash((self.kind, self.level, self.max_ranges))

    @property
    def universe(self) -> tuple[int, int]:
        """The half-open range of every valid pixel index."""
        if self.kind == "htm":
            return (8 * 4**self.level, 16 * 4**self.level)
        if self.kind == "q3c":
            return (0, 6 * 4**self.level)
        if self.kind == "mq3c":
            return (10 * 4**self.level, 16 * 4**self.level)
        return (0, 12 * 4**self.level)

    def pixel_index(self, ra: np.ndarray, dec: np.ndarray) -> np.ndarray:
        """Pixel index of each position.

        Parameters
        ----------
        ra, dec : `numpy.ndarray`
            Positions in degrees, same shape. Any finite ``ra`` (it is taken
            modulo 360); ``dec`` in [-90, 90].

        Returns
        -------
        index : `numpy.ndarray`
            ``int64`` pixel indices, shape of ``ra``.

        Raises
        ------
        ValueError
            If a coordinate is not finite, ``|dec| > 90`` or the shapes differ.
        """
        shape = np.shape(ra)
        ra_arr, dec_arr = _coordinates(ra, dec)
        if self.kind == "healpix":
            index = np.asarray(_healpy().ang2pix(self._nside, ra_arr, dec_arr, nest=True, lonlat=True), dtype=np.int64)
        elif self.kind == "q3c":
            index = _q3c_kernel.q3c_index(ra_arr, dec_arr, self.level)
        elif self.kind == "mq3c":
            index = _q3c_kernel.mq3c_index(ra_arr, dec_arr, self.level)
        else:
            index = _htm_kernel.htm_index(ra_arr, dec_arr, self.level, _htm_kernel.root_vertices())
            undecided = np.flatnonzero(index == _htm_kernel.UNDECIDED)
            if undecided.size:
                # Denormal-scale coordinates: let sphgeom's big integers decide.
                _LOG.debug("HTM index of %d points left to sphgeom", undecided.size)
                for k in undecided:
                    point = lsst.sphgeom.UnitVector3d(lsst.sphgeom.LonLat.fromDegrees(ra_arr[k], dec_arr[k]))
                    index[k] = self._sphgeom.index(point)
        return index.reshape(shape)

    def warm_up(self) -> None:
        """Index a few positions and cover a small field once, outside any timing.

        The first call of the numba kernels compiles them (or loads them from
        numba's cache), and a HEALPix index's first call imports healpy and
        sets up its tables: a first visit should measure neither.
        """
        self.pixel_index(np.array([10.0, 190.0]), np.array([-20.0, 45.0]))
        center = lsst.sphgeom.UnitVector3d(lsst.sphgeom.LonLat.fromDegrees(10.0, -20.0))
        self.envelope(lsst.sphgeom.Circle(center, lsst.sphgeom.Angle.fromDegrees(1.75)))

    def envelope(self, region: lsst.sphgeom.Region) -> list[tuple[int, int]]:
        """Pixel ranges covering a region.

        Parameters
        ----------
        region : `lsst.sphgeom.Region`
            Circle, ConvexPolygon, Box (or any other sphgeom region, which is
            covered through its bounding circle for HEALPix). HTM, Q3C and
            modified-Q3C envelopes are lsst-sphgeom's own
            ``envelope(region, max_ranges)``.

        Returns
        -------
        ranges : `list` [`tuple` [`int`, `int`]]
            Sorted, disjoint, half-open ``[begin, end)`` ranges, at most
            `max_ranges` of them, whose pixels cover every point of the region
            (and usually some more). Empty for an empty region.

        Raises
        ------
        TypeError
            If ``region`` is not an sphgeom region.
        """
        check_region(region)
        # Not region.isEmpty(): lsst-sphgeom 30.2026.4000 reports every
        # ConvexPolygon as empty. An empty region has an empty bounding circle.
        if region.getBoundingCircle().isEmpty():
            return []
        if self.kind in _SPHGEOM_CLASSES:
            return [(int(begin), int(end)) for begin, end in self._sphgeom.envelope(region, self.max_ranges)]
        return [(int(begin), int(end)) for begin, end in self._healpix_envelope(region)]

    def pixel_ranges_clause(
        self, column: sqlalchemy.ColumnElement, ranges: Iterable[Sequence[int]]
    ) -> sqlalchemy.ColumnElement:
        """SQL predicate selecting rows whose pixel index lies in the ranges.

        Parameters
        ----------
        column : `sqlalchemy.ColumnElement`
            The pixel index column.
        ranges : iterable of ``(begin, end)``
            Half-open pixel ranges, as returned by `envelope`.

        Returns
        -------
        clause : `sqlalchemy.ColumnElement`
            ``column BETWEEN begin AND end - 1`` (``column = begin`` for a single
            pixel) joined by OR; a false expression when there are no ranges.

        Raises
        ------
        ValueError
            If a range is empty or reversed.
        """
        terms = []
        for begin, end in ranges:
            begin, end = int(begin), int(end)
            if end <= begin:
                raise ValueError(f"empty pixel range [{begin}, {end})")
            if end == begin + 1:
                terms.append(column == begin)
            else:
                terms.append(column.between(begin, end - 1))
        if not terms:
            return sqlalchemy.false()
        return sqlalchemy.or_(*terms)

    # HEALPix envelope

    def _healpix_pixels(self, region: lsst.sphgeom.Region, order: int) -> np.ndarray:
        """Sorted nested pixels at ``order`` overlapping the region (a superset)."""
        nside = 2**order
        circle = region.getBoundingCircle()
        if circle.isFull():
            return np.arange(12 * 4**order, dtype=np.int64)
        center = circle.getCenter()
        radius = min(circle.getOpeningAngle().asRadians() + _HEALPIX_PAD, np.pi)
        vec = (center.x(), center.y(), center.z())
        pixels = None
        if isinstance(region, lsst.sphgeom.ConvexPolygon):
            vertices = np.array([(v.x(), v.y(), v.z()) for v in region.getVertices()])
            try:
                pixels = _healpy().query_polygon(nside, vertices, inclusive=True, nest=True)
            except (ValueError, RuntimeError) as exc:  # degenerate polygon: fall back to the circle
                _LOG.debug("query_polygon failed (%s); using the bounding circle", exc)
        if pixels is None:
            pixels = _healpy().query_disc(nside, vec, radius, inclusive=True, nest=True)
            if isinstance(region, lsst.sphgeom.Box):
                lat = region.getLat()
                theta1 = max(0.5 * np.pi - lat.getB().asRadians() - _HEALPIX_PAD, 0.0)
                theta2 = min(0.5 * np.pi - lat.getA().asRadians() + _HEALPIX_PAD, np.pi)
                strip = _healpy().query_strip(nside, theta1, theta2, inclusive=True, nest=True)
                pixels = np.intersect1d(pixels, strip, assume_unique=True)
        return np.unique(np.asarray(pixels, dtype=np.int64))

    def _healpix_envelope(self, region: lsst.sphgeom.Region) -> np.ndarray:
        """Pixel ranges at `level` from a query at the finest order that fits.

        The query runs at the finest order (up to `level`) whose ranges number at
        most `max_ranges`, starting where the bounding circle spans about
        ``_HEALPIX_PIXELS_PER_RANGE * max_ranges`` pixels; the ranges are then
        scaled to `level` and, if there are still too many, the smallest gaps
        between them are closed.
        """
        circle = region.getBoundingCircle()
        area = circle.getArea() if not circle.isFull() else 4 * np.pi
        budget = _HEALPIX_PIXELS_PER_RANGE * self.max_ranges

        def n_pixels(order: int) -> float:
            return area / (np.pi / (3 * 4**order))

        # Finest order whose bounding-circle pixel count fits the budget.
        order = self.level
        while order > 0 and n_pixels(order) > budget:
            order -= 1
        ranges = _ranges_from_pixels(self._healpix_pixels(region, order))
        if len(ranges) > self.max_ranges:
            while order > 0 and len(ranges) > self.max_ranges:
                order -= 1
                ranges = _ranges_from_pixels(self._healpix_pixels(region, order))
        else:
            # Refine while the finer covering still fits.
            while order < self.level and n_pixels(order + 1) <= 4 * budget:
                finer = _ranges_from_pixels(self._healpix_pixels(region, order + 1))
                if len(finer) > self.max_ranges:
                    break
                order, ranges = order + 1, finer
        # A nested pixel p at order k covers [p * 4**d, (p + 1) * 4**d) at order k + d.
        ranges = ranges * np.int64(4 ** (self.level - order))
        return _merge_ranges(ranges, self.max_ranges)
