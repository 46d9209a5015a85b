"""Tests of dia_sim.pointing: seeded random pointings."""

from __future__ import annotations

import math

import numpy as np
import pytest

from dia_sim.pointing import parse_pointing_area, random_pointings

N = 100_000


def _sigma(p: float, n: int = N) -> float:
    return math.sqrt(p * (1 - p) / n)


def test_southern_sky_uniform_and_field_inside():
    ra, dec = random_pointings(np.random.default_rng(1), N)
    assert ra.shape == dec.shape == (N,)
    assert np.all((ra >= 0) & (ra < 360))
    assert dec.max() <= -1.75 and dec.min() >= -90
    # Uniform on the sphere: sin(dec) uniform on [-1, sin(-1.75 deg)].
    top = math.sin(math.radians(-1.75))
    s = np.sin(np.radians(dec))
    frac = (s < 0.5 * (top - 1)).mean()
    assert abs(frac - 0.5) < 5 * _sigma(0.5)
    # Share within 30 degrees of the pole: (1 - cos 30) of the cap, scaled to the band.
    polar = (dec < -60).mean()
    expected = (1 - math.cos(math.radians(30))) / (1 + top)
    assert abs(polar - expected) < 5 * _sigma(expected)
    quadrants = np.bincount((ra // 90).astype(int), minlength=4) / N
    assert np.all(np.abs(quadrants - 0.25) < 5 * _sigma(0.25))


def test_full_sky_and_no_margin():
    ra, dec = random_pointings(np.random.default_rng(2), N, sky="full", fov_deg=0)
    assert abs((dec > 0).mean() - 0.5) < 5 * _sigma(0.5)
    assert dec.max() > 80 and dec.min() < -80
    _, dec = random_pointings(np.random.default_rng(2), N, sky="south", fov_deg=0)
    assert dec.max() > -0.1 and dec.max() <= 0


def test_seeded_reproducible():
    a = random_pointings(np.random.default_rng(7), 50)
    b = random_pointings(np.random.default_rng(7), 50)
    c = random_pointings(np.random.default_rng(8), 50)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a[0], c[0])


def test_area_wrapping_through_ra_zero():
    area = parse_pointing_area("350,10,-40,-20")
    ra, dec = random_pointings(np.random.default_rng(3), N, area=area, fov_deg=3.5)
    assert np.all((ra >= 350) | (ra <= 10))
    assert abs((ra >= 350).mean() - 0.5) < 5 * _sigma(0.5)
    assert dec.min() >= -40 + 1.75 and dec.max() <= -20 - 1.75
    # Uniform in solid angle within the band: sin(dec) uniform.
    lo, hi = math.sin(math.radians(-38.25)), math.sin(math.radians(-21.75))
    s = np.sin(np.radians(dec))
    assert abs((s < 0.5 * (lo + hi)).mean() - 0.5) < 5 * _sigma(0.5)


def test_area_plain_and_polar():
    ra, dec = random_pointings(np.random.default_rng(4), 1000, area=(30, 60, -10, 10), fov_deg=3.5)
    assert np.all((ra >= 30) & (ra <= 60)) and dec.min() >= -8.25 and dec.max() <= 8.25
    # The pole is not a limit: no margin on that side.
    ra, dec = random_pointings(np.random.default_rng(4), N, area=(0, 360, -90, -80), fov_deg=3.5)
    assert dec.min() < -89.5 and dec.max() <= -81.75
    # A band narrower than a field keeps its centre line.
    ra, dec = random_pointings(np.random.default_rng(4), 10, area=(0, 10, -31, -30), fov_deg=3.5)
    np.testing.assert_allclose(dec, -30.5)


@pytest.mark.parametrize(
    "text,expected",
    [
        ("350,10,-40,-20", (350.0, 10.0, -40.0, -20.0)),
        (" 0 , 360 , -90 , 0 ", (0.0, 360.0, -90.0, 0.0)),
        ("10.5,20.25,-5,5", (10.5, 20.25, -5.0, 5.0)),
    ],
)
def test_parse_pointing_area(text, expected):
    assert parse_pointing_area(text) == expected


@pytest.mark.parametrize(
    "text,match",
    [
        ("1,2,3", "4 numbers"),
        ("1,2,3,4,5", "4 numbers"),
        ("a,2,-3,4", "numbers"),
        ("1,2,nan,4", "finite"),
        ("-1,20,-30,-20", "RA"),
        ("10,361,-30,-20", "RA"),
        ("10,20,-91,-20", "Dec"),
        ("10,20,-20,-30", "DEC_MIN < DEC_MAX"),
        ("10,10,-30,-20", "empty"),
        ("", "4 numbers"),
    ],
)
def test_parse_pointing_area_errors(text, match):
    with pytest.raises(ValueError, match=match) as info:
        parse_pointing_area(text)
    assert "\n" not in str(info.value)


def test_bad_arguments():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError):
        random_pointings(rng, 1, sky="north")
    with pytest.raises(ValueError):
        random_pointings(rng, -1)
    with pytest.raises(ValueError):
        random_pointings(rng, 1, area=(10, 20, 0, -5))
    assert [len(a) for a in random_pointings(rng, 0)] == [0, 0]
