"""Benchmark: the time-compressed AP loop run well past a full history window, on each config given.

For each config file (``cfg/l1db-pg.cfg``, ``cfg/l1db-cassandra.cfg``, any
other): the same config with its database replaced by a scratch one named
``--name`` (a PostgreSQL/MariaDB database made through the admin URL, a
Cassandra keyspace, an SQLite file in ``--out``), ``create_l1_schema
--drop``, then ``ap_proto`` with time compression (``--observations-per-year``
on ``--patch``) for ``--visits`` visits at full density, then the per-visit
CSV (``log2csv``) and its provenance sidecar in ``--out``. ``--window-fraction``
checks the run reaches a full window early enough (by default at a third of
the run at most). Then `plot_timing`'s history figures for every CSV, and a
table of the fitted slopes before and after the window fills (seconds per
1,000 visits) and the per-visit medians of each third of the run.

The scratch database is dropped first and at the end: never give the name of
a database that holds anything else.

Usage::

    .venv/bin/python benchmarks/bench_steady_state.py --catalog /tmp/sources.npy \\
        --out /tmp/steady --pg-admin-url postgresql+psycopg2://postgres:PW@127.0.0.1:5432/postgres \\
        cfg/l1db-pg.cfg cfg/l1db-cassandra.cfg
"""

from __future__ import annotations

import argparse
import configparser
import math
import os
import sys
import time
from pathlib import Path

import pandas as pd
from _common import add_backend_options, add_results_option, backend_database, keep_results

from dia_sim import fits, plots
from dia_sim.catalog import generate_catalog
from dia_sim.cli.ap_proto import main as ap_proto
from dia_sim.log2csv import logs_to_table, read_csv, write_csv, write_provenance
from l1db.backends import backend_for
from l1db.cli.create_l1_schema import main as create_l1_schema
from l1db.config import load_config

OPS = ("obj_select", "src_select", "fsrc_select", "sum_select", "store", "visit")


def backend_of(config_path: Path) -> str:
    """The `_common.BACKENDS` name of a config's database."""
    return backend_for(load_config(config_path).url).name


def scratch_config(config_path: Path, url: str, out: Path, label: str) -> Path:
    """A copy of ``config_path`` whose database is ``url``."""
    parser = configparser.ConfigParser(interpolation=None)
    parser.optionxform = str
    parser.read(config_path, encoding="utf-8")
    parser["database"]["url"] = url
    path = out / f"{label}.cfg"
    with open(path, "w", encoding="utf-8") as f:
        parser.write(f)
    return path


class BenchFailed(RuntimeError):
    """A step of a run failed (its command said why, above): the benchmark stops with one line."""


def run_config(config_path: Path, label: str, args: argparse.Namespace, out: Path) -> Path:
    """Run the steady-state workload on one config; return its per-visit CSV."""
    backend = backend_of(config_path)
    with backend_database(backend, args.name, out, args) as url:
        config = scratch_config(config_path, url, out, label)
        if create_l1_schema(["-c", str(config), "--drop"]) != 0:
            raise BenchFailed(f"create_l1_schema failed for {label}")
        log = out / f"{label}.jsonl"
        log.unlink(missing_ok=True)
        started = time.monotonic()
        load = os.getloadavg()[0]
        code = ap_proto([
            "-c", str(config), "-n", str(args.visits), "-l", str(log), "--no-progress",
            "--pointing-area", args.patch, "--observations-per-year", str(args.observations_per_year),
            "--seed", str(args.seed), "--row-count-every", str(args.row_count_every), str(args.catalog),
        ])
        if code != 0:
            raise BenchFailed(f"ap_proto failed for {label} (exit {code}; its error line is above)")
        elapsed, load_end = time.monotonic() - started, os.getloadavg()[0]
        table, parsed = logs_to_table([log])
        # A run stopped early (SIGTERM or Ctrl-C: ap_proto finishes the visit) keeps what it measured.
        print(f"{label}: {len(table)} visits in {elapsed:.0f} s; load average {load:.2f} at the start, "
              f"{load_end:.2f} at the end", flush=True)
        csv = out / f"{label}.csv"
        write_csv(table, csv)
        write_provenance(f"{csv}.provenance.json", parsed.provenance, [str(log)])
    return csv


