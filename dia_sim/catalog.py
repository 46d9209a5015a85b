"""The catalogue of variable sources: generating it, and finding the sources in a field.

File format
-----------
A NumPy ``.npy`` file (format version 1.0, readable by ``numpy.load``) holding
one 1-D structured array of dtype `CATALOG_DTYPE`: ``ra`` and ``dec``, both
little-endian float64, in degrees (RA in [0, 360), Dec in [-90, 90]). The row
number is the source's identity. 16 bytes per source plus a 128-byte header:
the full-density southern catalogue (10,000 sources per 3.5 degree field,
about 21.4 million sources) is about 343 MB, the full sky twice that.

`generate_catalog` writes the rows sorted by their HEALPix nested pixel index
at order 29. Nested indices nest, so the file is then also sorted by the
pixel of every coarser order: `SourceCatalog.load` finds each bucket's rows
with one streaming pass over the memory-mapped file and never copies or
re-sorts the catalogue. Concurrent processes (tiles) therefore share the
file's pages in the operating system's cache instead of each holding a sorted
copy. A file in any other order (written by another tool) still loads: it is
then sorted in memory, which costs time and an index array of 8 bytes per
source.

Positions are centres of order-29 HEALPix pixels drawn uniformly (all such
pixels have the same area), i.e. uniform on the sphere to 0.4 mas.

Example::

    n = generate_catalog("sources.npy", per_visit=10000, seed=1)
    catalog = SourceCatalog.load("sources.npy")
    ra, dec, index = catalog.sources_in_region(tile)
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Callable
from pathlib import Path

import hpgeom
import numpy as np
from lsst import sphgeom

from l1db.sphere import radec_to_xyz

from ._sphere import cap_solid_angle
from .field import FieldTile
from .survey import FOV_DEG, SKIES, SKY

__all__ = [
    "CATALOG_DTYPE",
    "CatalogError",
    "SourceCatalog",
    "expected_count",
    "generate_catalog",
]

_LOG = logging.getLogger(__name__)

CATALOG_DTYPE = np.dtype([("ra", "<f8"), ("dec", "<f8")])
"""Row type of the catalogue file: RA and Dec, degrees."""

_FINE_ORDER = 29  # the finest HEALPix order (nside 2**29, pixels of 0.4 mas)
_MAX_BLOCK_ORDER = 8
_LOAD_CHUNK = 1 << 20  # rows per step of the streaming pass in `load`
_NPY_MAGIC = b"\x93NUMPY"  # first bytes of every .npy file


class CatalogError(Exception):
    """A catalogue file that cannot be used; the message is one line naming the file."""


def expected_count(per_visit: float, fov_deg: float = FOV_DEG, sky: str = SKY) -> float:
    """Mean number of sources in a catalogue of the given density.

    Parameters
    ----------
    per_visit : `float`
        Mean number of sources in a circle of diameter ``fov_deg``.
    fov_deg : `float`
        Field-of-view diameter, degrees.
    sky : `str`
        ``"south"`` (Dec <= 0) or ``"full"``.
    """
    _check_args(per_visit, fov_deg, sky)
    density = per_visit / cap_solid_angle(math.radians(fov_deg) / 2.0)
    return density * (2.0 * math.pi if sky == "south" else 4.0 * math.pi)


def _check_args(per_visit: float, fov_deg: float, sky: str) -> None:
    if sky not in SKIES:
        raise ValueError(f"sky must be one of {', '.join(SKIES)}, got {sky!r}")
    if not per_visit >= 0:
        raise ValueError(f"sources per visit must be >= 0, got {per_visit}")
    if not 0.0 < fov_deg < 180.0:
        raise ValueError(f"field of view must be between 0 and 180 degrees, got {fov_deg}")


def generate_catalog(
    path: str | os.PathLike,
    per_visit: float = 10000,
    fov_deg: float = FOV_DEG,
    sky: str = SKY,
    seed: int | None = None,
    chunk: int = 1_000_000,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Write a catalogue of sources uniformly distributed on the sky.

    The number of sources is Poisson with mean `expected_count`; it is drawn
    first and split over sky blocks (HEALPix pixels of an order chosen so that
    a block holds about ``chunk`` sources) by a multinomial draw. Each block
    is then filled, sorted and written in turn, so memory stays bounded by
    ``chunk`` whatever the density. For ``sky="south"`` the blocks that
    straddle the equator get half a block's weight (HEALPix is symmetric
    about the equator) and are filled by rejection of Dec > 0.

    The file is written under a temporary name in the same directory and
    renamed to ``path`` at the end, so an interrupted run leaves no partial
    catalogue at ``path``. The same arguments and seed give the same bytes.

    Parameters
    ----------
    path : path-like
        Output file (see the module docstring for the format); replaced if it exists.
    per_visit : `float`
        Mean number of sources in one field.
    fov_deg : `float`
        Field-of-view diameter, degrees.
    sky : `str`
        ``"south"`` (Dec <= 0) or ``"full"``.
    seed : `int`, optional
        Random seed; `None` for fresh entropy.
    chunk : `int`
        Approximate number of sources generated per step (part of the
        recipe: a different value gives a different, equally valid catalogue).
    progress : callable, optional
        Called with the number of sources written in each step (for example
        ``tqdm.update``).

    Returns
    -------
    count : `int`
        Number of sources written.
    """
    _check_args(per_visit, fov_deg, sky)
    if chunk < 1:
        raise ValueError(f"chunk must be >= 1, got {chunk}")
    path = Path(path)
    rng = np.random.default_rng(seed)
    mean = expected_count(per_visit, fov_deg, sky)
    total = int(rng.poisson(mean))

    order = _block_order(expected_count(per_visit, fov_deg, "full"), chunk)
    blocks, weights = _sky_blocks(order, sky)
    counts = rng.multinomial(total, weights / weights.sum())
    _LOG.debug("generating %d sources in %d blocks of HEALPix order %d", total, len(blocks), order)

    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        out = np.lib.format.open_memmap(tmp, mode="w+", dtype=CATALOG_DTYPE, shape=(total,))
        start = 0
        for block, count, weight in zip(blocks, counts, weights):
            if count == 0:
                continue
            ra, dec = _fill_block(rng, order, int(block), int(count), south_half=weight < 1.0)
            out["ra"][start : start + count] = ra
            out["dec"][start : start + count] = dec
            start += count
            if progress is not None:
                progress(int(count))
        out.flush()
        del out
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return total


