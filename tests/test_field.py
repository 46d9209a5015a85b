"""Tests of dia_sim.field: tiles of a field of view."""

from __future__ import annotations

import math

import numpy as np
import pytest
from lsst import sphgeom
from naive import naive_field_tile, naive_in_circle

from dia_sim._sphere import sample_cap
from dia_sim.field import FieldTile, field_tiles
from l1db.sphere import radec_to_xyz, xyz_to_radec

# Ordinary sky, across RA = 0, near and at both poles, on the equator.
CENTERS = [(10.0, -30.0), (0.0, -40.0), (359.9, 20.0), (45.0, -89.9), (0.0, -90.0), (200.0, 89.0), (120.0, 0.0)]
DIVIDES = [1, 2, 3, 5, 15]


def _points_around(center_ra, center_dec, radius_deg, n, seed=0):
    """Points uniform in a cap somewhat larger than the field, so some fall outside."""
    rng = np.random.default_rng(seed)
    xyz = sample_cap(rng, radec_to_xyz(center_ra, center_dec), math.radians(radius_deg), n)
    return xyz_to_radec(xyz)


@pytest.mark.parametrize("center", CENTERS)
@pytest.mark.parametrize("n_divide", DIVIDES)
def test_tiles_partition_field(center, n_divide):
    fov = 3.5
    ra, dec = _points_around(*center, fov / 2 * 1.3, 20000)
    tiles = field_tiles(*center, fov, n_divide)
    assert [t.tile for t in tiles] == list(range(n_divide**2))
    owners = np.zeros(len(ra), dtype=int)
    for tile in tiles:
        owners += tile.contains(ra, dec)
    inside = naive_in_circle(ra, dec, *center, fov / 2)
    assert 0.4 < inside.mean() < 0.8
    np.testing.assert_array_equal(owners, inside.astype(int))


@pytest.mark.parametrize("center", CENTERS)
@pytest.mark.parametrize("n_divide", [2, 5])
def test_tile_assignment_matches_naive(center, n_divide):
    ra, dec = _points_around(*center, 2.2, 2000, seed=1)
    expected = naive_field_tile(ra, dec, *center, 3.5, n_divide)
    np.testing.assert_array_equal(FieldTile(*center, 3.5, n_divide).tile_of(ra, dec), expected)


@pytest.mark.parametrize("center", CENTERS)
@pytest.mark.parametrize("n_divide", DIVIDES)
def test_region_contains_tile_points(center, n_divide):
    ra, dec = _points_around(*center, 2.0, 20000, seed=2)
    xyz = radec_to_xyz(ra, dec)
    for tile in field_tiles(*center, 3.5, n_divide):
        region = tile.region
        assert isinstance(region, sphgeom.Circle if n_divide == 1 else sphgeom.ConvexPolygon)
        mine = tile.contains(ra, dec)
        in_region = region.contains(xyz[:, 0], xyz[:, 1], xyz[:, 2])
        assert np.all(in_region[mine])
        # Not a trivially large region: the tile's bounding circle is about its size.
        radius = region.getBoundingCircle().getOpeningAngle().asDegrees()
        assert radius <= 1.75 * (1 + 1e-6) if n_divide == 1 else radius <= 1.75 * math.sqrt(2) / n_divide * 1.01


def test_tile_edge_points_belong_to_one_tile():
    """Points exactly on the grid lines (in the tangent plane) still get exactly one tile."""
    tiles = field_tiles(0.0, -60.0, 3.5, 4)
    t = tiles[0]
    half = math.tan(math.radians(1.75))
    grid = np.linspace(-half, half, 9)  # edges and mid-lines of the 4x4 squares
    xi, eta = (a.ravel() for a in np.meshgrid(grid, grid))
    keep = np.hypot(xi, eta) < half * (1 - 1e-12)
    xyz = t._center + xi[keep, None] * t._east + eta[keep, None] * t._north
    ra, dec = xyz_to_radec(xyz)
    owners = sum(tile.contains(ra, dec).astype(int) for tile in tiles)
    np.testing.assert_array_equal(owners, 1)
    for tile in tiles:
        mine = tile.contains(ra, dec)
        unit = xyz / np.linalg.norm(xyz, axis=1)[:, None]
        assert np.all(tile.region.contains(unit[mine, 0], unit[mine, 1], unit[mine, 2]))


@pytest.mark.parametrize("center", [(10.0, -30.0), (0.0, -90.0), (359.9, 20.0)])
@pytest.mark.parametrize("n_divide", DIVIDES)
def test_area_fractions(center, n_divide):
    tiles = field_tiles(*center, 3.5, n_divide)
    fractions = np.array([t.area_fraction for t in tiles])
    assert fractions.sum() == pytest.approx(1.0, abs=1e-12)
    # Corner tiles of a fine grid can lie wholly outside the circle: exactly empty.
    half = math.tan(math.radians(1.75))
    nearest = []
    for t in tiles:
        xi0, xi1, eta0, eta1 = t.bounds
        nearest.append(math.hypot(max(xi0, 0.0, -xi1), max(eta0, 0.0, -eta1)))
    np.testing.assert_array_equal(fractions == 0, np.array(nearest) >= half)
    assert np.all(fractions >= 0)
    assert (fractions == 0).sum() == (24 if n_divide == 15 else 0)
    # The projection is symmetric about both axes: mirrored tiles have equal areas.
    grid = fractions.reshape(n_divide, n_divide)
    np.testing.assert_allclose(grid, grid[::-1, :], rtol=1e-12)
    np.testing.assert_allclose(grid, grid[:, ::-1], rtol=1e-12)
    np.testing.assert_allclose(grid, grid.T, rtol=1e-12)
    # Monte-Carlo shares of points uniform in the field.
    n = 400_000
    field = FieldTile(*center, 3.5)
    ra, dec = field.sample_uniform(np.random.default_rng(3), n)
    shares = np.bincount(tiles[0].tile_of(ra, dec), minlength=n_divide**2) / n
    sigma = np.sqrt(fractions * (1 - fractions) / n)
    assert np.all(np.abs(shares - fractions) < 5 * sigma + 1e-12)


