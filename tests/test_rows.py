"""Tests of dia_sim.rows: full-width frames and DiaObject summaries."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from naive import naive_object_summaries

from dia_sim.rows import (
    NULL_COLUMNS,
    default_schema,
    make_dia_objects,
    make_dia_sources,
    make_forced_sources,
    schema_bands,
)

_DTYPE = {
    "BOOLEAN": ("bool", "boolean"),
    "SMALLINT": ("int16", "Int16"),
    "INT": ("int32", "Int32"),
    "BIGINT": ("int64", "Int64"),
    "FLOAT": ("float32",),
    "DOUBLE": ("float64",),
    "CHAR": ("str", "object"),
    "VARCHAR": ("str", "object"),
}


def check_frame_against_schema(frame: pd.DataFrame, table_name: str) -> None:
    """Every column, in order, with its dtype; non-nullable columns never null."""
    table = default_schema().tables[table_name]
    assert list(frame.columns) == table.column_names
    for col in table.columns:
        series = frame[col.name]
        assert str(series.dtype) in _DTYPE[col.type], (col.name, series.dtype)
        if not col.nullable:
            assert not series.isna().any(), col.name
        if col.name in NULL_COLUMNS and col.nullable:
            assert series.isna().all(), col.name
        if col.type in ("CHAR", "VARCHAR") and len(frame):
            assert series.str.len().max() <= col.length, col.name


def _history(rng, ids, n_per_obj, t0, bands="ugrizy"):
    oid = np.repeat(ids, n_per_obj)
    n = oid.size
    return pd.DataFrame(
        {
            "diaObjectId": oid,
            "ra": (359.99995 + rng.normal(0, 3e-5, n)) % 360.0,  # straddles RA = 0
            "dec": -30 + rng.normal(0, 3e-5, n),
            # distinct times: one source per object per visit
            "midpointMjdTai": t0 + rng.permutation(n) * 0.7,
            "band": np.array(list(bands))[rng.integers(0, len(bands), n)].astype(object),
            "psfFlux": rng.normal(1000, 300, n).astype(np.float32),
            "psfFluxErr": rng.uniform(50, 100, n).astype(np.float32),
        }
    )


def test_dia_sources_full_width():
    rng = np.random.default_rng(1)
    n = 500
    ra, dec = rng.uniform(0, 1, n), rng.uniform(-1, 0, n)
    frame = make_dia_sources(rng, ra, dec, np.arange(n) + 7, np.arange(n) + 100, 42, 3, 60000.5, "g")
    check_frame_against_schema(frame, "DiaSource")
    assert len(frame) == n
    assert (frame["visit"] == 42).all() and (frame["detector"] == 3).all()
    assert np.array_equal(frame["diaObjectId"], np.arange(n) + 7)
    assert np.array_equal(frame["diaSourceId"], np.arange(n) + 100)
    assert np.array_equal(frame["ra"], ra) and (frame["midpointMjdTai"] == 60000.5).all()
    assert (frame["band"] == "g").all()
    assert (frame["psfFluxErr"] > 0).all() and frame["psfFlux"].std() > 0
    assert not frame["pixelFlags_bad"].any()
    assert "pixelId" not in frame
    # Random columns really vary.
    assert frame["trailLength"].nunique() > n // 2


def test_forced_sources_full_width():
    rng = np.random.default_rng(2)
    objects = pd.DataFrame({"diaObjectId": np.arange(10, 30), "ra": np.linspace(1, 2, 20), "dec": np.zeros(20)})
    frame = make_forced_sources(rng, objects, 9, 1, 60001.0, "r", np.arange(20) + 1000)
    check_frame_against_schema(frame, "DiaForcedSource")
    assert np.array_equal(frame["diaObjectId"], objects["diaObjectId"])
    assert np.array_equal(frame["diaForcedSourceId"], np.arange(20) + 1000)
    assert np.array_equal(frame["ra"], objects["ra"])
    empty = make_forced_sources(rng, objects.iloc[:0], 9, 1, 60001.0, "r", np.zeros(0, np.int64))
    check_frame_against_schema(empty, "DiaForcedSource")
    assert len(empty) == 0


def test_dia_objects_summaries_match_naive():
    rng = np.random.default_rng(3)
    old_ids = np.arange(100, 160)
    history = _history(rng, old_ids, rng.integers(0, 12, old_ids.size), 59000.0)
    # New sources: for 40 of the old objects and for 15 brand-new ones.
    new_ids = np.concatenate([old_ids[:40], np.arange(1000, 1015)])
    visit_mjd = 59400.0
    new = make_dia_sources(rng, (359.99995 + rng.normal(0, 3e-5, new_ids.size)) % 360.0,
                           -30 + rng.normal(0, 3e-5, new_ids.size), new_ids,
                           np.arange(new_ids.size), 5, 0, visit_mjd, "i")
    objects = make_dia_objects(new, history, None, visit_mjd, rng=rng)
    check_frame_against_schema(objects, "DiaObject")

    assert np.array_equal(objects["diaObjectId"], np.sort(new_ids))
    assert (objects["validityStartMjdTai"] == visit_mjd).all()
    both = pd.concat([history[history["diaObjectId"].isin(new_ids)], new[list(history.columns)]])
    expected = naive_object_summaries(both)
    for _, row in objects.iterrows():
        ref = expected[row["diaObjectId"]]
        for name, value in ref.items():
            if isinstance(value, float) and np.isnan(value):
                assert np.isnan(row[name]), name
            elif name in ("ra", "dec", "firstDiaSourceMjdTai", "lastDiaSourceMjdTai"):
                assert row[name] == pytest.approx(value, rel=0, abs=1e-9), name
            else:
                # float32 storage of the statistics
                assert row[name] == pytest.approx(value, rel=1e-5), name


def test_dia_objects_band_columns_and_history_edge_cases():
    rng = np.random.default_rng(4)
    table = default_schema().tables["DiaObject"]
    assert schema_bands(table) == "ugrizy"
    # No history at all: every object made from its single new source.
    new = make_dia_sources(rng, np.array([10.0, 20.0]), np.array([5.0, 6.0]), np.array([2, 1]),
                           np.array([0, 1]), 1, 0, 60000.0, "z")
    objects = make_dia_objects(new, None, None, 60000.0, rng=rng)
    check_frame_against_schema(objects, "DiaObject")
    assert objects["diaObjectId"].tolist() == [1, 2]
    assert objects["nDiaSources"].tolist() == [1, 1]
    assert objects["z_psfFluxNdata"].tolist() == [1, 1] and objects["g_psfFluxNdata"].tolist() == [0, 0]
    assert objects["z_psfFluxMean"].to_numpy() == pytest.approx(new["psfFlux"].to_numpy()[::-1])
    assert objects["z_psfFluxSigma"].isna().all() and objects["g_psfFluxMean"].isna().all()
    assert objects["ra"].tolist() == pytest.approx([20.0, 10.0])


def test_dia_objects_first_detection_from_old_version_and_forced_means():
    rng = np.random.default_rng(5)
    history = _history(rng, np.array([1, 2]), 3, 59000.0)
    new = make_dia_sources(rng, np.array([0.0, 0.0]), np.array([-30.0, -30.0]), np.array([1, 2]),
                           np.array([0, 1]), 1, 0, 59400.0, "r")
    old = pd.DataFrame({"diaObjectId": [1, 2], "firstDiaSourceMjdTai": [58000.0, np.nan]})
    forced = pd.DataFrame({"diaObjectId": [1, 1, 2, 3], "band": ["g", "g", "u", "g"],
                           "psfFlux": [10.0, 20.0, 5.0, 99.0], "psfFluxErr": [1.0, 2.0, 1.0, 1.0]})
    objects = make_dia_objects(new, history, old, 59400.0, forced_history=forced, rng=rng)
    assert objects["firstDiaSourceMjdTai"].iloc[0] == 58000.0
    assert objects["firstDiaSourceMjdTai"].iloc[1] == history.loc[history.diaObjectId == 2, "midpointMjdTai"].min()
    assert objects["g_fpFluxMean"].iloc[0] == pytest.approx((10 / 1 + 20 / 4) / (1 + 1 / 4))
    assert objects["g_fpFluxMeanErr"].iloc[0] == pytest.approx(1 / np.sqrt(1.25))
    assert np.isnan(objects["g_fpFluxMean"].iloc[1]) and objects["u_fpFluxMean"].iloc[1] == 5.0


def test_id_lookup_and_band_codes():
    from dia_sim.rows import _band_index, _index_of

    rng = np.random.default_rng(6)
    keys = np.unique(rng.integers(0, 2**62, 5000))
    query = np.concatenate([keys, rng.integers(0, 2**62, 5000), keys[:10] + 1])
    position = {k: i for i, k in enumerate(keys.tolist())}
    expected = np.array([position.get(q, -1) for q in query.tolist()])
    assert np.array_equal(_index_of(keys, query), expected)
    assert _index_of(keys[:0], query[:3]).tolist() == [-1, -1, -1]
    bands = np.array(["g", "r", "y", "x", None, "u"], dtype=object)
    assert _band_index(bands, "ugrizy").tolist() == [1, 2, 5, -1, -1, 0]
    assert _band_index(np.array(["r", "i"], dtype=object), "ugrizy").tolist() == [2, 3]
