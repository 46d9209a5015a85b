"""Tests of dia_sim.detections: counts, detection fraction, positions inside the field."""

from __future__ import annotations

import numpy as np
import pytest
from dia_sim_fields import CircleField
from naive import naive_angular_separation

from dia_sim.detections import KIND_CATALOG, KIND_NOISE, KIND_TRANSIENT, scatter_positions, simulate_detections


def _catalog(rng, field, n):
    return field.sample_uniform(rng, n)


@pytest.mark.parametrize("center", [(10.0, -30.0), (0.2, -10.0), (123.0, -89.5)], ids=["plain", "ra0", "pole"])
def test_counts_within_poisson_tolerance(center):
    rng = np.random.default_rng(1)
    field = CircleField(*center, fov_deg=3.5)
    cat_ra, cat_dec = _catalog(rng, field, 2000)
    visits = 20
    noise, trans = [], []
    for _ in range(visits):
        det = simulate_detections(rng, field, cat_ra, cat_dec, false_per_visit=500, transients_per_visit=50)
        kinds = det["kind"].to_numpy()
        assert (kinds == KIND_CATALOG).sum() == 2000
        noise.append((kinds == KIND_NOISE).sum())
        trans.append((kinds == KIND_TRANSIENT).sum())
        assert field.contains(det["ra"].to_numpy(), det["dec"].to_numpy()).all()
    # Mean of 20 Poisson draws: standard error sqrt(mu / 20); allow 4 sigma.
    assert abs(np.mean(noise) - 500) < 4 * np.sqrt(500 / visits)
    assert abs(np.mean(trans) - 50) < 4 * np.sqrt(50 / visits)


def test_area_fraction_scales_rates():
    rng = np.random.default_rng(2)
    field = CircleField(50.0, -40.0, area_fraction=0.04)
    counts = [
        len(simulate_detections(rng, field, np.zeros(0), np.zeros(0), false_per_visit=5050, transients_per_visit=100))
        for _ in range(30)
    ]
    mu = 5150 * 0.04
    assert abs(np.mean(counts) - mu) < 4 * np.sqrt(mu / 30)


def test_detection_fraction_honoured():
    rng = np.random.default_rng(3)
    field = CircleField(200.0, -20.0)
    cat_ra, cat_dec = _catalog(rng, field, 20000)
    det = simulate_detections(rng, field, cat_ra, cat_dec, detection_fraction=0.3,
                              false_per_visit=0, transients_per_visit=0)
    n = len(det)
    # Binomial(20000, 0.3): sd = 65; allow 4 sigma.
    assert abs(n - 6000) < 4 * np.sqrt(20000 * 0.3 * 0.7)
    assert len(simulate_detections(rng, field, cat_ra, cat_dec, detection_fraction=0.0,
                                   false_per_visit=0, transients_per_visit=0)) == 0


def test_scatter_size_and_edges():
    rng = np.random.default_rng(4)
    field = CircleField(0.0, 0.0, fov_deg=0.01)  # 18" radius: many sources near the edge
    cat_ra, cat_dec = _catalog(rng, field, 5000)
    det = simulate_detections(rng, field, cat_ra, cat_dec, false_per_visit=0, transients_per_visit=0,
                              scatter_arcsec=1.0)
    ra, dec = det["ra"].to_numpy(), det["dec"].to_numpy()
    assert len(det) == 5000 and field.contains(ra, dec).all()
    sep = naive_angular_separation(cat_ra, cat_dec, ra, dec) * 3600
    # Rayleigh distribution of sigma 1": mean sqrt(pi/2) (edge sources keep sep 0).
    assert 1.1 < sep.mean() < 1.3
    assert (sep == 0).any()


@pytest.mark.parametrize("dec0", [-90.0, 89.99, 0.0])
def test_scatter_positions_isotropic_everywhere(dec0):
    rng = np.random.default_rng(5)
    n = 20000
    ra, dec = scatter_positions(rng, np.full(n, 359.9999), np.full(n, dec0), 0.5)
    assert ((ra >= 0) & (ra < 360)).all()
    sep = naive_angular_separation(359.9999, dec0, ra, dec) * 3600
    # Rayleigh: mean sigma sqrt(pi/2), mean square 2 sigma^2.
    assert sep.mean() == pytest.approx(0.5 * np.sqrt(np.pi / 2), rel=0.02)
    assert np.mean(sep**2) == pytest.approx(0.5, rel=0.03)


def test_frame_shape_and_bad_input():
    rng = np.random.default_rng(6)
    field = CircleField(10.0, -30.0)
    det = simulate_detections(rng, field, np.zeros(0), np.zeros(0), false_per_visit=0, transients_per_visit=0)
    assert list(det.columns) == ["ra", "dec", "kind"] and len(det) == 0
    with pytest.raises(ValueError):
        simulate_detections(rng, field, np.zeros(0), np.zeros(0), detection_fraction=1.5)
    with pytest.raises(ValueError):
        simulate_detections(rng, field, np.zeros(2), np.zeros(3))
