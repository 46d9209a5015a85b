"""Tests of dia_sim.ids: ids unique across visits and tiles."""

from __future__ import annotations

import numpy as np
import pytest

from dia_sim.ids import MAX_ROWS, MAX_TILES, MAX_VISIT, make_ids, split_ids


def test_layout():
    ids = make_ids(5, 3, 4)
    assert ids.dtype == np.int64
    assert ids.tolist() == [(5 << 32) | (3 << 20) | i for i in range(4)]
    visit, tile, row = split_ids(ids)
    assert visit.tolist() == [5] * 4 and tile.tolist() == [3] * 4 and row.tolist() == [0, 1, 2, 3]


def test_unique_across_visits_and_tiles():
    ids = np.concatenate([make_ids(v, t, 1000) for v in (0, 1, 2**31 - 1) for t in (0, 1, 4095)])
    assert np.unique(ids).size == ids.size
    assert (ids >= 0).all()


def test_largest_values_stay_positive():
    ids = make_ids(MAX_VISIT - 1, MAX_TILES - 1, MAX_ROWS - 1)
    assert ids[-1] == np.iinfo(np.int64).max - 1
    assert make_ids(7, 0, 0).size == 0


@pytest.mark.parametrize(
    "visit, tile, n",
    [(0, 0, MAX_ROWS), (0, MAX_TILES, 1), (0, -1, 1), (-1, 0, 1), (MAX_VISIT, 0, 1), (0, 0, -1)],
)
def test_out_of_range(visit, tile, n):
    with pytest.raises(ValueError):
        make_ids(visit, tile, n)
