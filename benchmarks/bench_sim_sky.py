"""Benchmark: the sky side of the simulation (catalogue, buckets, field queries).

Measures, at full density (10,000 sources per 3.5 degree field, ~21.4 million
sources over the southern sky) unless ``--per-visit`` says otherwise:

1. ``generate_catalog`` of the southern sky (median of ``--repeats`` runs),
   and the file size;
2. ``SourceCatalog.load`` (streaming pass + bucket offsets) at bucket levels
   6, 7 and 8; the file is in the page cache (just written), as it is for
   every run but the first;
3. ``sources_in_region`` per visit for ``--visits`` random southern pointings:
   the whole field (one ``FieldTile``), and the 25 tiles of a 5x5 division
   (summed per visit), beside one brute-force scan of the whole catalogue
   (what bucketing avoids) measured in the same run.

Prints Markdown tables (medians) for BENCHMARKS.md.

Usage::

    .venv/bin/python benchmarks/bench_sim_sky.py --repeats 3 --visits 200
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

import numpy as np
from _common import median_time, timed

from dia_sim.catalog import SourceCatalog, expected_count, generate_catalog
from dia_sim.field import FieldTile, field_tiles
from dia_sim.pointing import random_pointings
from dia_sim.survey import FOV_DEG, SKY


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-visit", type=float, default=10000, help="catalogue density (default %(default)g)")
    parser.add_argument("--repeats", type=int, default=3, help="runs per timing (default %(default)d)")
    parser.add_argument("--visits", type=int, default=200, help="pointings for the region queries")
    parser.add_argument("--dir", type=Path, default=None, help="directory for the catalogue (default: a temp dir)")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        path = Path(tmp) / "sources.npy"
        gen_time, count = median_time(lambda: generate_catalog(path, per_visit=args.per_visit, seed=1), args.repeats)
        size = path.stat().st_size
        print(f"## generate_catalog (south, per_visit={args.per_visit:g}, "
              f"expected {expected_count(args.per_visit):,.0f})\n")
        print("| sources | file size | time (median) | rate |")
        print("|---|---|---|---|")
        print(f"| {count:,} | {size / 1e6:,.1f} MB | {gen_time:.2f} s | {count / gen_time / 1e6:.1f} M/s |\n")

        print("## SourceCatalog.load (warm page cache)\n")
        print("| bucket level | buckets | load time (median) |")
        print("|---|---|---|")
        catalogs = {}
        for level in (6, 7, 8):
            load_time, catalogs[level] = median_time(lambda: SourceCatalog.load(path, bucket_level=level), args.repeats)
            print(f"| {level} | {12 * 4**level:,} | {load_time:.2f} s |")
        print()

        rng = np.random.default_rng(2)
        ras, decs = random_pointings(rng, args.visits, sky=SKY, fov_deg=FOV_DEG)
        print(f"## sources_in_region per visit ({args.visits} random southern pointings)\n")
        print("| bucket level | field (1 tile): ms/visit | sources/visit | 5x5 tiles: ms/visit (25 calls) |")
        print("|---|---|---|---|")
        for level, catalog in catalogs.items():
            field_times, tile_times, found = [], [], []
            for ra, dec in zip(ras, decs):
                field = FieldTile(ra, dec, FOV_DEG)
                tiles = field_tiles(ra, dec, FOV_DEG, 5)
                for t in tiles:
                    _ = t.region  # build the sphgeom polygons outside the clock, as a visit does once
                seconds, n = timed(lambda: len(catalog.sources_in_region(field)[2]))
                field_times.append(seconds)
                seconds, n_tiles = timed(lambda: sum(len(catalog.sources_in_region(t)[2]) for t in tiles))
                tile_times.append(seconds)
                assert n_tiles == n
                found.append(n)
            print(
                f"| {level} | {1e3 * statistics.median(field_times):.2f} | {statistics.mean(found):,.0f} | "
                f"{1e3 * statistics.median(tile_times):.2f} |"
            )
        rows = np.load(path, mmap_mode="r")
        field = FieldTile(ras[0], decs[0], FOV_DEG)

        def scan() -> int:
            return int(field.contains(rows["ra"], rows["dec"]).sum())

        scan_time, n_scan = median_time(scan, args.repeats)
        assert n_scan == len(catalogs[7].sources_in_region(field)[2])
        print(f"\nBrute-force scan of the whole catalogue for one field (what the buckets avoid): {scan_time:.2f} s\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
