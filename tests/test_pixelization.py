"""Tests of l1db.pixelization: exact pixel indices, envelope supersets, SQL ranges."""

from __future__ import annotations

import healpy
import lsst.sphgeom as sph
import numpy as np
import pytest
import sqlalchemy
from naive import (
    naive_angular_separation,
    naive_htm_index,
    naive_in_circle,
    naive_in_ranges,
    naive_q3c_index,
    naive_region_contains,
)
from sqlalchemy.dialects import sqlite

from l1db.pixelization import (
    Pixelization,
    _merge_ranges,  # private, tested for its gap-closing rule
    check_region,
    region_contains,
)


def random_sky(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Points uniform on the sphere, degrees."""
    return rng.uniform(0.0, 360.0, n), np.degrees(np.arcsin(rng.uniform(-1.0, 1.0, n)))


def random_cap(rng, n, center_ra, center_dec, radius_deg):
    """Points uniform in a spherical cap, degrees, RA in [0, 360)."""
    cos_r = np.cos(np.radians(radius_deg))
    dist = np.arccos(rng.uniform(cos_r, 1.0, n))
    bearing = rng.uniform(0.0, 2 * np.pi, n)
    d0 = np.radians(center_dec)
    dec = np.arcsin(np.clip(np.sin(d0) * np.cos(dist) + np.cos(d0) * np.sin(dist) * np.cos(bearing), -1, 1))
    dra = np.arctan2(np.sin(bearing) * np.sin(dist) * np.cos(d0), np.cos(dist) - np.sin(d0) * np.sin(dec))
    return np.degrees(np.radians(center_ra) + dra) % 360.0, np.degrees(dec)


def circle(ra, dec, radius_deg):
    return sph.Circle(sph.UnitVector3d(sph.LonLat.fromDegrees(ra, dec)), sph.Angle.fromDegrees(radius_deg))


def polygon(points):
    return sph.ConvexPolygon([sph.UnitVector3d(sph.LonLat.fromDegrees(ra, dec)) for ra, dec in points])


def box(ra1, dec1, ra2, dec2):
    return sph.Box(sph.LonLat.fromDegrees(ra1, dec1), sph.LonLat.fromDegrees(ra2, dec2))


def vertex_degrees(vector) -> tuple[float, float]:
    lonlat = sph.LonLat(vector)
    return lonlat.getLon().asDegrees(), lonlat.getLat().asDegrees()


def edge_points(level: int, rng: np.random.Generator, n_trixels: int = 40) -> tuple[np.ndarray, np.ndarray]:
    """Trixel vertices and edge midpoints at ``level`` (on the edges of level - 1
    and of their children), with their 1-ulp neighbours."""
    first = 8 * 4**level
    trixels = rng.integers(first, 2 * first, n_trixels)
    ra, dec = [], []
    for t in trixels:
        v = sph.HtmPixelization.triangle(int(t)).getVertices()
        for a, b in ((0, 1), (1, 2), (2, 0)):
            for point in (v[a], sph.UnitVector3d(v[a] + v[b])):
                r, d = vertex_degrees(point)
                ra.append(r)
                dec.append(d)
    ra, dec = np.array(ra), np.array(dec)
    ra_all = np.concatenate([ra, np.nextafter(ra, np.inf), np.nextafter(ra, -np.inf), ra, ra])
    dec_all = np.concatenate([dec, dec, dec, np.nextafter(dec, np.inf), np.nextafter(dec, -np.inf)])
    return ra_all, np.clip(dec_all, -90.0, 90.0)


# Positions where sphgeom's tie-breaking matters: poles, the RA = 0/360 seam,
# the equator and the meridians bounding the root triangles, RA outside [0, 360).
SPECIAL_RA = np.array([0.0, -0.0, 360.0, -360.0, 720.0, 359.99999999999994, 1e-300, -1e-300, 45.0, 90.0,
                       135.0, 180.0, 225.0, 270.0, 315.0, -90.0, 450.0, 1e-12, -1e-12, 89.99999999999999])
SPECIAL_DEC = np.array([-90.0, 90.0, 0.0, -0.0, 89.99999999999999, -89.99999999999999, 45.0, -45.0,
                        1e-300, -1e-300, 1e-14, -1e-14, 35.264389682754654, -35.264389682754654])


def special_points() -> tuple[np.ndarray, np.ndarray]:
    ra, dec = np.meshgrid(SPECIAL_RA, SPECIAL_DEC)
    return ra.ravel(), dec.ravel()


# ---------------------------------------------------------------------------
# pixel_index
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("level", [1, 8, 14, 20, 24])
def test_htm_index_equals_sphgeom_random(level):
    rng = np.random.default_rng(1000 + level)
    ra, dec = random_sky(rng, 100_000)
    got = Pixelization("htm", level).pixel_index(ra, dec)
    assert got.dtype == np.int64
    np.testing.assert_array_equal(got, naive_htm_index(ra, dec, level))


@pytest.mark.parametrize("level", [1, 2, 5, 10, 16, 20, 23, 24])
def test_htm_index_equals_sphgeom_edges_poles_seam(level):
    rng = np.random.default_rng(level)
    ra, dec = special_points()
    for lvl in {level, max(level - 1, 1)}:
        edge_ra, edge_dec = edge_points(lvl, rng)
        ra, dec = np.concatenate([ra, edge_ra]), np.concatenate([dec, edge_dec])
    got = Pixelization("htm", level).pixel_index(ra, dec)
    np.testing.assert_array_equal(got, naive_htm_index(ra, dec, level))


def test_htm_index_near_edges_dense():
    # Points within ~1e-15 rad of trixel edges take sphgeom's exact-arithmetic path.
    rng = np.random.default_rng(7)
    ra, dec = edge_points(24, rng, n_trixels=500)
    for level in (20, 24):
        np.testing.assert_array_equal(Pixelization("htm", level).pixel_index(ra, dec), naive_htm_index(ra, dec, level))


def test_htm_index_underflow_fallback():
    # A coordinate of ~1e-302 on a trixel edge: the kernel leaves it to sphgeom.
    from l1db import _htm_kernel

    ra, dec = np.array([45.0, 45.0, 10.0]), np.array([1e-300, -1e-300, 20.0])
    raw = _htm_kernel.htm_index(ra, dec, 20, _htm_kernel.root_vertices())
    assert raw[0] == _htm_kernel.UNDECIDED and raw[2] != _htm_kernel.UNDECIDED
    np.testing.assert_array_equal(Pixelization("htm", 20).pixel_index(ra, dec), naive_htm_index(ra, dec, 20))


# Q3C and modified Q3C. MQ3C_MAX: at sphgeom's level 30 modified-Q3C indices reach 2**64.
Q3C_KINDS = ("q3c", "mq3c")
MQ3C_MAX = 29


def q3c_cap(kind: str, level: int) -> int:
    return min(level, MQ3C_MAX) if kind == "mq3c" else level


def q3c_naive(kind: str, ra, dec, level):
    return naive_q3c_index(ra, dec, level, modified=kind == "mq3c")


def with_neighbours(ra: np.ndarray, dec: np.ndarray, ulps: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """The points and their neighbours up to ``ulps`` floats away in ra, in dec, or in both."""
    ra_steps, dec_steps = [ra], [dec]
    for direction in (np.inf, -np.inf):
        r, d = ra, dec
        for _ in range(ulps):
            r, d = np.nextafter(r, direction), np.nextafter(d, direction)
            ra_steps.append(r)
            dec_steps.append(d)
    ra_out = [r for r in ra_steps for _ in dec_steps]
    dec_out = [d for _ in ra_steps for d in dec_steps]
    return np.concatenate(ra_out), np.clip(np.concatenate(dec_out), -90.0, 90.0)


def cube_edge_points(rng: np.random.Generator, n: int = 200) -> tuple[np.ndarray, np.ndarray]:
    """Points on (or within rounding of) the 12 cube edges and at the 8 corners, with neighbours."""
    corner_dec = np.degrees(np.arctan(1.0 / np.sqrt(2.0)))  # 35.26438968275465
    ra, dec = [], []
    # Corners, also as sphgeom converts the exact cube vertices.
    for sx in (1, -1):
        for sy in (1, -1):
            for sz in (1, -1):
                lonlat = sph.LonLat(sph.UnitVector3d(sx, sy, sz))
                ra.append(lonlat.getLon().asDegrees())
                dec.append(lonlat.getLat().asDegrees())
    for k in range(4):
        ra += [45.0 + 90 * k] * 2
        dec += [corner_dec, -corner_dec]
    # Edges between equatorial faces: |x| = |y|.
    ra_eq = 45.0 + 90.0 * rng.integers(0, 4, n)
    dec_eq = rng.uniform(-corner_dec, corner_dec, n)
    # Edges between an equatorial and a polar face: tan(dec) = max(|cos ra|, |sin ra|).
    ra_pol = rng.uniform(0.0, 360.0, n)
    a = np.radians(ra_pol)
    dec_pol = np.degrees(np.arctan(np.maximum(np.abs(np.cos(a)), np.abs(np.sin(a))))) * rng.choice([-1.0, 1.0], n)
    # Midpoints of those edges and dec = +-45 at various RA.
    ra_mid = np.array([0.0, 90.0, 180.0, 270.0, 360.0, -90.0] * 2 + list(rng.uniform(0, 360, 40)))
    dec_mid = np.concatenate([np.full(6, 45.0), np.full(6, -45.0), rng.choice([-45.0, 45.0], 40)])
    ra = np.concatenate([ra, ra_eq, ra_pol, ra_mid])
    dec = np.concatenate([dec, dec_eq, dec_pol, dec_mid])
    return with_neighbours(ra, dec)


def boundary_points(kind, level, rng, n_pairs=150, max_step=None):
    """Adjacent floats on either side of a pixel boundary, found by bisection with sphgeom.

    Pairs of nearby points with different sphgeom indices are bisected along the
    segment joining them (in ra, dec) until the two ends are neighbouring floats.
    """
    pix = (sph.Mq3cPixelization if kind == "mq3c" else sph.Q3cPixelization)(level)

    def index(r, d):
        return pix.index(sph.UnitVector3d(sph.LonLat.fromDegrees(r, d)))

    step = max_step if max_step is not None else min(20.0, 200.0 / 2**level)
    ra, dec = [], []
    ra0, dec0 = random_sky(rng, n_pairs)
    for r0, d0, dr, dd in zip(ra0, dec0, rng.uniform(-step, step, n_pairs), rng.uniform(-step, step, n_pairs)):
        r1, d1 = r0 + dr, float(np.clip(d0 + dd, -90.0, 90.0))
        if index(r0, d0) == index(r1, d1):
            continue
        lo, hi = 0.0, 1.0
        i_lo = index(r0, d0)
        while True:
            mid = 0.5 * (lo + hi)
            rm, dm = r0 + mid * (r1 - r0), d0 + mid * (d1 - d0)
            if (rm, dm) in ((r0 + lo * (r1 - r0), d0 + lo * (d1 - d0)), (r0 + hi * (r1 - r0), d0 + hi * (d1 - d0))):
                break
            if index(rm, dm) == i_lo:
                lo = mid
            else:
                hi = mid
        for t in (lo, hi):
            ra.append(r0 + t * (r1 - r0))
            dec.append(d0 + t * (d1 - d0))
    return np.array(ra), np.array(dec)


@pytest.mark.parametrize("kind", Q3C_KINDS)
@pytest.mark.parametrize("level", [1, 5, 10, 16, 30])
def test_q3c_index_equals_sphgeom_random(kind, level):
    level = q3c_cap(kind, level)
    rng = np.random.default_rng(2000 + level + (kind == "mq3c"))
    ra, dec = random_sky(rng, 200_000)
    got = Pixelization(kind, level).pixel_index(ra, dec)
    assert got.dtype == np.int64
    np.testing.assert_array_equal(got, q3c_naive(kind, ra, dec, level))


@pytest.mark.parametrize("kind", Q3C_KINDS)
@pytest.mark.parametrize("level", [1, 2, 3, 5, 10, 16, 20, 24, 29, 30])
def test_q3c_index_equals_sphgeom_edges_poles_seam(kind, level):
    level = q3c_cap(kind, level)
    rng = np.random.default_rng(300 + level)
    ra, dec = special_points()
    parts = [(ra, dec), cube_edge_points(rng)]
    for lvl in {level, max(level - 1, 1)}:
        parts.append(boundary_points(kind, lvl, rng))
    # Face boundaries: long segments, most of them crossing a cube edge.
    parts.append(boundary_points(kind, 1, rng, n_pairs=100, max_step=60.0))
    ra = np.concatenate([p[0] for p in parts])
    dec = np.concatenate([p[1] for p in parts])
    got = Pixelization(kind, level).pixel_index(ra, dec)
    np.testing.assert_array_equal(got, q3c_naive(kind, ra, dec, level))


@pytest.mark.parametrize("kind", Q3C_KINDS)
@pytest.mark.parametrize("level", [1, 7, 30])
def test_q3c_kernel_exact_ties_equal_sphgeom(kind, level):
    # Cube edges and corners as exact ties (x == y == z, x == -z, zero components,
    # -0.0), which positions in degrees cannot reach, and 1-2 ulp away from them.
    from l1db import _q3c_kernel

    level = q3c_cap(kind, level)
    pix = (sph.Mq3cPixelization if kind == "mq3c" else sph.Q3cPixelization)(level)
    near_one = [1.0, np.nextafter(1.0, 2.0), np.nextafter(1.0, 0.0), 1.0 - 2**-52, 1.0 + 2**-51]
    values = sorted({s * a for s in (1.0, -1.0) for a in near_one + [0.5]} | {0.0, -0.0})
    vectors = [
        sph.UnitVector3d(x, y, z) for x in values for y in values for z in values if (x, y, z) != (0.0, 0.0, 0.0)
    ]
    xyz = np.array([(v.x(), v.y(), v.z()) for v in vectors])
    got = _q3c_kernel.vector_index(xyz, level, modified=kind == "mq3c")
    np.testing.assert_array_equal(got, np.array([pix.index(v) for v in vectors], dtype=np.int64))


def test_q3c_boundary_points_straddle():
    # The bisection really lands on both sides of pixel boundaries.
    rng = np.random.default_rng(8)
    ra, dec = boundary_points("q3c", 12, rng, n_pairs=50)
    index = q3c_naive("q3c", ra, dec, 12)
    assert ra.size >= 40 and (index[0::2] != index[1::2]).all()
    assert (np.abs(ra[0::2] - ra[1::2]) <= 2 * np.spacing(np.maximum(np.abs(ra[0::2]), 1.0))).all()


def test_q3c_kernel_curves_equal_sphgeom():
    from l1db import _q3c_kernel

    rng = np.random.default_rng(9)
    for level in (1, 2, 3, 4, 7, 15, 29, 30):
        s, t = rng.integers(0, 2**level, 300), rng.integers(0, 2**level, 300)
        for x, y in zip(s.tolist() + [0, 2**level - 1], t.tolist() + [2**level - 1, 0]):
            z = _q3c_kernel._morton(x, y)
            assert z == sph.mortonIndex(x, y)
            assert _q3c_kernel._morton_to_hilbert(z, level, _q3c_kernel._HILBERT_LUT_3) == sph.hilbertIndex(x, y, level)


def test_q3c_face_table_never_unused():
    # Every sign pattern of the six comparisons that real vectors produce (ties
    # included) names a face in both tables.
    from l1db import _q3c_kernel

    values = np.arange(-4, 5) / 4.0
    for x in values:
        for y in values:
            for z in values:
                if x == y == z == 0:
                    continue
                i = _q3c_kernel._face_table_index(x, y, z)
                assert _q3c_kernel._Q3C_FACE_NUM[i] < 6 and _q3c_kernel._MQ3C_FACE_NUM[i] < 6


@pytest.mark.parametrize("kind", Q3C_KINDS)
def test_q3c_faces(kind):
    # Face centres: Q3C faces 0-5 are +Z, +X, +Y, -X, -Y, -Z; modified Q3C 10-15
    # are -Z, +X, +Y, +Z, -X, -Y (sphgeom's toString / asString tables).
    ra = np.array([0.0, 0.0, 90.0, 180.0, 270.0, 0.0])
    dec = np.array([90.0, 0.0, 0.0, 0.0, 0.0, -90.0])
    got = Pixelization(kind, 1).pixel_index(ra, dec) >> 2
    expected = [0, 1, 2, 3, 4, 5] if kind == "q3c" else [13, 11, 12, 14, 15, 10]
    assert got.tolist() == expected


@pytest.mark.parametrize("order", [0, 1, 8, 16, 29])
def test_healpix_index_equals_healpy(order):
    rng = np.random.default_rng(order)
    ra, dec = random_sky(rng, 100_000)
    sra, sdec = special_points()
    ra, dec = np.concatenate([ra, sra]), np.concatenate([dec, sdec])
    got = Pixelization("healpix", order).pixel_index(ra, dec)
    assert got.dtype == np.int64
    np.testing.assert_array_equal(got, healpy.ang2pix(2**order, ra, dec, nest=True, lonlat=True))
    # Spot-check healpy's own convention against pix2ang at the pixel centres.
    centre_ra, centre_dec = healpy.pix2ang(2**order, got[:1000], nest=True, lonlat=True)
    np.testing.assert_array_equal(Pixelization("healpix", order).pixel_index(centre_ra, centre_dec), got[:1000])


@pytest.mark.parametrize("kind,level", [("htm", 20), ("healpix", 16), ("q3c", 30), ("mq3c", 29), ("mq3c", 1)])
def test_pixel_index_shapes(kind, level):
    pix = Pixelization(kind, level)
    empty = pix.pixel_index(np.array([]), np.array([]))
    assert empty.shape == (0,) and empty.dtype == np.int64
    grid = pix.pixel_index(np.full((3, 4), 10.0), np.full((3, 4), -20.0))
    assert grid.shape == (3, 4)
    assert len(set(grid.ravel().tolist())) == 1
    listed = pix.pixel_index([10.0, 200.0], [-20.0, 60.0])
    scalar = pix.pixel_index(200.0, 60.0)
    assert scalar.shape == () and int(scalar) == listed[1]
    lo, hi = pix.universe
    assert lo <= listed.min() and listed.max() < hi


@pytest.mark.parametrize("kind", ["htm", "healpix", "q3c", "mq3c"])
@pytest.mark.parametrize(
    "ra,dec,message",
    [
        ([0.0], [90.5], "dec must lie"),
        ([0.0], [-91.0], "dec must lie"),
        ([np.nan], [0.0], "finite"),
        ([0.0], [np.inf], "finite"),
        ([0.0, 1.0], [0.0], "shapes"),
    ],
)
def test_pixel_index_bad_input(kind, ra, dec, message):
    with pytest.raises(ValueError, match=message):
        Pixelization(kind, 10).pixel_index(np.array(ra), np.array(dec))


@pytest.mark.parametrize(
    "args,message",
    [
        (("htm", 0), "htm level must be an integer from 1 to 24"),
        (("htm", 25), "from 1 to 24"),
        (("healpix", -1), "healpix level must be an integer from 0 to 29"),
        (("healpix", 30), "from 0 to 29"),
        (("htm", 20.0), "integer"),
        (("htm", True), "integer"),
        (("s2", 10), "unknown pixelization 's2'"),
        (("q3c", 0), "q3c level must be an integer from 1 to 30"),
        (("q3c", 31), "from 1 to 30"),
        (("mq3c", 0), "mq3c level must be an integer from 1 to 29"),
        (("mq3c", 30), "from 1 to 29"),
        (("htm", 20, 0), "max_ranges must be a positive integer"),
        (("healpix", 16, -3), "max_ranges"),
    ],
)
def test_bad_construction(args, message):
    with pytest.raises(ValueError, match=message):
        Pixelization(*args)


def test_attributes():
    pix = Pixelization("healpix", 16, max_ranges=32)
    assert (pix.kind, pix.level, pix.max_ranges) == ("healpix", 16, 32)
    assert pix == Pixelization("healpix", 16, 32) and pix != Pixelization("htm", 16, 32)
    assert pix.universe == (0, 12 * 4**16)
    assert Pixelization("htm", 20).universe == (8 * 4**20, 16 * 4**20)
    for kind, level in (("q3c", 1), ("q3c", 30), ("mq3c", 1), ("mq3c", 29)):
        cls = sph.Q3cPixelization if kind == "q3c" else sph.Mq3cPixelization
        assert Pixelization(kind, level).universe == tuple(cls(level).universe()[0])
    assert Pixelization("mq3c", 29).universe[1] <= np.iinfo(np.int64).max + 1


# ---------------------------------------------------------------------------
# region_contains
# ---------------------------------------------------------------------------


REGIONS = {
    "circle": circle(123.0, -45.0, 1.75),
    "circle_seam": circle(359.5, 10.0, 2.0),
    "circle_pole": circle(30.0, 88.0, 3.0),
    "circle_south_pole": circle(0.0, -90.0, 5.0),
    "polygon": polygon([(10, 10), (14, 10), (14, 13), (10, 13)]),
    "polygon_seam": polygon([(358, -3), (2, -3), (2, 3), (358, 3)]),
    "polygon_pole": polygon([(0, 85), (90, 85), (180, 85), (270, 85)]),
    "polygon_south_pole": polygon([(10, -80), (250, -82), (130, -84)]),
    "box": box(100.0, -30.0, 104.0, -26.0),
    "box_seam": box(357.0, -2.0, 3.0, 2.0),
    "box_pole": box(0.0, 84.0, 360.0, 90.0),
}


@pytest.mark.parametrize("name", sorted(REGIONS))
def test_region_contains_equals_sphgeom(name):
    region = REGIONS[name]
    rng = np.random.default_rng(abs(hash(name)) % 2**32)
    centre_ra, centre_dec = vertex_degrees(region.getBoundingCircle().getCenter())
    radius = region.getBoundingCircle().getOpeningAngle().asDegrees()
    ra, dec = random_cap(rng, 20_000, centre_ra, centre_dec, 1.2 * radius)
    ra = np.where(rng.uniform(size=ra.size) < 0.3, ra - 360.0, ra)  # RA outside [0, 360) too
    got = region_contains(region, ra, dec)
    expected = naive_region_contains(region, ra, dec)
    np.testing.assert_array_equal(got, expected)
    assert 0 < got.sum() < got.size


def test_region_contains_circle_equals_angular_distance():
    rng = np.random.default_rng(5)
    ra, dec = random_cap(rng, 50_000, 0.5, -60.0, 2.5)
    inside = region_contains(circle(0.5, -60.0, 1.75), ra, dec)
    sep = naive_angular_separation(ra, dec, 0.5, -60.0)
    clear = np.abs(sep - 1.75) > 1e-9  # sphgeom and the formula may round differently on the edge
    np.testing.assert_array_equal(inside[clear], naive_in_circle(ra, dec, 0.5, -60.0, 1.75)[clear])


def test_region_contains_shapes_and_errors():
    region = REGIONS["circle"]
    assert region_contains(region, np.array([]), np.array([])).shape == (0,)
    assert region_contains(region, np.full((2, 3), 123.0), np.full((2, 3), -45.0)).all()
    with pytest.raises(ValueError, match="dec must lie"):
        region_contains(region, np.array([1.0]), np.array([100.0]))
    with pytest.raises(TypeError, match="is not an lsst.sphgeom.Region"):
        region_contains((123.0, -45.0, 1.75), np.array([1.0]), np.array([1.0]))


@pytest.mark.parametrize("bad", [None, (1.0, 2.0, 3.0), "circle", sph.LonLat.fromDegrees(1, 2)])
def test_check_region(bad):
    with pytest.raises(TypeError, match="is not an lsst.sphgeom.Region"):
        check_region(bad)
    with pytest.raises(TypeError, match="is not an lsst.sphgeom.Region"):
        Pixelization("htm", 20).envelope(bad)
    check_region(REGIONS["box"])


# ---------------------------------------------------------------------------
# envelope
# ---------------------------------------------------------------------------


def random_regions(rng: np.random.Generator, n: int) -> list:
    regions = []
    for k in range(n):
        ra = rng.uniform(0, 360) if k % 3 else rng.choice([0.1, 359.9, 0.0])
        dec = np.degrees(np.arcsin(rng.uniform(-1, 1))) if k % 4 else rng.choice([89.0, -89.5, 0.0])
        radius = float(np.exp(rng.uniform(np.log(0.01), np.log(10.0))))
        kind = k % 3
        if kind == 0:
            regions.append(circle(ra, dec, radius))
        elif kind == 1:
            # A random convex polygon: sorted bearings around the centre.
            bearings = np.sort(rng.uniform(0, 2 * np.pi, rng.integers(3, 8)))
            if np.max(np.diff(np.concatenate([bearings, [bearings[0] + 2 * np.pi]]))) >= np.pi:
                bearings = np.linspace(0, 2 * np.pi, 5)[:-1] + rng.uniform(0, 1)
            centre = sph.UnitVector3d(sph.LonLat.fromDegrees(ra, dec))
            north = sph.UnitVector3d.northFrom(centre)
            east = sph.UnitVector3d(north.cross(centre))
            r = np.radians(radius)
            vertices = [
                sph.UnitVector3d(centre * np.cos(r) + (north * np.cos(b) + east * np.sin(b)) * np.sin(r))
                for b in bearings
            ]
            regions.append(sph.ConvexPolygon.convexHull(vertices))
        else:
            lat = np.clip([dec - radius, dec + radius], -90, 90)
            regions.append(box(ra - radius, lat[0], ra + radius, lat[1]))
    return regions


def assert_valid_ranges(ranges, pix):
    assert len(ranges) <= pix.max_ranges
    lo, hi = pix.universe
    for (_, e1), (b2, _) in zip(ranges, ranges[1:]):
        assert e1 < b2, "ranges must be sorted, disjoint and not touching"
    for begin, end in ranges:
        assert isinstance(begin, int) and isinstance(end, int)
        assert lo <= begin < end <= hi


ENVELOPE_CASES = [
    ("htm", 8, 64),
    ("htm", 14, 64),
    ("htm", 20, 64),
    ("htm", 20, 4),
    ("healpix", 4, 64),
    ("healpix", 10, 64),
    ("healpix", 16, 64),
    ("healpix", 16, 3),
    ("healpix", 29, 64),
    ("q3c", 1, 64),
    ("q3c", 8, 64),
    ("q3c", 16, 64),
    ("q3c", 16, 4),
    ("q3c", 30, 64),
    ("mq3c", 1, 64),
    ("mq3c", 8, 64),
    ("mq3c", 16, 64),
    ("mq3c", 16, 4),
    ("mq3c", 29, 64),
]


@pytest.mark.parametrize("kind,level,max_ranges", ENVELOPE_CASES)
def test_envelope_is_superset(kind, level, max_ranges):
    pix = Pixelization(kind, level, max_ranges)
    rng = np.random.default_rng(level * 100 + max_ranges)
    regions = random_regions(rng, 24) + list(REGIONS.values())
    for region in regions:
        ranges = pix.envelope(region)
        assert_valid_ranges(ranges, pix)
        bounding = region.getBoundingCircle()
        centre_ra, centre_dec = vertex_degrees(bounding.getCenter())
        ra, dec = random_cap(rng, 20_000, centre_ra, centre_dec, 1.05 * bounding.getOpeningAngle().asDegrees())
        inside = region_contains(region, ra, dec)
        assert inside.any()
        index = pix.pixel_index(ra[inside], dec[inside])
        assert naive_in_ranges(index, ranges).all(), f"{region} not covered by {kind}{level} envelope"


@pytest.mark.parametrize(
    "kind,level,slack", [("htm", 20, 1.3), ("healpix", 16, 1.3), ("q3c", 20, 1.7), ("mq3c", 20, 1.3)]
)
def test_envelope_field_of_view_is_tight(kind, level, slack):
    # A 3.5-degree field: near the field, the ranges cover little more than it.
    # This field straddles the cube edge at RA 45, where Q3C's Z-order curve
    # leaves sphgeom's envelope about 1.6 times the field (1.1 elsewhere).
    pix = Pixelization(kind, level)
    field = circle(45.0, -30.0, 1.75)
    ranges = pix.envelope(field)
    assert 1 < len(ranges) <= 64
    ra, dec = random_cap(np.random.default_rng(3), 200_000, 45.0, -30.0, 3.0)
    in_field = region_contains(field, ra, dec).sum()
    in_ranges = naive_in_ranges(pix.pixel_index(ra, dec), ranges).sum()
    assert in_field < in_ranges < slack * in_field


@pytest.mark.parametrize(
    "kind,level", [("htm", 20), ("healpix", 16), ("healpix", 0), ("q3c", 30), ("q3c", 1), ("mq3c", 29), ("mq3c", 1)]
)
def test_envelope_full_and_empty(kind, level):
    pix = Pixelization(kind, level)
    assert pix.envelope(sph.Circle.full()) == [pix.universe]
    assert pix.envelope(sph.Circle.empty()) == []
    assert pix.envelope(sph.Box.empty()) == []


def test_envelope_htm_is_sphgeom():
    region = REGIONS["polygon_seam"]
    expected = [tuple(r) for r in sph.HtmPixelization(20).envelope(region, 16)]
    assert Pixelization("htm", 20, 16).envelope(region) == expected


@pytest.mark.parametrize("kind,cls", [("q3c", sph.Q3cPixelization), ("mq3c", sph.Mq3cPixelization)])
def test_envelope_q3c_is_sphgeom(kind, cls):
    for name in ("polygon_seam", "circle_pole", "box"):
        expected = [tuple(r) for r in cls(20).envelope(REGIONS[name], 16)]
        assert Pixelization(kind, 20, 16).envelope(REGIONS[name]) == expected


def test_merge_ranges_closes_smallest_gaps():
    ranges = np.array([[0, 2], [2, 5], [10, 11], [12, 20], [100, 101], [150, 151]])
    assert _merge_ranges(ranges, 10).tolist() == [[0, 5], [10, 11], [12, 20], [100, 101], [150, 151]]
    assert _merge_ranges(ranges, 3).tolist() == [[0, 20], [100, 101], [150, 151]]
    assert _merge_ranges(ranges, 2).tolist() == [[0, 20], [100, 151]]
    assert _merge_ranges(ranges, 1).tolist() == [[0, 151]]


# ---------------------------------------------------------------------------
# pixel_ranges_clause
# ---------------------------------------------------------------------------


def test_pixel_ranges_clause_sql():
    pix = Pixelization("htm", 20)
    column = sqlalchemy.column("pixelId", sqlalchemy.BigInteger)
    clause = pix.pixel_ranges_clause(column, [(10, 20), (30, 31)])
    sql = str(clause.compile(compile_kwargs={"literal_binds": True}))
    assert sql == '"pixelId" BETWEEN 10 AND 19 OR "pixelId" = 30'
    empty = str(pix.pixel_ranges_clause(column, []).compile(dialect=sqlite.dialect()))
    assert empty in ("0", "false", "0 = 1")
    with pytest.raises(ValueError, match="empty pixel range"):
        pix.pixel_ranges_clause(column, [(5, 5)])


@pytest.mark.parametrize("kind,level", [("htm", 20), ("healpix", 29), ("q3c", 30), ("mq3c", 29)])
def test_pixel_ranges_clause_selects_same_rows(sql_db_url, kind, level):
    pix = Pixelization(kind, level, max_ranges=16)
    rng = np.random.default_rng(11)
    field = circle(359.0, -20.0, 1.75)
    ra, dec = random_cap(rng, 3000, 359.0, -20.0, 3.0)
    pixel_id = pix.pixel_index(ra, dec)
    ranges = pix.envelope(field)
    # Rows exactly on range ends, to check the BETWEEN bounds.
    edges = np.array([b for b, _ in ranges] + [e - 1 for _, e in ranges] + [e for _, e in ranges], dtype=np.int64)
    pixel_id = np.concatenate([pixel_id, edges])

    metadata = sqlalchemy.MetaData()
    table = sqlalchemy.Table(
        "pixels",
        metadata,
        sqlalchemy.Column("id", sqlalchemy.Integer, primary_key=True, autoincrement=False),
        sqlalchemy.Column("pixelId", sqlalchemy.BigInteger, nullable=False),
    )
    engine = sqlalchemy.create_engine(sql_db_url, poolclass=sqlalchemy.pool.NullPool)
    try:
        metadata.create_all(engine)
        with engine.begin() as conn:
            conn.execute(table.insert(), [{"id": i, "pixelId": int(p)} for i, p in enumerate(pixel_id)])
        with engine.connect() as conn:
            selected = conn.execute(
                sqlalchemy.select(table.c.id).where(pix.pixel_ranges_clause(table.c.pixelId, ranges))
            ).scalars().all()
            none = conn.execute(
                sqlalchemy.select(table.c.id).where(pix.pixel_ranges_clause(table.c.pixelId, []))
            ).scalars().all()
    finally:
        engine.dispose()
    expected = np.flatnonzero(naive_in_ranges(pixel_id, ranges))
    assert sorted(selected) == expected.tolist()
    assert 0 < len(expected) < len(pixel_id)
    assert none == []
