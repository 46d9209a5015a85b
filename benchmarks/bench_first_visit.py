"""Benchmark: is the first visit of an ap_proto run an outlier (numba compiling inside it)?

For each backend, code version and numba cache state: ``--runs`` fresh runs
(a new database, ``create_l1_schema``, ``ap_proto`` for ``--visits`` visits
in a new process), and for each operation the ratio of the first visit's time
to the median of the run's other visits; the table gives the median of that
ratio over the runs (1.0: the first visit is like the others), and the
first visit's and the others' median ``visit`` times in seconds.

Code versions: ``after`` is this source tree; ``before`` is the commit given
by ``--before`` (e.g. main before the warm-ups), checked out into a temporary
git worktree and run the same way. Cache states: ``cold`` gives every run a
new empty ``NUMBA_CACHE_DIR`` (the first run on a machine: every kernel is
compiled), ``warm`` shares one that a first, unmeasured run filled (numba
loads the kernels from it).

Usage::

    .venv/bin/python benchmarks/bench_first_visit.py --before ead76d0 --runs 3 --visits 10
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
from _common import add_backend_options, backend_database, markdown_table

from dia_sim.catalog import generate_catalog
from l1db.timing_log import parse_log

REPO = Path(__file__).resolve().parents[1]
DB_NAME = "l1db_bench_first_visit"
OPS = ("obj_select", "src_select", "fsrc_select", "sim_detect", "sim_associate", "sim_rows", "store", "visit")


@contextlib.contextmanager
def source_tree(rev: str | None, work: Path) -> Iterator[Path]:
    """This tree (``rev`` None), or ``rev`` checked out into a temporary worktree."""
    if rev is None:
        yield REPO
        return
    tree = work / f"tree-{rev}"
    subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", str(tree), rev],
                   check=True, capture_output=True)
    try:
        yield tree
    finally:
        subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(tree)], check=True)


def one_run(tree: Path, url: str, catalog: Path, args: argparse.Namespace, work: Path, cache: Path) -> pd.DataFrame:
    """One fresh ap_proto run of ``tree``'s code; its timing records."""
    config = work / "run.cfg"
    config.write_text(
        f"[database]\nurl = {url}\n\n[ap_proto]\npointing_area = {args.patch}\nseed = {args.seed}\n"
        "false_per_visit = 1000\ntransients_per_visit = 20\nrow_count_every = 0\n"
    )
    env = dict(os.environ, PYTHONPATH=str(tree), NUMBA_CACHE_DIR=str(cache))
    python = sys.executable
    subprocess.run([python, str(tree / "bin" / "create_l1_schema"), "-c", str(config), "--drop"],
                   env=env, check=True, capture_output=True)
    log = work / "run.jsonl"
    log.unlink(missing_ok=True)
    subprocess.run([python, str(tree / "bin" / "ap_proto"), "-c", str(config), "-n", str(args.visits),
                    "-l", str(log), "--no-progress", str(catalog)], env=env, check=True, capture_output=True)
    return parse_log(log).timings


def ratios(timings: pd.DataFrame) -> dict[str, float]:
    """First visit's time over the median of the others, per operation; and the two visit times."""
    per_visit = timings.groupby(["op", "visit"])["real"].sum().unstack("op")
    first, others = per_visit.iloc[0], per_visit.iloc[1:]
    out = {op: float(first[op] / others[op].median()) for op in OPS if op in per_visit}
    out["first_visit_s"] = float(first["visit"])
    out["other_visits_s"] = float(others["visit"].median())
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", metavar="REV", help="commit to compare with (default: none, 'after' only)")
    parser.add_argument("--runs", type=int, default=3, help="fresh runs per case (3)")
    parser.add_argument("--visits", type=int, default=10, help="visits per run (10)")
    parser.add_argument("--caches", default="cold,warm", help="numba cache states: cold, warm or both")
    parser.add_argument("--patch", default="0,20,-30,-10", help="pointing area RA_MIN,RA_MAX,DEC_MIN,DEC_MAX")
    parser.add_argument("--per-visit", type=int, default=2000, help="catalogue sources per field (2000)")
    parser.add_argument("--seed", type=int, default=1)
    add_backend_options(parser)
    parser.set_defaults(backends="sqlite,postgresql")
    args = parser.parse_args()
    # SIGTERM unwinds like an error, so the temporary worktree and databases are removed.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    backends = args.backends
    caches = [c.strip() for c in args.caches.split(",") if c.strip()]
    versions = [("before", args.before), ("after", None)] if args.before else [("after", None)]
    rows = []
    load_start = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        catalog = work / "sources.npy"
        generate_catalog(catalog, per_visit=args.per_visit, seed=1)
        for version, rev in versions:
            with source_tree(rev, work) as tree:
                for backend in backends:
                    for cache_state in caches:
                        shared = work / f"cache-{version}-{backend}"
                        results = []
                        for run in range(args.runs + (cache_state == "warm")):
                            cache = shared if cache_state == "warm" else work / f"cache-{version}-{backend}-{run}"
                            with backend_database(backend, DB_NAME, work, args) as url:
                                timings = one_run(tree, url, catalog, args, work, cache)
                            if cache_state == "warm" and run == 0:
                                continue  # fills the cache; not measured
                            results.append(ratios(timings))
                            print(f"{version} {backend} {cache_state} run {len(results)}: "
                                  f"first visit {results[-1]['first_visit_s']:.2f} s, "
                                  f"others {results[-1]['other_visits_s']:.2f} s", file=sys.stderr)
                        frame = pd.DataFrame(results)
                        row = {"code": version, "backend": backend, "numba cache": cache_state}
                        row.update({op: f"{np.median(frame[op]):.2f}" for op in frame.columns})
                        rows.append(row)
    print(f"{args.runs} fresh runs per case of {args.visits} visits, {args.per_visit} sources per field, "
          f"patch {args.patch}; before = {args.before or '-'}; median over runs of "
          "(first visit's time / median of the run's other visits) per operation, and of the first and "
          f"other visits' times in seconds; load average {load_start[0]:.2f} at start, "
          f"{os.getloadavg()[0]:.2f} at end\n")
    table = pd.DataFrame(rows)
    print(markdown_table(table))
    return 0


if __name__ == "__main__":
    sys.exit(main())
