"""The camera's 189 detectors as the tiles of a visit (``--divide camera``).

The focal plane (dia_sim.tiling) against the raft and sensor names computed
point by point (tests/naive.py), on the sky (dia_sim.field), in the catalogue,
in log2csv, and an ap_proto run on SQLite whose rows carry their detectors.
The run processes the tiles in the ap_proto process itself: one process per
tile would start 189 (the bounded worker pool is issue 9's part 2).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from ap_runs import PATCH, run_ap_proto
from astropy.time import Time
from conftest import write_config
from naive import NAIVE_RAFTS, naive_camera_detector, naive_in_circle

from dia_sim import tile_processor
from dia_sim._sphere import sample_cap
from dia_sim.catalog import SourceCatalog, generate_catalog
from dia_sim.field import FieldTile, field_tiles
from dia_sim.log2csv import logs_to_table, tiles_per_visit
from dia_sim.tiling import CAMERA_DETECTOR_SIDE, CAMERA_DETECTORS, CAMERA_EMPTY_DETECTORS, divide_of, tiling
from l1db.cli.create_l1_schema import main as create
from l1db.scratch import read_table
from l1db.sphere import radec_to_xyz, xyz_to_radec
from l1db.timing_log import parse_log

CENTERS = [(10.0, -30.0), (0.0, -40.0), (359.9, 20.0), (45.0, -89.9), (0.0, -90.0), (120.0, 0.0)]
FOV = 3.5
#: Tangent-plane radius of the field.
HALF = math.tan(math.radians(FOV / 2))


def _points_around(center, radius_deg, n, seed=0):
    rng = np.random.default_rng(seed)
    return xyz_to_radec(sample_cap(rng, radec_to_xyz(*center), math.radians(radius_deg), n))


def _sky_point(tile: FieldTile, xi: np.ndarray, eta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """RA, Dec of tangent-plane points of a field."""
    return xyz_to_radec(tile._center + xi[:, None] * tile._east + eta[:, None] * tile._north)


# -------------------------------------------------------------- the focal plane


def test_189_square_detectors_that_never_overlap() -> None:
    cam = tiling("camera")
    assert cam.n_tiles == CAMERA_DETECTORS == 189 and cam.divide == "camera"
    b = np.array([cam.bounds(t) for t in range(cam.n_tiles)])
    np.testing.assert_allclose(b[:, 1] - b[:, 0], CAMERA_DETECTOR_SIDE, rtol=1e-12)
    np.testing.assert_allclose(b[:, 3] - b[:, 2], CAMERA_DETECTOR_SIDE, rtol=1e-12)
    # Overlap of every pair of squares: zero area (shared edges at most).
    dx = np.minimum(b[:, None, 1], b[None, :, 1]) - np.maximum(b[:, None, 0], b[None, :, 0])
    dy = np.minimum(b[:, None, 3], b[None, :, 3]) - np.maximum(b[:, None, 2], b[None, :, 2])
    overlap = np.clip(dx, 0, None) * np.clip(dy, 0, None)
    np.fill_diagonal(overlap, 0.0)
    assert overlap.max() < 1e-12 * CAMERA_DETECTOR_SIDE**2
    # 21 rafts of 3 x 3 on a 5 x 5 grid without its corners.
    centers = np.stack([(b[:, 0] + b[:, 1]) / 2, (b[:, 2] + b[:, 3]) / 2], axis=1) / CAMERA_DETECTOR_SIDE
    raft_cells = {tuple(c) for c in np.floor(centers[::9] / 3 + 2.5).astype(int)}
    assert len(raft_cells) == 21 and not raft_cells & {(0, 0), (0, 4), (4, 0), (4, 4)}
    for raft in range(21):
        cells = np.round(centers[9 * raft:9 * raft + 9] - centers[9 * raft]).astype(int)
        assert sorted(map(tuple, cells)) == [(x, y) for x in range(3) for y in range(3)]


def test_detector_numbers_are_the_cameras() -> None:
    """R22_S11 (94) at the centre; R01_S00 (0) south-west of R01; names as the naive reference spells them."""
    cam = tiling("camera")
    assert cam.tile_of(np.array([0.0]), np.array([0.0]))[0] == 94
    assert NAIVE_RAFTS.index("R22") * 9 + 4 == 94
    s = CAMERA_DETECTOR_SIDE
    # R01 is raft row 0 (south), column 1; its S00 is its south-west detector.
    assert cam.bounds(0) == pytest.approx((-4.5 * s, -3.5 * s, -7.5 * s, -6.5 * s))
    assert cam.bounds(188) == pytest.approx((3.5 * s, 4.5 * s, 6.5 * s, 7.5 * s))
    assert divide_of(189) == "camera" and divide_of(16) == 4 and divide_of(7) is None


def test_detector_side_is_the_smallest_that_covers_the_circle() -> None:
    """The circle passes through the inner corners of the four missing rafts: a hair further out is uncovered."""
    assert CAMERA_DETECTOR_SIDE * 4.5 * math.sqrt(2) == pytest.approx(1.0, rel=1e-15)
    cam = tiling("camera")
    b = np.array([cam.bounds(t) for t in range(cam.n_tiles)])

    def covered(x: float, y: float) -> bool:
        return bool(np.any((b[:, 0] <= x) & (x <= b[:, 1]) & (b[:, 2] <= y) & (y <= b[:, 3])))

    for angle in np.radians([45.0, 135.0, 225.0, 315.0]):
        assert covered(math.cos(angle) * (1 - 1e-9), math.sin(angle) * (1 - 1e-9))
        assert not covered(math.cos(angle) * (1 + 1e-9), math.sin(angle) * (1 + 1e-9))
    # Every other direction is covered with room to spare.
    angles = np.linspace(0, 2 * np.pi, 3601)
    assert all(covered(math.cos(a), math.sin(a)) for a in angles if min(abs(a - q) for q in np.radians(
        [45.0, 135.0, 225.0, 315.0])) > 1e-6)


@pytest.mark.parametrize("center", CENTERS)
def test_detectors_cover_the_field_circle_exactly_once(center) -> None:
    ra, dec = _points_around(center, FOV / 2 * 1.3, 20000)
    tiles = field_tiles(*center, FOV, "camera")
    assert [t.tile for t in tiles] == list(range(189))
    owners = sum(t.contains(ra, dec).astype(int) for t in tiles)
    inside = naive_in_circle(ra, dec, *center, FOV / 2)
    assert 0.4 < inside.mean() < 0.8
    np.testing.assert_array_equal(owners, inside.astype(int))
    np.testing.assert_array_equal(tiles[0].tile_of(ra, dec), naive_camera_detector(ra, dec, *center, FOV))


def test_edge_points_belong_to_one_detector() -> None:
    """Points on detector edges and near the four points where the circle touches the missing rafts get one detector."""
    tiles = field_tiles(0.0, -60.0, FOV, "camera")
    s = CAMERA_DETECTOR_SIDE * HALF
    grid = np.arange(-7.5, 7.51, 0.5) * s  # edges and middles of the detectors
    xi, eta = (a.ravel() for a in np.meshgrid(grid, grid))
    keep = np.hypot(xi, eta) < HALF * (1 - 1e-12)
    touch = 4.5 * s * (1 - 1e-12)
    xi = np.concatenate([xi[keep], touch * np.array([1, 1, -1, -1])])
    eta = np.concatenate([eta[keep], touch * np.array([1, -1, 1, -1])])
    ra, dec = _sky_point(tiles[0], xi, eta)
    xyz = radec_to_xyz(ra, dec)
    owners = np.zeros(len(ra), dtype=int)
    for tile in tiles:
        mine = tile.contains(ra, dec)
        owners += mine
        assert np.all(tile.region.contains(xyz[mine, 0], xyz[mine, 1], xyz[mine, 2]))
    np.testing.assert_array_equal(owners, 1)
    # The touching points themselves (in the tangent plane): on the edge of the detector they get.
    cam = tiling("camera")
    c = 4.5 * CAMERA_DETECTOR_SIDE
    for x, y in ((c, c), (c, -c), (-c, c), (-c, -c)):
        (detector,) = cam.tile_of(np.array([x]), np.array([y]))
        x0, x1, y0, y1 = cam.bounds(detector)
        assert x0 - 1e-12 <= x <= x1 + 1e-12 and y0 - 1e-12 <= y <= y1 + 1e-12


def test_region_holds_its_detector() -> None:
    ra, dec = _points_around((10.0, -30.0), 2.0, 40000, seed=2)
    xyz = radec_to_xyz(ra, dec)
    for tile in field_tiles(10.0, -30.0, FOV, "camera"):
        mine = tile.contains(ra, dec)
        assert np.all(tile.region.contains(xyz[mine, 0], xyz[mine, 1], xyz[mine, 2]))
        radius = tile.region.getBoundingCircle().getOpeningAngle().asDegrees()
        assert radius <= math.degrees(math.atan(CAMERA_DETECTOR_SIDE * HALF)) * math.sqrt(2) / 2 * 1.01


def test_area_fractions_and_empty_detectors() -> None:
    tiles = field_tiles(10.0, -30.0, FOV, "camera")
    fractions = np.array([t.area_fraction for t in tiles])
    assert fractions.sum() == pytest.approx(1.0, abs=1e-12)
    assert (fractions == 0).sum() == CAMERA_EMPTY_DETECTORS == 44
    ra, dec = FieldTile(10.0, -30.0, FOV).sample_uniform(np.random.default_rng(3), 400_000)
    shares = np.bincount(tiles[0].tile_of(ra, dec), minlength=189) / len(ra)
    sigma = np.sqrt(fractions * (1 - fractions) / len(ra))
    assert np.all(np.abs(shares - fractions) < 5 * sigma + 1e-12)
    # Sampling an edge detector stays in it.
    edge = next(t for t in tiles if 0 < t.area_fraction < 0.5 * fractions.max())
    ra, dec = edge.sample_uniform(np.random.default_rng(4), 2000)
    assert edge.contains(ra, dec).all()


def test_a_source_belongs_to_exactly_one_detector(tmp_path: Path) -> None:
    path = tmp_path / "sources.npy"
    generate_catalog(path, per_visit=3000, sky="south", seed=5)
    catalog = SourceCatalog.load(path)
    for center in ((10.0, -30.0), (0.0, -40.0)):
        whole = np.sort(catalog.sources_in_region(FieldTile(*center, FOV))[2])
        parts = np.concatenate([catalog.sources_in_region(t)[2] for t in field_tiles(*center, FOV, "camera")])
        assert len(whole) > 2000
        np.testing.assert_array_equal(np.sort(parts), whole)


def test_log2csv_counts_189_tiles_for_the_camera() -> None:
    records = [{"run": "a", "config": {"ap_proto": {"divide": "camera"}}},
               {"run": "b", "config": {"ap_proto": {"divide": 3}}},
               {"run": "c", "config": {"ap_proto": {"divide": "bogus"}}}]
    assert tiles_per_visit(records) == {"a": 189, "b": 9}


# ------------------------------------------------------------ ap_proto --divide camera

def _run(config: Path, sources: Path, log: Path, *extra: str) -> int:
    return run_ap_proto(config, sources, log, "--workers", "1", *extra)


def test_ap_proto_on_the_camera_stores_rows_by_detector_and_resumes(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    sources = tmp_path / "sources.npy"
    generate_catalog(sources, per_visit=400, sky="south", seed=3)
    config = write_config(tmp_path / "l1db.cfg", f"sqlite:///{tmp_path}/l1db.sqlite3",
                          dia_object_index="last_object_table")
    assert create(["-c", str(config)]) == 0
    log = tmp_path / "timing.jsonl"
    assert _run(config, sources, log, "-n", "1", "--divide", "camera") == 0

    # Visit 2 is abandoned after 50 of its detectors (a second Ctrl-C), then resumed.
    real_process = tile_processor.TileProcessor.process
    done = []

    def process(self, plan, tile, writer):
        if plan.visit_id == 2 and len(done) == 50:
            raise KeyboardInterrupt
        done.append(tile)
        return real_process(self, plan, tile, writer)

    monkeypatch.setattr(tile_processor.TileProcessor, "process", process)
    assert _run(config, sources, log, "-n", "2", "--divide", "camera") == 130
    monkeypatch.setattr(tile_processor.TileProcessor, "process", real_process)
    visits = read_table(config, "L1dbVisit", ["visitId", "tile", "nTiles", "visitTimeMjdTai"])
    assert visits.groupby("visitId").size().to_dict() == {1: 189, 2: 50}
    capsys.readouterr()
    assert _run(config, sources, log, "-n", "1", "--divide", "3") == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "resume it with --divide camera" in err
    assert _run(config, sources, log, "-n", "1", "--divide", "camera") == 0

    visits = read_table(config, "L1dbVisit", ["visitId", "tile", "nTiles", "visitTimeMjdTai"])
    assert visits.groupby("visitId")["tile"].apply(sorted).to_dict() == {1: list(range(189)), 2: list(range(189))}
    assert (visits["nTiles"] == 189).all()
    # The rows carry their detector, and lie on it (or within the 0.1" scatter of a detection from its edge).
    stored = read_table(config, "DiaSource", ["diaSourceId", "visit", "detector", "ra", "dec"])
    forced = read_table(config, "DiaForcedSource", ["diaObjectId", "visit", "detector"])
    assert stored["diaSourceId"].is_unique and len(stored) > 0 and len(forced) > 0
    assert set(stored["detector"]) <= set(range(189)) and set(forced["detector"]) <= set(range(189))
    from dia_sim.cli.ap_proto import _options, _parser
    from dia_sim.options import load_ap_config
    from dia_sim.visit_plan import plan_visit

    options = _options(_parser().parse_args(["--pointing-area", PATCH, "--divide", "camera", str(sources)]),
                       load_ap_config(config))
    assert options.n_tiles == 189
    edge_margin = math.radians(1.0 / 3600)
    for visit_id, group in stored.groupby("visit"):
        when = Time(visits.loc[visits["visitId"] == visit_id, "visitTimeMjdTai"].iloc[0], format="mjd", scale="tai")
        plan = plan_visit(int(visit_id), when, options)
        field = FieldTile(plan.ra, plan.dec, options.fov, "camera")
        on = field.tile_of(group["ra"].to_numpy(), group["dec"].to_numpy())
        off = group[on != group["detector"].to_numpy()]
        assert len(off) < 0.01 * len(group)
        for _, row in off.iterrows():
            xi, eta, _ = field.tangent_coords(np.array([row["ra"]]), np.array([row["dec"]]))
            x0, x1, y0, y1 = FieldTile(plan.ra, plan.dec, options.fov, "camera", int(row["detector"])).bounds
            assert x0 - edge_margin <= xi[0] <= x1 + edge_margin and y0 - edge_margin <= eta[0] <= y1 + edge_margin
        assert group["detector"].nunique() > 100
    # The log counts what the database holds, and log2csv puts the 189 detectors of a visit in one row.
    parsed = parse_log(log)
    timings = parsed.timings
    assert int(timings.loc[timings["op"] == "src_insert", "rows"].sum()) == len(stored)
    assert int(timings.loc[timings["op"] == "fsrc_insert", "rows"].sum()) == len(forced)
    assert [p["config"]["ap_proto"]["divide"] for p in parsed.provenance] == ["camera"] * 3
    table, _ = logs_to_table([log])
    runs = [p["run"] for p in parsed.provenance]
    first = table[table["run"] == runs[0]].iloc[0]
    assert (first["visit"], first["n_tiles"], first["complete"]) == (1, 189, 1)
    assert first["src_stored"] == (stored["visit"] == 1).sum()
    partial = table[table["visit"] == 2].set_index("run")
    assert partial.loc[runs[1], "n_tiles"] == 50 and partial.loc[runs[2], "n_tiles"] == 139
    assert (partial["complete"] == 0).all()
    assert partial["src_stored"].sum() == (stored["visit"] == 2).sum()
    assert ({int(k): int(v) for k, v in table.groupby("visit")["src_stored"].sum().items()}
            == {int(k): int(v) for k, v in stored.groupby("visit").size().items()})
