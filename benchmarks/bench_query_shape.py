"""Benchmark: Cassandra's read shapes, one query per sky pixel against IN-list queries per table.

``[cassandra] spatial_queries = 0`` sends one prepared query per sky pixel of
the region, ``read_concurrency`` in flight; ``1`` sends one query per table
with every pixel in an ``IN`` list, which the coordinator fans out
(dax_apdb's default, ``query_per_spatial_part = False``); ``N`` splits the
pixels into N such queries. For each case of ``--cases`` (spatial partition
level and ``--divide``: the whole field as one tile, or one tile per detector
as production reads), each shape of ``--shapes`` runs ``ap_proto`` for
``--visits`` visits of a full-density catalogue on the same patch and seed
(the same rows stored, so the reads read the same partitions), each in a
fresh keyspace. Prints the median per-visit time of the three reads over the
second half of each run (with ``--divide camera``: the slowest detector's, as
log2csv aggregates tiles) and each shape's ratio to one query per pixel.

Usage::

    .venv/bin/python benchmarks/bench_query_shape.py --catalog /tmp/sources.npy --results /tmp/query-shape
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

import pandas as pd
from _common import add_backend_options, add_results_option, backend_database, keep_results, markdown_table

from dia_sim.catalog import generate_catalog
from dia_sim.cli.ap_proto import main as ap_proto
from dia_sim.log2csv import logs_to_table
from l1db.cli.create_l1_schema import main as create_l1_schema

KEYSPACE = "l1db_bench_shape"
READS = ("obj_select", "src_select", "fsrc_select", "sum_select")


def shape_name(shape: int) -> str:
    """What ``spatial_queries = shape`` sends per table read."""
    return "per pixel" if shape == 0 else "1 IN list" if shape == 1 else f"{shape} IN lists"


def parse_cases(text: str) -> list[tuple[int, str]]:
    """``7:1,10:camera`` -> [(7, "1"), (10, "camera")]: (partition level, --divide) pairs."""
    cases = []
    for item in text.split(","):
        level, _, divide = item.partition(":")
        if not level.strip().isdigit() or not divide.strip():
            raise argparse.ArgumentTypeError(f"bad case {item!r}: LEVEL:DIVIDE, e.g. 10:camera")
        cases.append((int(level), divide.strip()))
    return cases


def run_case(url: str, level: int, divide: str, shape: int, catalog: Path, args: argparse.Namespace,
             work: Path, name: str) -> Path:
    """Create the schema with one read shape and run ap_proto; return the timing log."""
    config = work / f"{name}.cfg"
    config.write_text(
        f"[database]\nurl = {url}\n\n[cassandra]\nreplication_factor = 1\npart_pixel_level = {level}\n"
        f"spatial_queries = {shape}\n\n"
        f"[ap_proto]\npointing_area = {args.patch}\nseed = {args.seed}\nrow_count_every = 0\n"
    )
    if create_l1_schema(["-c", str(config), "--drop"]) != 0:
        raise RuntimeError(f"create_l1_schema failed for {name}")
    log = work / f"{name}.jsonl"
    code = ap_proto(["-c", str(config), "-n", str(args.visits), "--divide", divide, "-l", str(log), "--no-progress",
                     str(catalog)])
    if code != 0:
        raise RuntimeError(f"ap_proto failed for {name} (exit {code})")
    return log


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--visits", type=int, default=12, help="visits per run (default 12)")
    parser.add_argument("--cases", type=parse_cases, default=parse_cases("7:1,10:1,10:camera"),
                        help="LEVEL:DIVIDE pairs, comma-separated (default 7:1,10:1,10:camera: the toolkit's "
                             "default level for the whole field; production's level 10 for the field and per "
                             "detector)")
    parser.add_argument("--patch", default="0,20,-30,-10", help="pointing area RA_MIN,RA_MAX,DEC_MIN,DEC_MAX")
    parser.add_argument("--catalog", type=Path, default=None,
                        help="full-density catalogue (made with seed 1 if missing)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--shapes", default="0,1",
                        help="spatial_queries values to compare, comma-separated; 0 (one query per pixel) first "
                             "(default 0,1)")
    add_backend_options(parser)
    add_results_option(parser)
    args = parser.parse_args()
    try:
        shapes = [int(v) for v in args.shapes.split(",")]
    except ValueError:
        parser.error(f"--shapes: bad value {args.shapes!r}: integers >= 0, comma-separated, e.g. 0,1,4")
    if not shapes or shapes[0] != 0 or min(shapes) < 0:
        parser.error("--shapes: integers >= 0, the first 0 (one query per pixel: the ratios' base)")
    if args.visits < 2:
        parser.error("--visits must be at least 2")
    rows, logs = [], {}
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        catalog = args.catalog or work / "sources.npy"
        if not catalog.exists():
            generate_catalog(catalog, per_visit=10_000, seed=1)
        for level, divide in args.cases:
            medians = {}
            for shape in shapes:
                name = f"level{level}-divide{divide}-queries{shape}"
                print(f"{name}: {args.visits} visits ...", file=sys.stderr, flush=True)
                with backend_database("cassandra", KEYSPACE, work, args) as url:
                    logs[name] = run_case(url, level, divide, shape, catalog, args, work, name)
                table = logs_to_table([logs[name]])[0]
                late = table[table["visit"] > table["visit"].max() / 2]
                medians[shape] = {op: float(late[f"{op}_real"].median()) for op in READS}
            for shape in shapes:
                row: dict[str, object] = {"level": level, "divide": divide, "shape": shape_name(shape)}
                row.update({op: round(medians[shape][op], 4) for op in READS})
                row["/ per pixel"] = round(medians[shape]["sum_select"] / medians[0]["sum_select"], 2) if shape else ""
                rows.append(row)
        if args.results is not None:
            keep_results(logs, args.results, f"Cassandra read shapes, {args.visits} visits per run")
    print(f"{args.visits} visits per run, patch {args.patch}, seed {args.seed}; medians over visits "
          f"{args.visits // 2 + 1}-{args.visits}, seconds (--divide camera: the slowest detector of the visit); "
          f"load average {load:.2f} at start, {os.getloadavg()[0]:.2f} at end\n")
    print(markdown_table(pd.DataFrame(rows)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