def _block_order(full_sky_count: float, chunk: int) -> int:
    """Smallest HEALPix order whose pixels hold at most ``chunk`` sources on average."""
    order = 0
    while full_sky_count / (12 * 4**order) > chunk and order < _MAX_BLOCK_ORDER:
        order += 1
    return order


def _sky_blocks(order: int, sky: str) -> tuple[np.ndarray, np.ndarray]:
    """Block pixels (nested, ascending) of the sky and their weights (share of a pixel's area)."""
    nside = 1 << order
    pixels = np.arange(12 * nside * nside, dtype=np.int64)
    if sky == "full":
        return pixels, np.ones(len(pixels))
    z = hpgeom.pixel_to_vector(nside, pixels, nest=True)[2]  # healpy's pix2vec, bit for bit
    # Pixels centred on the equator are mirror-symmetric about it: half south.
    # All others lie entirely on one side (their vertices sit on the adjacent rings).
    weights = np.where(np.abs(z) < 1e-12, 0.5, np.where(z < 0, 1.0, 0.0))
    keep = weights > 0
    return pixels[keep], weights[keep]


def _fill_block(
    rng: np.random.Generator, order: int, block: int, count: int, south_half: bool
) -> tuple[np.ndarray, np.ndarray]:
    """``count`` uniform positions in one block pixel, sorted by fine pixel index."""
    # healpy's pix2ang, not hpgeom's (1 ulp apart in dec): the catalogue of a seed stays the one
    # gen_sources always made. Imported here: it imports matplotlib and astropy (about a second),
    # which a run reading a catalogue (ap_proto, each worker) never needs.
    import healpy

    shift = 2 * (_FINE_ORDER - order)
    low, high = block << shift, (block + 1) << shift
    nside = 1 << _FINE_ORDER
    if not south_half:
        fine = np.sort(rng.integers(low, high, size=count, dtype=np.int64))
        return healpy.pix2ang(nside, fine, nest=True, lonlat=True)
    # Rejection of the northern half; keep the first `count` in draw order
    # (i.i.d., hence unbiased), then sort.
    kept: list[np.ndarray] = []
    have = 0
    while have < count:
        draw = rng.integers(low, high, size=2 * (count - have) + 16, dtype=np.int64)
        _, dec = healpy.pix2ang(nside, draw, nest=True, lonlat=True)
        draw = draw[dec <= 0.0]
        kept.append(draw)
        have += len(draw)
    fine = np.sort(np.concatenate(kept)[:count])
    return healpy.pix2ang(nside, fine, nest=True, lonlat=True)