def summary(label: str, table: pd.DataFrame, fill_visit: float) -> list[str]:
    """Markdown lines: medians per third of the run, and the slopes before and after the window fills."""
    visits = table["visit"].astype(float)
    first, last = visits.min(), visits.max()
    edges = [first + (last - first + 1) * k / 3 for k in range(4)]
    lines = [f"\n{label}: medians per visit, seconds (rows: medians)\n",
             "| visits | src_read | fsrc_read | obj_read | " + " | ".join(OPS) + " |",
             "|---|---|---|---|" + "---|" * len(OPS)]
    for lo, hi in zip(edges[:-1], edges[1:]):
        part = table[(visits >= lo) & (visits < hi)]
        cells = [f"{int(part[c].fillna(0).median()):,}" for c in ("src_read", "fsrc_read", "obj_read")]
        cells += [f"{part[f'{op}_real'].median():.3f}" for op in OPS]
        lines.append(f"| {int(math.ceil(lo))}-{int(math.ceil(hi)) - 1} | " + " | ".join(cells) + " |")
    lines += [f"\n{label}: least-squares slope, s per 1,000 visits, before and after the window fills "
              f"(visit {fill_visit:.0f})\n", "| op | before | after |", "|---|---|---|"]
    for op, (before, after) in fits.slopes_before_after(table, OPS, fill_visit).items():
        lines.append(f"| {op} | {before * 1000:+.2f} | {after * 1000:+.2f} |")
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("configs", nargs="+", type=Path, help="config files, one run each")
    parser.add_argument("--label", nargs="+", help="one label per config (default: the config's file name)")
    parser.add_argument("--visits", type=int, default=130, help="visits per run (default 130)")
    parser.add_argument("--observations-per-year", type=float, default=10.0,
                        help="K: observations of each point per simulated year (default 10)")
    parser.add_argument("--patch", default="0,7,-30,-20",
                        help="pointing area RA_MIN,RA_MAX,DEC_MIN,DEC_MAX (default 0,7,-30,-20: ~4 fields of "
                        "centres, so the 12-month window fills after ~43 visits at K = 10)")
    parser.add_argument("--window-fraction", type=float, default=0.34,
                        help="refuse a run whose window fills after more than this fraction of it (default 0.34)")
    parser.add_argument("--catalog", type=Path, required=True,
                        help="full-density catalogue (gen_sources --seed 1; made there if missing)")
    parser.add_argument("--out", type=Path, required=True, help="folder for logs, CSVs and plots")
    parser.add_argument("--name", default="l1db_steady", help="scratch database / keyspace name (default l1db_steady)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--row-count-every", type=int, default=10)
    parser.add_argument("--plot-only", action="store_true",
                        help="run nothing: plot and summarize the CSVs an earlier run left in --out")
    add_backend_options(parser)
    add_results_option(parser)
    args = parser.parse_args()
    labels = args.label or [p.stem for p in args.configs]
    if len(labels) != len(args.configs):
        print("bench_steady_state: one --label per config", file=sys.stderr)
        return 2
    for path in args.configs:
        if not path.is_file():
            print(f"bench_steady_state: no such config file: {path}", file=sys.stderr)
            return 2
    args.out.mkdir(parents=True, exist_ok=True)
    if not args.catalog.exists():
        generate_catalog(args.catalog, per_visit=10_000, seed=1)
    try:
        csvs = [args.out / f"{label}.csv" if args.plot_only else run_config(path, label, args, args.out)
                for path, label in zip(args.configs, labels)]
    except BenchFailed as exc:
        print(f"bench_steady_state: error: {exc} (the run's log and output are in {args.out})", file=sys.stderr)
        return 1
    figures, fills = plots.write_history_plots(csvs, args.out, labels=labels)
    for path in figures:
        print(f"wrote {path}")
    for csv, label in zip(csvs, labels):
        table = read_csv(csv)
        fill = fills[label]
        if (fill - table["visit"].min()) > args.window_fraction * len(table):
            print(f"bench_steady_state: {label}: the window fills at visit {fill:.0f}, later than "
                  f"{args.window_fraction:.0%} of the run: more visits or a larger K", file=sys.stderr)
        print("\n".join(summary(label, table, fill)))
    if args.results is not None:
        logs = {label: args.out / f"{label}.jsonl" for label in labels}
        keep_results(logs, args.results,
                     f"Steady state, {args.visits} visits per config, K = {args.observations_per_year:g}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