def test_area_fraction_large_field():
    """A wide field (where the gnomonic distortion is large) against Monte Carlo."""
    tiles = field_tiles(30.0, -50.0, 60.0, 3)
    fractions = np.array([t.area_fraction for t in tiles])
    ra, dec = FieldTile(30.0, -50.0, 60.0).sample_uniform(np.random.default_rng(4), 400_000)
    shares = np.bincount(tiles[0].tile_of(ra, dec), minlength=9) / 400_000
    assert fractions.sum() == pytest.approx(1.0, abs=1e-12)
    # Corner tiles hold less than in a flat square: the distortion is visible.
    assert fractions[0] < fractions[1] < fractions[4]
    np.testing.assert_allclose(shares, fractions, atol=5 * math.sqrt(0.25 / 400_000))


@pytest.mark.parametrize("center", CENTERS)
@pytest.mark.parametrize("n_divide,tile", [(1, 0), (3, 4), (3, 0), (5, 7), (15, 3), (15, 112)])
def test_sample_uniform_stays_in_tile(center, n_divide, tile):
    t = FieldTile(*center, 3.5, n_divide, tile)
    ra, dec = t.sample_uniform(np.random.default_rng(5), 3000)
    assert ra.shape == dec.shape == (3000,)
    assert np.all(t.contains(ra, dec))
    assert np.all((ra >= 0) & (ra < 360))
    np.testing.assert_array_equal(naive_field_tile(ra[:300], dec[:300], *center, 3.5, n_divide), tile)


@pytest.mark.parametrize("center", [(10.0, -30.0), (0.0, -90.0), (0.0, -40.0)])
@pytest.mark.parametrize("tile", [0, 4])
def test_sample_uniform_is_uniform(center, tile):
    """Sub-tile counts match solid-angle shares: a 3x3 tile splits into 3x3 tiles of the 9x9 grid."""
    coarse = FieldTile(*center, 3.5, 3, tile)
    n = 200_000
    ra, dec = coarse.sample_uniform(np.random.default_rng(6), n)
    fine = FieldTile(*center, 3.5, 9)
    counts = np.bincount(fine.tile_of(ra, dec), minlength=81)
    cx, cy = tile % 3, tile // 3
    sub = [(3 * cy + j) * 9 + (3 * cx + i) for j in range(3) for i in range(3)]
    assert counts[sub].sum() == n
    expected = np.array([FieldTile(*center, 3.5, 9, s).area_fraction for s in sub])
    expected = expected / expected.sum()
    sigma = np.sqrt(expected * (1 - expected) / n)
    assert np.all(np.abs(counts[sub] / n - expected) <= 5 * sigma)
    # Radial profile of the whole field: uniform in solid angle means
    # the share within angle a is (1 - cos a) / (1 - cos r).
    if tile == 4:
        ra, dec = FieldTile(*center, 3.5).sample_uniform(np.random.default_rng(7), n)
        a = np.radians(1.0)
        share = naive_in_circle(ra, dec, *center, 1.0).mean()
        expected_share = (1 - math.cos(a)) / (1 - math.cos(math.radians(1.75)))
        assert abs(share - expected_share) < 5 * math.sqrt(expected_share * (1 - expected_share) / n)


def test_sample_uniform_empty_and_reproducible():
    t = FieldTile(10.0, -30.0, 3.5, 5, 3)
    ra, dec = t.sample_uniform(np.random.default_rng(1), 0)
    assert len(ra) == len(dec) == 0
    outside = FieldTile(10.0, -30.0, 3.5, 15, 0)  # a corner wholly outside the circle
    assert outside.area_fraction == 0.0
    assert len(outside.sample_uniform(np.random.default_rng(1), 0)[0]) == 0
    with pytest.raises(ValueError, match="outside the field"):
        outside.sample_uniform(np.random.default_rng(1), 1)
    a = t.sample_uniform(np.random.default_rng(9), 100)
    b = t.sample_uniform(np.random.default_rng(9), 100)
    np.testing.assert_array_equal(a, b)


def test_scalar_and_orientation():
    t = FieldTile(10.0, -30.0, 3.5, 3)
    assert t.tile_of(10.0, -30.0).tolist() == [4]
    assert t.tile_of(11.5, -30.0).tolist() == [5]  # east: increasing RA
    assert t.tile_of(10.0, -31.5).tolist() == [1]  # south
    assert t.tile_of(10.0, -20.0).tolist() == [-1]
    assert t.tile_of(190.0, 30.0).tolist() == [-1]  # antipode
    assert "n_divide=3" in repr(t)


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(fov_deg=0.0),
        dict(fov_deg=180.0),
        dict(center_dec=91.0),
        dict(n_divide=0),
        dict(n_divide=2.5),
        dict(n_divide=2, tile=4),
        dict(tile=-1),
    ],
)
def test_bad_arguments(kwargs):
    args = dict(center_ra=10.0, center_dec=-30.0, fov_deg=3.5, n_divide=1, tile=0) | kwargs
    with pytest.raises(ValueError):
        FieldTile(**args)
