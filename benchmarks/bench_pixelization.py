"""Benchmark of l1db.pixelization: pixel indices of many points, envelope of a field.

Measures, in one run (medians of several repetitions, after a warm-up call so
that numba compilation is excluded):

- `Pixelization.pixel_index` of 15,000 points (one visit's DiaSources) and of
  1,000,000 points, HTM, Q3C and modified-Q3C level 20 against a per-point
  lsst-sphgeom loop (the only API sphgeom offers) and HEALPix order 16 against a
  direct healpy.ang2pix call;
- `Pixelization.envelope` of a 3.5-degree field (max_ranges 64) at random
  pointings, for every kind.

Prints a Markdown section for BENCHMARKS.md (``## Pixelization``)::

    python benchmarks/bench_pixelization.py [--runs 5] [--loop-runs 3]
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import statistics
import sys

import healpy
import lsst.sphgeom as sph
import numba
import numpy as np
from _common import median_time

from l1db.pixelization import Pixelization

FIELD_RADIUS_DEG = 1.75


def random_points(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    return rng.uniform(0.0, 360.0, n), np.degrees(np.arcsin(rng.uniform(-1.0, 1.0, n)))


def sphgeom_loop(pixelization: sph.Pixelization, ra: np.ndarray, dec: np.ndarray) -> np.ndarray:
    """What a caller without a vectorized API has to write: one sphgeom call per point."""
    return np.array(
        [pixelization.index(sph.UnitVector3d(sph.LonLat.fromDegrees(a, d))) for a, d in zip(ra.tolist(), dec.tolist())],
        dtype=np.int64,
    )


def bench_pixel_index(n: int, runs: int, loop_runs: int, rng: np.random.Generator) -> list[str]:
    ra, dec = random_points(rng, n)
    rows = []

    for kind, label, reference in (
        ("htm", "HTM", sph.HtmPixelization(20)),
        ("q3c", "Q3C", sph.Q3cPixelization(20)),
        ("mq3c", "MQ3C", sph.Mq3cPixelization(20)),
    ):
        pix = Pixelization(kind, 20)
        pix.pixel_index(ra[:10], dec[:10])  # warm-up: numba compilation or cache load
        t_vec, _ = median_time(lambda: pix.pixel_index(ra, dec), runs)
        t_loop, _ = median_time(lambda: sphgeom_loop(reference, ra, dec), loop_runs)
        if not np.array_equal(pix.pixel_index(ra, dec), sphgeom_loop(reference, ra, dec)):
            raise AssertionError(f"{label} indices differ from sphgeom")
        rows.append(
            f"| {label} 20 | {n:,} | {t_vec * 1e3:.1f} ms | sphgeom per-point loop {t_loop * 1e3:.1f} ms "
            f"| {t_loop / t_vec:.1f}x faster |"
        )

    hpx = Pixelization("healpix", 16)
    t_vec, _ = median_time(lambda: hpx.pixel_index(ra, dec), runs)
    t_ref, _ = median_time(lambda: healpy.ang2pix(2**16, ra, dec, nest=True, lonlat=True), runs)
    rows.append(
        f"| HEALPix 16 | {n:,} | {t_vec * 1e3:.1f} ms | healpy.ang2pix direct {t_ref * 1e3:.1f} ms "
        f"| {t_vec / t_ref:.2f}x the direct call |"
    )
    return rows


def bench_envelope(runs: int, rng: np.random.Generator) -> list[str]:
    rows = []
    centres = list(zip(*random_points(rng, 50)))
    fields = [
        sph.Circle(sph.UnitVector3d(sph.LonLat.fromDegrees(ra, dec)), sph.Angle.fromDegrees(FIELD_RADIUS_DEG))
        for ra, dec in centres
    ]
    labels = {"htm": "HTM", "healpix": "HEALPix", "q3c": "Q3C", "mq3c": "MQ3C"}
    for kind, level in (("htm", 20), ("healpix", 16), ("q3c", 20), ("mq3c", 20)):
        pix = Pixelization(kind, level, 64)
        pix.envelope(fields[0])
        per_field = [median_time(lambda f=f: pix.envelope(f), runs)[0] for f in fields]
        n_ranges = [len(pix.envelope(f)) for f in fields]
        # Tightness: points in the ranges over points in the field, near the field.
        ratios = []
        for f, (_ra0, dec0) in zip(fields[:10], centres[:10]):
            ra, dec = random_points(rng, 400_000)
            near = np.abs(dec - dec0) < 3 * FIELD_RADIUS_DEG
            ra, dec = ra[near], dec[near]
            index = pix.pixel_index(ra, dec)
            ranges = np.array(pix.envelope(f))
            in_ranges = ((index[:, None] >= ranges[:, 0]) & (index[:, None] < ranges[:, 1])).any(axis=1)
            inside = f.contains(np.radians(ra), np.radians(dec))
            ratios.append(in_ranges.sum() / max(inside.sum(), 1))
        rows.append(
            f"| {labels[kind]} {level} | "
            f"{statistics.median(per_field) * 1e3:.2f} ms | {statistics.median(n_ranges):.0f} "
            f"(max {max(n_ranges)}) | {statistics.median(ratios):.2f} |"
        )
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="repetitions per vectorized measurement (default 5)")
    parser.add_argument(
        "--loop-runs", type=int, default=3, help="repetitions of the slow per-point sphgeom loop (default 3)"
    )
    parser.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    args = parser.parse_args(argv)
    if args.runs < 1 or args.loop_runs < 1:
        print("bench_pixelization: --runs and --loop-runs must be at least 1", file=sys.stderr)
        return 2
    rng = np.random.default_rng(args.seed)
    load_start = os.getloadavg()[0]
    body = []
    for n in (15_000, 1_000_000):
        body += bench_pixel_index(n, args.runs, args.loop_runs, rng)
    envelope_rows = bench_envelope(args.runs, rng)
    load_end = os.getloadavg()[0]

    lines = [
        "## Pixelization",
        "",
        f"`benchmarks/bench_pixelization.py` (runs {args.runs}, loop runs {args.loop_runs}, seed {args.seed}); "
        f"{os.cpu_count()} cores, 24 GiB, {platform.python_implementation()} {platform.python_version()}, "
        f"numba {numba.__version__} (serial kernel), "
        f"lsst-sphgeom, healpy {healpy.__version__}; {datetime.date(2026, 11, 21).isoformat()}. Medians; "
        "numba compilation excluded (warm-up call first). "
        f"1-minute load average {load_start:.1f} at the start, {load_end:.1f} at the end "
        "(above 0 means other jobs shared the cores; the ratios, measured side by side, are the robust figures).",
        "",
        "`pixel_index` (random points over the whole sky; HTM, Q3C and MQ3C results checked equal to sphgeom's):",
        "",
        "| pixelization | points | `pixel_index` | reference | ratio |",
        "|---|---|---|---|---|",
    ]
    lines += body
    lines += [
        "",
        f"`envelope` of a {2 * FIELD_RADIUS_DEG}-degree field at 50 random pointings, max_ranges 64 "
        "(tightness: points in the ranges / points in the field, near the field, 10 fields):",
        "",
        "| pixelization | `envelope` | ranges | tightness |",
        "|---|---|---|---|",
    ]
    lines += envelope_rows
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
