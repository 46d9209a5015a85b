"""Tests of dia_sim.visit_sim: two visits of one field through the whole simulation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from dia_sim_fields import CircleField

from dia_sim.detections import KIND_CATALOG
from dia_sim.rows import SOURCE_HISTORY_COLUMNS
from dia_sim.visit_sim import OBJECT_COLUMNS, SimConfig, VisitSimulator
from l1db.config import ConfigError


def test_two_visits():
    rng = np.random.default_rng(7)
    field = CircleField(0.5, -45.0, fov_deg=0.5)
    cat_ra, cat_dec = field.sample_uniform(rng, 300)
    sim = VisitSimulator(SimConfig(false_per_visit=100, transients_per_visit=10))
    sim.warm_up()

    # Visit 1: empty database, every detection starts an object.
    det1 = sim.detect(rng, field, cat_ra, cat_dec)
    no_objects = pd.DataFrame({c: np.zeros(0) for c in OBJECT_COLUMNS}).astype({"diaObjectId": np.int64})
    a1 = sim.associate(det1, no_objects)
    assert a1.n_new == len(det1) and a1.n_matched == 0
    obj1, src1, fsrc1 = sim.build_rows(rng, 1, 0, 60000.0, "r", det1, a1, no_objects, None, None)
    assert len(obj1) == len(src1) == len(det1) and len(fsrc1) == 0
    assert obj1["diaObjectId"].is_unique and set(obj1["diaObjectId"]) == set(src1["diaObjectId"])
    assert (obj1["nDiaSources"] == 1).all()

    # Visit 2, a day later: catalogue detections find their objects.
    det2 = sim.detect(rng, field, cat_ra, cat_dec)
    objects = obj1[list(OBJECT_COLUMNS)]
    a2 = sim.associate(det2, objects)
    is_cat = det2["kind"].to_numpy() == KIND_CATALOG
    assert (a2.object_index[is_cat] >= 0).all()
    obj2, src2, fsrc2 = sim.build_rows(
        rng, 2, 0, 60001.0, "g", det2, a2, objects, src1[list(SOURCE_HISTORY_COLUMNS)], fsrc1
    )
    # Every unmatched visit-1 object (noise, transients) gets forced photometry.
    assert len(fsrc2) == (~a2.matched_objects).sum()
    assert not set(fsrc2["diaObjectId"]) & set(src2["diaObjectId"])
    matched_ids = objects["diaObjectId"].to_numpy()[a2.matched_objects]
    again = obj2.set_index("diaObjectId").loc[matched_ids]
    assert (again["nDiaSources"] == 2).all()
    assert (again["r_psfFluxNdata"] == 1).all() and (again["g_psfFluxNdata"] == 1).all()
    assert (again["firstDiaSourceMjdTai"] == 60000.0).all() and (again["lastDiaSourceMjdTai"] == 60001.0).all()
    # New ids of visit 2 never collide with visit 1's.
    assert not set(src2["diaSourceId"]) & set(src1["diaSourceId"])
    new_ids = set(obj2["diaObjectId"]) - set(matched_ids)
    assert len(new_ids) == a2.n_new and not new_ids & set(obj1["diaObjectId"])


def test_forced_cutoff_and_missing_last_detection_column():
    rng = np.random.default_rng(8)
    sim = VisitSimulator(SimConfig(forced_cutoff_days=30.0))
    objects = pd.DataFrame({"diaObjectId": np.array([1, 2], np.int64), "ra": [10.0, 11.0], "dec": [0.0, 0.0]})
    history = pd.DataFrame({"diaObjectId": [1, 2], "ra": [10.0, 11.0], "dec": [0.0, 0.0],
                            "midpointMjdTai": [99.0, 50.0], "band": ["r", "r"],
                            "psfFlux": [1.0, 1.0], "psfFluxErr": [1.0, 1.0]})
    det = pd.DataFrame({"ra": [50.0], "dec": [0.0], "kind": np.array([1], np.int8)})
    assoc = sim.associate(det, objects)
    _, _, forced = sim.build_rows(rng, 3, 0, 100.0, "r", det, assoc, objects, history, None)
    # Object 2 was last seen 50 days ago: beyond the cutoff.
    assert forced["diaObjectId"].tolist() == [1]


def test_sim_config_checked_by_its_declaration() -> None:
    # The bounds are the [ap_proto] option's: one declaration, one message.
    with pytest.raises(ConfigError) as err:
        SimConfig(detection_fraction=2)
    assert str(err.value) == "SimConfig detection_fraction: bad value 2; allowed: a number from 0 to 1"
    with pytest.raises(ConfigError, match="match_radius"):
        SimConfig(match_radius_arcsec=0)
    assert SimConfig(match_radius=2.5).match_radius_arcsec == 2.5