class SourceCatalog:
    """A memory-mapped catalogue bucketed by HEALPix pixel for region queries.

    Use `SourceCatalog.load`; the constructor takes already-validated parts.

    Parameters
    ----------
    path : `pathlib.Path`
        The catalogue file.
    rows : `numpy.ndarray`
        The memory-mapped rows (`CATALOG_DTYPE`).
    bucket_level : `int`
        HEALPix nested order of the buckets.
    offsets : `numpy.ndarray`
        ``offsets[p] : offsets[p + 1]`` are the positions of bucket ``p``'s
        rows in bucket order.
    order : `numpy.ndarray`, optional
        Row numbers in bucket order; `None` when the file is already in bucket order.
    """

    def __init__(
        self,
        path: Path,
        rows: np.ndarray,
        bucket_level: int,
        offsets: np.ndarray,
        order: np.ndarray | None = None,
    ) -> None:
        self.path = path
        self.bucket_level = bucket_level
        self._rows = rows
        self._nside = 1 << bucket_level
        self._offsets = offsets
        self._order = order

    def __len__(self) -> int:
        return len(self._rows)

    def per_visit(self, fov_deg: float = FOV_DEG) -> float:
        """Mean number of sources in a field of diameter ``fov_deg`` (the density).

        The sky is taken to be the southern hemisphere when no source lies
        north of the equator (what ``gen_sources --sky south`` writes), else the
        whole sphere; the inverse of `expected_count`.
        """
        southern = len(self._rows) == 0 or float(np.max(self._rows["dec"])) <= 0.0
        sky_sr = 2.0 * math.pi if southern else 4.0 * math.pi
        return len(self._rows) * cap_solid_angle(math.radians(fov_deg) / 2.0) / sky_sr

    @property
    def presorted(self) -> bool:
        """Whether the file was already in bucket order (no in-memory index)."""
        return self._order is None

    @classmethod
    def load(cls, path: str | os.PathLike, bucket_level: int = 7) -> SourceCatalog:
        """Open a catalogue file and bucket its sources by sky pixel.

        One streaming pass computes every source's HEALPix pixel at
        ``bucket_level`` and the start of each bucket; the coordinates stay
        memory-mapped. Order 7 (0.46 degree pixels, ~65 per 3.5 degree field)
        reads about 1.6 times the sources of a field.

        Parameters
        ----------
        path : path-like
            Catalogue file (see the module docstring).
        bucket_level : `int`
            HEALPix nested order of the buckets, 0 to 12.

        Raises
        ------
        CatalogError
            The file is missing, not a ``.npy`` file, of the wrong shape or
            dtype, or holds coordinates out of range.
        """
        if not 0 <= bucket_level <= 12:
            raise ValueError(f"bucket_level must be within 0..12, got {bucket_level}")
        path = Path(path)
        rows = _open_rows(path)
        nside = 1 << bucket_level
        npix = 12 * nside * nside
        counts = np.zeros(npix, dtype=np.int64)
        presorted = True
        last = -1
        for _start, pix in _chunk_pixels(path, rows, nside):
            if len(pix):
                # A chunk of a sorted file spans few buckets: count only that span.
                low, high = int(pix.min()), int(pix.max())
                counts[low : high + 1] += np.bincount(pix - low, minlength=high - low + 1)
            if presorted and len(pix) and (pix[0] < last or np.any(pix[1:] < pix[:-1])):
                presorted = False
            last = int(pix[-1]) if len(pix) else last
        offsets = np.zeros(npix + 1, dtype=np.int64)
        np.cumsum(counts, out=offsets[1:])
        order = None
        if not presorted:
            _LOG.warning("%s is not sorted by sky pixel; sorting %d sources in memory", path, len(rows))
            pixels = np.concatenate([pix for _, pix in _chunk_pixels(path, rows, nside)])
            order = np.argsort(pixels, kind="stable")
        return cls(path, rows, bucket_level, offsets, order)

    def sources_in_region(
        self, region: FieldTile | sphgeom.Region | tuple[float, float, float]
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The catalogue sources inside a region.

        Reads only the buckets overlapping the region's bounding circle, then
        keeps the sources exactly inside.

        Parameters
        ----------
        region : `FieldTile`, `lsst.sphgeom.Region` or ``(ra, dec, radius)``
            A field tile (its `FieldTile.contains` decides membership, so the
            tiles of a field share its sources exactly once), any sphgeom
            region, or a circle given by centre and radius in degrees
            (membership: angular distance <= radius).

        Returns
        -------
        ra, dec : `numpy.ndarray`
            Degrees, float64.
        index : `numpy.ndarray`
            Row numbers in the file (int64, ascending): stable source identities.
        """
        if isinstance(region, FieldTile):
            circle = region.region.getBoundingCircle()
        elif isinstance(region, sphgeom.Region):
            circle = region if isinstance(region, sphgeom.Circle) else region.getBoundingCircle()
        else:
            ra0, dec0, radius = (float(v) for v in region)
            circle = None
            center = radec_to_xyz(ra0, dec0)
            radius_rad = math.radians(radius)
        if circle is not None:
            c = circle.getCenter()
            center = np.array([c.x(), c.y(), c.z()])
            radius_rad = circle.getOpeningAngle().asRadians()

        index = self._candidates(center, radius_rad)
        picked = self._rows[index]
        ra, dec = picked["ra"], picked["dec"]
        if isinstance(region, FieldTile):
            keep = region.contains(ra, dec)
        elif isinstance(region, sphgeom.Region):
            xyz = radec_to_xyz(ra, dec)
            keep = np.asarray(region.contains(xyz[:, 0], xyz[:, 1], xyz[:, 2]), dtype=bool)
        else:
            keep = radec_to_xyz(ra, dec) @ center >= math.cos(radius_rad)
        return ra[keep].copy(), dec[keep].copy(), index[keep]

    def _candidates(self, center: np.ndarray, radius_rad: float) -> np.ndarray:
        """Row numbers (ascending) of all sources in the buckets touching a circle."""
        if radius_rad >= math.pi:
            pixels = np.arange(12 * self._nside * self._nside)
        else:
            # hpgeom: healpy's query_disc and ang2pix, the same pixels, without healpy's second of imports.
            pixels = hpgeom.query_circle_vec(self._nside, center, radius_rad, inclusive=True, nest=True)
        if len(pixels) == 0:
            return np.empty(0, dtype=np.int64)
        pixels = np.sort(pixels)
        # Consecutive pixels are consecutive rows: one slice per run of pixels.
        breaks = np.flatnonzero(np.diff(pixels) != 1)
        run_first = pixels[np.concatenate(([0], breaks + 1))]
        run_last = pixels[np.concatenate((breaks, [len(pixels) - 1]))]
        starts = self._offsets[run_first]
        stops = self._offsets[run_last + 1]
        lengths = stops - starts
        total = int(lengths.sum())
        # Positions start..stop-1 of every run, without a Python loop per row.
        pos = np.arange(total, dtype=np.int64) + np.repeat(starts - np.cumsum(lengths) + lengths, lengths)
        if self._order is None:
            return pos
        return np.sort(self._order[pos])


def _chunk_pixels(path: Path, rows: np.ndarray, nside: int):
    """Yield ``(first row, HEALPix nested pixels)`` chunk by chunk, checking positions."""
    for start in range(0, len(rows), _LOAD_CHUNK):
        part = rows[start : start + _LOAD_CHUNK]
        ra, dec = part["ra"], part["dec"]
        bad = ~(np.isfinite(ra) & np.isfinite(dec) & (np.abs(dec) <= 90.0))
        if bad.any():
            i = int(np.argmax(bad))
            raise CatalogError(f"{path}: row {start + i} has an invalid position ({ra[i]}, {dec[i]})")
        yield start, hpgeom.angle_to_pixel(nside, ra, dec, nest=True, lonlat=True, degrees=True)


def _open_rows(path: Path) -> np.ndarray:
    """Memory-map a catalogue file and check its shape and dtype."""
    if not path.exists():
        raise CatalogError(f"sources file not found: {path} (make one with gen_sources)")
    if path.is_dir():
        raise CatalogError(f"{path}: is a directory, not a .npy catalogue")
    try:
        with open(path, "rb") as stream:
            magic = stream.read(len(_NPY_MAGIC))
    except OSError as exc:
        raise CatalogError(f"{path}: cannot read: {exc.strerror or exc}") from None
    if magic != _NPY_MAGIC:
        what = "an .npz archive" if magic.startswith(b"PK") else "no NumPy .npy header"
        raise CatalogError(f"{path}: not a .npy catalogue ({what}; make one with gen_sources)")
    try:
        data = np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise CatalogError(f"{path}: not a readable .npy catalogue ({detail})") from None
    if not isinstance(data, np.ndarray):
        raise CatalogError(f"{path}: not a .npy catalogue (an .npz archive?)")
    names = data.dtype.names or ()
    if (
        data.ndim != 1
        or not {"ra", "dec"} <= set(names)
        or any(data.dtype[name].kind != "f" or data.dtype[name].itemsize != 8 for name in ("ra", "dec"))
    ):
        raise CatalogError(
            f"{path}: expected a 1-D array with float64 fields 'ra' and 'dec', "
            f"got shape {data.shape} and dtype {data.dtype}"
        )
    return data
