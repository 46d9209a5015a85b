"""Tests of dia_sim.association against the brute-force match in tests/naive.py."""

from __future__ import annotations

import numpy as np
import pytest
from naive import naive_angular_separation, naive_associate

from dia_sim.association import associate, nearest_objects
from dia_sim.detections import scatter_positions


def _clustered(rng, ra0, dec0, n_obj, n_src, spread_arcsec, jitter_arcsec):
    """Objects scattered around (ra0, dec0); sources near random objects plus strays."""
    obj_ra, obj_dec = scatter_positions(rng, np.full(n_obj, ra0), np.full(n_obj, dec0), spread_arcsec)
    pick = rng.integers(0, max(n_obj, 1), n_src)
    base_ra = obj_ra[pick] if n_obj else np.full(n_src, ra0)
    base_dec = obj_dec[pick] if n_obj else np.full(n_src, dec0)
    src_ra, src_dec = scatter_positions(rng, base_ra, base_dec, jitter_arcsec)
    return src_ra, src_dec, obj_ra, obj_dec


@pytest.mark.parametrize(
    "ra0, dec0",
    [(10.0, -30.0), (0.0, 0.0), (359.9999, 20.0), (45.0, 89.9999), (200.0, -90.0), (0.0, 90.0)],
    ids=["plain", "ra0", "ra360", "north-pole", "south-pole", "on-pole"],
)
@pytest.mark.parametrize("seed", range(4))
def test_clustered_matches_naive(ra0, dec0, seed):
    # Dense clusters: many sources within the radius of several objects,
    # many sources competing for one object.
    rng = np.random.default_rng(seed)
    src_ra, src_dec, obj_ra, obj_dec = _clustered(rng, ra0, dec0, 250, 300, 1.5, 0.6)
    got = associate(src_ra, src_dec, obj_ra, obj_dec, 1.0)
    expected = naive_associate(src_ra, src_dec, obj_ra, obj_dec, 1.0)
    assert (got >= 0).sum() > 50  # the inputs really exercise matching
    assert np.array_equal(got, expected)


@pytest.mark.parametrize("radius", [0.3, 1.0, 5.0, 3600.0])
def test_random_field_matches_naive(radius):
    rng = np.random.default_rng(11)
    # A 0.2-degree patch straddling RA = 0; random positions, some near objects.
    obj_ra = rng.uniform(-0.1, 0.1, 400) % 360.0
    obj_dec = rng.uniform(-50.1, -49.9, 400)
    src_ra = np.concatenate([rng.uniform(-0.1, 0.1, 200) % 360.0, obj_ra[:200]])
    src_dec = np.concatenate([rng.uniform(-50.1, -49.9, 200), obj_dec[:200]])
    src_ra, src_dec = scatter_positions(rng, src_ra, src_dec, radius / 3)
    got = associate(src_ra, src_dec, obj_ra, obj_dec, radius)
    assert np.array_equal(got, naive_associate(src_ra, src_dec, obj_ra, obj_dec, radius))


def test_whole_sky_matches_naive():
    rng = np.random.default_rng(5)
    n = 500
    obj_ra, obj_dec = rng.uniform(0, 360, n), np.degrees(np.arcsin(rng.uniform(-1, 1, n)))
    src_ra, src_dec = scatter_positions(rng, obj_ra, obj_dec, 3600.0)
    for radius in (3600.0, 4 * 3600.0):
        got = associate(src_ra, src_dec, obj_ra, obj_dec, radius)
        assert np.array_equal(got, naive_associate(src_ra, src_dec, obj_ra, obj_dec, radius))


def test_nearest_within_radius():
    # Objects 0.5" and 0.8" east of the source: the nearer one wins; at 1.2" none.
    dec = -45.0
    step = 1.0 / 3600.0 / np.cos(np.radians(dec))
    obj_ra = np.array([10.0 + 0.8 * step, 10.0 + 0.5 * step, 10.0 + 1.2 * step])
    obj_dec = np.full(3, dec)
    idx, chord2 = nearest_objects(np.array([10.0]), np.array([dec]), obj_ra, obj_dec, 1.0)
    assert idx.tolist() == [1]
    assert np.sqrt(chord2[0]) == pytest.approx(np.radians(0.5 / 3600.0), rel=1e-6)
    assert associate(np.array([10.0]), np.array([dec]), obj_ra[2:], obj_dec[2:], 1.0).tolist() == [-1]


def test_conflict_nearest_source_keeps_object():
    obj_ra, obj_dec = np.array([50.0]), np.array([0.0])
    a = 1.0 / 3600.0
    src_ra = np.array([50.0 + 0.6 * a, 50.0 - 0.3 * a, 50.0 + 0.3 * a])
    src_dec = np.zeros(3)
    # Sources 1 and 2 are equally near: the lower index keeps the object.
    assert associate(src_ra, src_dec, obj_ra, obj_dec, 1.0).tolist() == [-1, 0, -1]


def test_each_object_used_once_and_matches_within_radius():
    rng = np.random.default_rng(2)
    src_ra, src_dec, obj_ra, obj_dec = _clustered(rng, 120.0, -60.0, 3000, 3000, 20.0, 0.5)
    idx = associate(src_ra, src_dec, obj_ra, obj_dec, 1.0)
    used = idx[idx >= 0]
    assert np.unique(used).size == used.size
    sep = naive_angular_separation(src_ra[idx >= 0], src_dec[idx >= 0], obj_ra[used], obj_dec[used]) * 3600
    assert (sep <= 1.0).all()


def test_empty_inputs():
    empty = np.zeros(0)
    assert associate(empty, empty, np.array([1.0]), np.array([2.0])).size == 0
    got = associate(np.array([1.0, 2.0]), np.array([0.0, 0.0]), empty, empty)
    assert got.tolist() == [-1, -1] and got.dtype == np.int64
    assert associate(empty, empty, empty, empty).size == 0


def test_bad_input():
    with pytest.raises(ValueError):
        associate(np.zeros(2), np.zeros(3), np.zeros(1), np.zeros(1))
    with pytest.raises(ValueError):
        associate(np.zeros(2), np.zeros(2), np.zeros(1), np.zeros(1), radius_arcsec=0.0)
