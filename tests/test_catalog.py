"""Tests of dia_sim.catalog (the variable-source catalogue) and the gen_sources tool."""

from __future__ import annotations

import math
from pathlib import Path

import healpy
import numpy as np
import pytest
from lsst import sphgeom
from naive import naive_in_circle

from dia_sim.catalog import CATALOG_DTYPE, CatalogError, SourceCatalog, expected_count, generate_catalog
from dia_sim.cli import gen_sources
from dia_sim.field import FieldTile, field_tiles
from dia_sim.pointing import random_pointings

PER_VISIT = 200  # ~430k sources over the southern sky: quick, yet dense enough for statistics

# Ordinary sky, across RA = 0, at and near the south pole, touching the equator.
SOUTH_FIELDS = [(10.0, -30.0), (0.3, -45.0), (359.8, -45.0), (123.0, -89.5), (0.0, -90.0), (200.0, -1.0)]


@pytest.fixture(scope="module")
def south_path(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("catalog") / "south.npy"
    generate_catalog(path, per_visit=PER_VISIT, seed=11)
    return path


@pytest.fixture(scope="module")
def south_rows(south_path) -> np.ndarray:
    return np.load(south_path)


@pytest.fixture(scope="module")
def full_path(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("catalog") / "full.npy"
    generate_catalog(path, per_visit=100, sky="full", seed=12)
    return path


def test_file_format_and_count(south_path, south_rows):
    assert south_rows.dtype == CATALOG_DTYPE
    assert south_path.stat().st_size == 128 + 16 * len(south_rows)
    mean = expected_count(PER_VISIT)
    assert abs(len(south_rows) - mean) < 5 * math.sqrt(mean)
    assert np.all(south_rows["dec"] <= 0) and np.all(south_rows["dec"] >= -90)
    assert np.all((south_rows["ra"] >= 0) & (south_rows["ra"] < 360))
    # Sorted by fine nested pixel, hence by every coarser order.
    pix = healpy.ang2pix(1 << 10, south_rows["ra"], south_rows["dec"], nest=True, lonlat=True)
    assert np.all(np.diff(pix) >= 0)


def test_expected_count_defaults():
    # WORKLOAD.md: ~21.4 million over a hemisphere at 10,000 per 3.5 degree field.
    assert expected_count(10000, 3.5, "south") == pytest.approx(21.44e6, rel=1e-3)
    assert expected_count(10000, 3.5, "full") == pytest.approx(2 * expected_count(10000, 3.5, "south"))


def test_density_in_random_fields(south_path):
    catalog = SourceCatalog.load(south_path)
    ra, dec = random_pointings(np.random.default_rng(5), 40, sky="south", fov_deg=3.5)
    counts = np.array([len(catalog.sources_in_region((a, d, 1.75))[2]) for a, d in zip(ra, dec)])
    assert np.all(np.abs(counts - PER_VISIT) < 5 * math.sqrt(PER_VISIT))
    assert abs(counts.mean() - PER_VISIT) < 5 * math.sqrt(PER_VISIT / len(counts))


def test_uniform_over_the_sky(full_path):
    rows = np.load(full_path)
    assert (rows["dec"] > 0).any() and (rows["dec"] < 0).any()
    # Equal-area HEALPix order-2 pixels: counts agree within Poisson noise.
    counts = np.bincount(healpy.ang2pix(4, rows["ra"], rows["dec"], nest=True, lonlat=True), minlength=192)
    mean = len(rows) / 192
    assert np.all(np.abs(counts - mean) < 5 * math.sqrt(mean))
    north = (rows["dec"] > 0).mean()
    assert abs(north - 0.5) < 5 * math.sqrt(0.25 / len(rows))


def test_south_equator_band_density(south_rows):
    """The blocks straddling the equator are half-weighted and filled by rejection: check the band."""
    band = (south_rows["dec"] > -5.0).sum()
    mean = expected_count(PER_VISIT) * math.sin(math.radians(5.0))
    assert abs(band - mean) < 5 * math.sqrt(mean)


def test_seeded_generation_is_reproducible(tmp_path, south_path):
    again = tmp_path / "again.npy"
    assert generate_catalog(again, per_visit=PER_VISIT, seed=11) > 0
    assert again.read_bytes() == south_path.read_bytes()
    other = tmp_path / "other.npy"
    generate_catalog(other, per_visit=PER_VISIT, seed=12)
    assert other.read_bytes() != south_path.read_bytes()


def test_small_chunks_and_progress(tmp_path):
    path = tmp_path / "chunked.npy"
    steps: list[int] = []
    count = generate_catalog(path, per_visit=50, sky="full", seed=3, chunk=1000, progress=steps.append)
    assert len(steps) > 50 and sum(steps) == count
    rows = np.load(path)
    assert len(rows) == count
    assert abs(count - expected_count(50, sky="full")) < 5 * math.sqrt(count)
    catalog = SourceCatalog.load(path)
    assert catalog.presorted


def test_interrupted_generation_leaves_nothing(tmp_path):
    path = tmp_path / "killed.npy"

    def interrupt(n):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        generate_catalog(path, per_visit=50, seed=3, chunk=1000, progress=interrupt)
    assert list(tmp_path.iterdir()) == []


def _brute_force(rows, region):
    """Rows inside a region by a scan of the whole catalogue."""
    if isinstance(region, FieldTile):
        return np.flatnonzero(region.contains(rows["ra"], rows["dec"]))
    if isinstance(region, tuple):
        return np.flatnonzero(naive_in_circle(rows["ra"], rows["dec"], *region))
    ra, dec = np.radians(rows["ra"]), np.radians(rows["dec"])
    return np.flatnonzero(region.contains(ra, dec))


@pytest.mark.parametrize("bucket_level", [3, 7, 9])
@pytest.mark.parametrize("center", SOUTH_FIELDS)
def test_sources_in_region_matches_brute_force(south_path, south_rows, center, bucket_level):
    catalog = SourceCatalog.load(south_path, bucket_level=bucket_level)
    assert catalog.presorted and len(catalog) == len(south_rows)
    regions = [
        (center[0], center[1], 1.75),
        FieldTile(*center, 3.5),
        FieldTile(*center, 3.5, 3, 4),
        FieldTile(*center, 3.5, 5, 0),
        FieldTile(*center, 3.5, 5, 3).region,  # a sphgeom ConvexPolygon
    ]
    for region in regions:
        ra, dec, index = catalog.sources_in_region(region)
        expected = _brute_force(south_rows, region)
        np.testing.assert_array_equal(index, expected)
        np.testing.assert_array_equal(ra, south_rows["ra"][expected])
        np.testing.assert_array_equal(dec, south_rows["dec"][expected])
    assert len(catalog.sources_in_region(regions[0])[2]) > 0.4 * PER_VISIT


@pytest.mark.parametrize("center", [(0.0, 90.0), (359.9, 0.5), (0.1, 60.0)])
def test_sources_in_region_full_sky(full_path, center):
    rows = np.load(full_path)
    catalog = SourceCatalog.load(full_path, bucket_level=6)
    ra, dec, index = catalog.sources_in_region((center[0], center[1], 2.0))
    np.testing.assert_array_equal(index, _brute_force(rows, (center[0], center[1], 2.0)))
    assert len(index) > 0


def test_tiles_share_field_sources_exactly_once(south_path):
    catalog = SourceCatalog.load(south_path)
    for center in SOUTH_FIELDS:
        whole = catalog.sources_in_region(FieldTile(*center, 3.5))[2]
        parts = np.concatenate([catalog.sources_in_region(t)[2] for t in field_tiles(*center, 3.5, 4)])
        assert len(parts) == len(np.unique(parts))
        np.testing.assert_array_equal(np.sort(parts), whole)


def test_unsorted_file_is_sorted_in_memory(tmp_path, south_rows):
    shuffled = south_rows.copy()
    np.random.default_rng(0).shuffle(shuffled)
    path = tmp_path / "shuffled.npy"
    np.save(path, shuffled)
    catalog = SourceCatalog.load(path, bucket_level=6)
    assert not catalog.presorted
    for center in SOUTH_FIELDS[:3]:
        region = (center[0], center[1], 1.75)
        ra, dec, index = catalog.sources_in_region(region)
        np.testing.assert_array_equal(index, _brute_force(shuffled, region))
        np.testing.assert_array_equal(ra, shuffled["ra"][index])


def test_empty_region_and_empty_catalogue(tmp_path, full_path):
    path = tmp_path / "empty.npy"
    assert generate_catalog(path, per_visit=0, seed=1) == 0
    catalog = SourceCatalog.load(path)
    assert len(catalog) == 0
    ra, dec, index = catalog.sources_in_region((10.0, -30.0, 1.75))
    assert len(ra) == len(dec) == len(index) == 0
    assert index.dtype == np.int64
    # A field in the empty northern hemisphere of a southern catalogue.
    south = tmp_path / "s.npy"
    generate_catalog(south, per_visit=100, seed=2)
    assert len(SourceCatalog.load(south).sources_in_region((10.0, 45.0, 1.75))[0]) == 0
    # The whole sky as one circle returns everything.
    full = SourceCatalog.load(full_path, bucket_level=2)
    assert len(full.sources_in_region((0.0, 0.0, 180.0))[2]) == len(full)


def _write(path: Path, array) -> Path:
    np.save(path, array)
    return path


@pytest.mark.parametrize(
    "make",
    [
        lambda p: p / "missing.npy",
        lambda p: _write(p / "f4.npy", np.zeros(3, dtype=[("ra", "<f4"), ("dec", "<f4")])),
        lambda p: _write(p / "2d.npy", np.zeros((3, 2))),
        lambda p: _write(p / "names.npy", np.zeros(3, dtype=[("x", "<f8"), ("y", "<f8")])),
        lambda p: _write(p / "nan.npy", np.array([(1.0, -10.0), (np.nan, 0.0)], dtype=CATALOG_DTYPE)),
        lambda p: _write(p / "dec.npy", np.array([(1.0, -95.0)], dtype=CATALOG_DTYPE)),
        lambda p: (p / "text.npy").write_text("ra,dec\n1,2\n") and p / "text.npy",
        lambda p: (p / "trunc.npy").write_bytes(_npy_bytes(p)[:200]) and p / "trunc.npy",
        lambda p: _savez(p / "arch.npz"),
    ],
    ids=["missing", "float32", "2d", "fields", "nan", "dec-range", "text", "truncated", "npz"],
)
def test_bad_files(tmp_path, make):
    path = make(tmp_path)
    with pytest.raises(CatalogError) as info:
        SourceCatalog.load(path)
    message = str(info.value)
    assert "\n" not in message and str(path) in message


def _npy_bytes(tmp: Path) -> bytes:
    path = _write(tmp / "whole.npy", np.zeros(100, dtype=CATALOG_DTYPE))
    return path.read_bytes()


def _savez(path: Path) -> Path:
    np.savez(path, rows=np.zeros(3, dtype=CATALOG_DTYPE))
    return path


def test_bad_generation_arguments(tmp_path):
    for kwargs in (dict(sky="north"), dict(per_visit=-1), dict(fov_deg=0), dict(chunk=0)):
        with pytest.raises(ValueError):
            generate_catalog(tmp_path / "x.npy", **kwargs)
    with pytest.raises(ValueError):
        SourceCatalog.load(tmp_path / "x.npy", bucket_level=13)
    assert list(tmp_path.iterdir()) == []


# --- the gen_sources command -------------------------------------------------


def test_gen_sources_cli(tmp_path, capsys):
    out = tmp_path / "cat.npy"
    assert gen_sources.main(["-o", str(out), "--per-visit", "20", "--seed", "4"]) == 0
    printed = capsys.readouterr().out
    rows = np.load(out)
    assert f"{len(rows):,} sources" in printed and "MB" in printed
    assert abs(len(rows) - expected_count(20)) < 5 * math.sqrt(expected_count(20))
    assert np.all(rows["dec"] <= 0)
    # Same as the library with the same seed.
    lib = tmp_path / "lib.npy"
    generate_catalog(lib, per_visit=20, seed=4)
    assert lib.read_bytes() == out.read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cat.npy", "lib.npy"]


def test_gen_sources_full_sky_and_fov(tmp_path):
    out = tmp_path / "full.npy"
    assert gen_sources.main(["-o", str(out), "--per-visit", "10", "--fov", "2", "--sky", "full", "--seed", "1"]) == 0
    rows = np.load(out)
    mean = expected_count(10, 2.0, "full")
    assert abs(len(rows) - mean) < 5 * math.sqrt(mean)
    assert (rows["dec"] > 0).any()


def test_gen_sources_refuses_to_overwrite(tmp_path, capsys):
    out = tmp_path / "cat.npy"
    out.write_bytes(b"precious")
    assert gen_sources.main(["-o", str(out), "--per-visit", "5", "--seed", "1"]) == 1
    err = capsys.readouterr().err
    assert "exists" in err and "--force" in err and len(err.strip().splitlines()) == 1
    assert out.read_bytes() == b"precious"
    assert gen_sources.main(["-o", str(out), "--per-visit", "5", "--seed", "1", "--force"]) == 0
    assert len(np.load(out)) > 0


@pytest.mark.parametrize(
    "argv,code",
    [
        (["--per-visit", "5"], 2),  # no -o
        (["-o", "{tmp}/x.npy", "--sky", "north"], 2),
        (["-o", "{tmp}/x.npy", "--per-visit", "abc"], 2),
        (["-o", "{tmp}/x.npy", "--per-visit", "-3"], 1),
        (["-o", "{tmp}/x.npy", "--fov", "0"], 1),
        (["-o", "{tmp}/no/such/dir/x.npy", "--per-visit", "5"], 1),
    ],
)
def test_gen_sources_bad_input(tmp_path, capsys, argv, code):
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    assert gen_sources.main(argv) == code
    err = capsys.readouterr().err
    assert "Traceback" not in err and "error" in err
    assert not (tmp_path / "x.npy").exists()


def test_gen_sources_help(capsys):
    assert gen_sources.main(["--help"]) == 0
    assert "--per-visit" in capsys.readouterr().out


def test_sphgeom_circle_region(south_path, south_rows):
    """A sphgeom Circle is used as the bucket query directly."""
    catalog = SourceCatalog.load(south_path)
    circle = sphgeom.Circle(sphgeom.UnitVector3d(sphgeom.LonLat.fromDegrees(0.1, -60.0)),
                            sphgeom.Angle.fromDegrees(2.5))
    index = catalog.sources_in_region(circle)[2]
    np.testing.assert_array_equal(index, _brute_force(south_rows, circle))
    assert len(index) > 0


@pytest.mark.parametrize("sky", ["south", "full"])
def test_per_visit_inverts_expected_count(tmp_path: Path, sky: str) -> None:
    path = tmp_path / f"{sky}.npy"
    generate_catalog(path, per_visit=50, sky=sky, seed=4)
    catalog = SourceCatalog.load(path)
    # The count is Poisson around expected_count, so the density is within a few sigma of 50.
    n = expected_count(50, sky=sky)
    assert catalog.per_visit() == pytest.approx(50, abs=5 * 50 / n**0.5)
    assert catalog.per_visit(7.0) == pytest.approx(4 * catalog.per_visit(3.5), rel=1e-3)
