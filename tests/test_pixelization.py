"""Tests of l1db.pixelization: exact pixel indices, envelope supersets, SQL ranges."""

from __future__ import annotations

import healpy
import lsst.sphgeom as sph
import numpy as np
import pytest
import sqlalchemy
from sqlalchemy.dialects import sqlite

from l1db.pixelization import Pixelization, check_region, region_contains
from l1db.pixelization import _merge_ranges  # private, tested for its gap-closing rule

from naive import (
    naive_angular_separation,
    naive_htm_index,
    naive_in_circle,
    naive_in_ranges,
    naive_region_contains,
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


@pytest.mark.parametrize("kind,level", [("htm", 20), ("healpix", 16)])
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


@pytest.mark.parametrize("kind", ["htm", "healpix"])
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
        (("q3c", 10), "unknown pixelization 'q3c'"),
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
    for (b1, e1), (b2, e2) in zip(ranges, ranges[1:]):
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


@pytest.mark.parametrize("kind,level", [("htm", 20), ("healpix", 16)])
def test_envelope_field_of_view_is_tight(kind, level):
    # A 3.5-degree field: near the field, the ranges cover little more than it.
    pix = Pixelization(kind, level)
    field = circle(45.0, -30.0, 1.75)
    ranges = pix.envelope(field)
    assert 1 < len(ranges) <= 64
    ra, dec = random_cap(np.random.default_rng(3), 200_000, 45.0, -30.0, 3.0)
    in_field = region_contains(field, ra, dec).sum()
    in_ranges = naive_in_ranges(pix.pixel_index(ra, dec), ranges).sum()
    assert in_field < in_ranges < 1.3 * in_field


@pytest.mark.parametrize("kind,level", [("htm", 20), ("healpix", 16), ("healpix", 0)])
def test_envelope_full_and_empty(kind, level):
    pix = Pixelization(kind, level)
    assert pix.envelope(sph.Circle.full()) == [pix.universe]
    assert pix.envelope(sph.Circle.empty()) == []
    assert pix.envelope(sph.Box.empty()) == []


def test_envelope_htm_is_sphgeom():
    region = REGIONS["polygon_seam"]
    expected = [tuple(r) for r in sph.HtmPixelization(20).envelope(region, 16)]
    assert Pixelization("htm", 20, 16).envelope(region) == expected


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


@pytest.mark.parametrize("kind,level", [("htm", 20), ("healpix", 29)])
def test_pixel_ranges_clause_selects_same_rows(db_url, kind, level):
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
    engine = sqlalchemy.create_engine(db_url, poolclass=sqlalchemy.pool.NullPool)
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
