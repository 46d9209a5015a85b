"""Benchmark: the whole AP loop (ap_proto) at full density on each backend.

For each backend in one run: a fresh database, ``create_l1_schema``, then
``ap_proto`` for ``--visits`` visits of a full-density catalogue on a small
pointing patch (so that fields overlap and the history reads grow), then
``log2csv``. Prints the median per-visit time of each operation over the
second half of the run, as a Markdown table. The same seed gives every
backend the same visits, so the columns compare like with like.

With ``--disk`` (PostgreSQL and Cassandra), also the bytes on disk of each
table at the end of the run (`_disk.table_bytes`: Cassandra's keyspace is
flushed first).

Usage::

    .venv/bin/python benchmarks/bench_ap_proto.py --visits 40 --catalog /tmp/sources.npy
    .venv/bin/python benchmarks/bench_ap_proto.py --visits 40 --backends postgresql,cassandra --disk
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

import pandas as pd
from _common import add_backend_options, add_results_option, backend_database, keep_results, markdown_table
from _disk import table_bytes

from dia_sim.catalog import generate_catalog
from dia_sim.cli.ap_proto import main as ap_proto
from dia_sim.log2csv import logs_to_table
from l1db.cli.create_l1_schema import main as create_l1_schema

DB_NAME = "l1db_bench_ap"
OPS = ("obj_select", "src_select", "fsrc_select", "sum_select", "store", "sim", "visit")
#: The operations inside a store, shown when a backend has them.
STORE_OPS = ("obj_insert", "obj_validity_update", "obj_last_delete", "obj_last_insert", "obj_last_upsert",
             "src_insert", "fsrc_insert")
#: The backends whose bytes on disk ``--disk`` measures (`_disk.table_bytes`).
DISK_BACKENDS = ("postgresql", "cassandra")
COUNTS = ("obj_read", "src_read", "fsrc_read", "src_stored", "fsrc_stored")


def run_backend(url: str, catalog: Path, args: argparse.Namespace, work: Path, name: str) -> Path:
    """Create the schema and run ap_proto on one backend; return its timing log."""
    config = work / f"{name}.cfg"
    # Cassandra has one layout (its latest-version table): --strategy is for the SQL backends.
    layout = ("[cassandra]\nreplication_factor = 1\n" if url.startswith("cassandra")
              else f"[l1db]\ndia_object_index = {args.strategy}\n")
    config.write_text(
        f"[database]\nurl = {url}\n\n{layout}\n"
        f"[ap_proto]\npointing_area = {args.patch}\nseed = {args.seed}\nrow_count_every = 0\n"
    )
    if create_l1_schema(["-c", str(config), "--drop"]) != 0:
        raise RuntimeError(f"create_l1_schema failed for {name}")
    log = work / f"{name}.jsonl"
    if ap_proto(["-c", str(config), "-n", str(args.visits), "-l", str(log), "--no-progress", str(catalog)]) != 0:
        raise RuntimeError(f"ap_proto failed for {name}")
    return log


def summarize(name: str, table: pd.DataFrame) -> dict[str, object]:
    late = table[table["visit"] > table["visit"].max() / 2]
    row: dict[str, object] = {"backend": name}
    for column in COUNTS:
        row[column] = int(late[column].fillna(0).median())  # no record: nothing read or stored
    for op in OPS:
        row[op] = round(float(late[f"{op}_real"].median()), 3)
    for op in STORE_OPS:
        values = late[f"{op}_real"].dropna()
        row[op] = round(float(values.median()), 3) if len(values) else "-"
    return row


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--visits", type=int, default=40)
    parser.add_argument("--strategy", default="last_object_table", help="dia_object_index of the SQL backends")
    parser.add_argument("--patch", default="0,20,-30,-10", help="pointing area RA_MIN,RA_MAX,DEC_MIN,DEC_MAX")
    parser.add_argument("--catalog", type=Path, default=None,
                        help="full-density catalogue (made with seed 1 if missing)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--disk", action="store_true",
                        help="also print the bytes on disk of each table at the end (of the backends among "
                             f"{', '.join(DISK_BACKENDS)})")
    parser.add_argument("--cassandra-run-dir", default=None,
                        help="run dir of the Cassandra nodes, for --disk (default: $L1DB_CASSANDRA_RUN_DIR)")
    add_backend_options(parser)
    add_results_option(parser)
    args = parser.parse_args()
    backends = args.backends
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        catalog = args.catalog or work / "sources.npy"
        if not catalog.exists():
            generate_catalog(catalog, per_visit=10_000, seed=1)
        load = os.getloadavg()[0]
        rows = []
        logs = {}
        disk: dict[str, dict[str, int]] = {}
        for backend in backends:
            with backend_database(backend, DB_NAME, work, args) as url:
                logs[backend] = run_backend(url, catalog, args, work, backend)
                if args.disk and backend in DISK_BACKENDS:
                    disk[backend] = table_bytes(url, args.cassandra_run_dir)
            rows.append(summarize(backend, logs_to_table([logs[backend]])[0]))
        if args.results is not None:
            keep_results(logs, args.results, f"ap_proto end to end, {args.visits} visits per backend")
    print(f"{args.visits} visits, {args.strategy}, patch {args.patch}, seed {args.seed}; "
          f"medians over visits {args.visits // 2 + 1}-{args.visits}, seconds; "
          f"load average {load:.2f} at start, {os.getloadavg()[0]:.2f} at end\n")
    frame = pd.DataFrame(rows)
    print(markdown_table(frame))
    if disk:
        sizes = pd.DataFrame(disk).fillna(0).astype("int64")
        sizes.loc["total"] = sizes.sum()
        print("\nbytes on disk at the end, MiB\n")
        print(markdown_table((sizes / 2**20).round(2).rename_axis("table").reset_index()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
