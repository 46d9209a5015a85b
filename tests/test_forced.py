"""Tests of dia_sim.forced: which objects get forced photometry."""

from __future__ import annotations

import numpy as np
import pytest
from naive import naive_forced_targets

from dia_sim.forced import forced_targets


def test_rule():
    last = np.array([100.0, 100.0, 70.0, 69.9, np.nan, 99.0])
    matched = np.array([False, True, False, False, False, False])
    mask = forced_targets(np.arange(6), last, matched, 100.0, cutoff_days=30.0)
    # unmatched & recent -> forced; matched -> not; exactly at the cutoff -> forced;
    # older -> not; never detected -> not.
    assert mask.tolist() == [True, False, True, False, False, True]


def test_against_naive():
    rng = np.random.default_rng(3)
    n = 2000
    last = rng.uniform(0, 100, n)
    last[rng.random(n) < 0.05] = np.nan
    matched = rng.random(n) < 0.4
    for cutoff in (0.0, 10.0, 30.0, 200.0):
        got = forced_targets(np.arange(n), last, matched, 100.0, cutoff)
        assert np.array_equal(got, naive_forced_targets(last, matched, 100.0, cutoff))


def test_empty_and_bad_input():
    assert forced_targets(np.zeros(0), np.zeros(0), np.zeros(0, bool), 1.0).size == 0
    with pytest.raises(ValueError):
        forced_targets(np.arange(3), np.zeros(2), np.zeros(3, bool), 1.0)
    with pytest.raises(ValueError):
        forced_targets(np.arange(3), np.zeros(3), np.zeros(3, bool), 1.0, cutoff_days=-1)
