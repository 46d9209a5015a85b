"""Benchmark: reading full-width rows into typed frames, `read_frame` against the old path.

On each backend in one run (SQLite file, PostgreSQL and MariaDB databases
``l1db_bench_read`` created and dropped here) it stores 100,000 DiaSources and
10,000 DiaObjects of the real schema, every column filled with random values
and about 10% NULLs in each nullable column, then reads each table whole,
alternating:

- ``old``: the L1db read path before `l1db.sql.bulk_read` (copied below):
  ``conn.execute(stmt).fetchall()``, ``DataFrame.from_records`` and ``astype``
  to the `check_frame` dtypes;
- ``read_frame``: `l1db.sql.bulk_read.read_frame` (binary COPY + numba parser on
  PostgreSQL, the driver's rows transposed column by column elsewhere);
- ``fetch``: ``conn.execute(stmt).fetchall()`` alone, the floor of any path
  that goes through the driver's rows.

Before timing, the frame from `read_frame` is checked to equal the stored
frame exactly. Prints medians of ``--repeats`` runs and the ratios as a
Markdown table.

Usage::

    .venv/bin/python benchmarks/bench_read.py --repeats 5
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import sqlalchemy as sa
from _common import add_backend_options, backend_database, random_frame, timed

from l1db.config import L1dbConfig
from l1db.frames import check_frame, column_dtype
from l1db.sql.bulk_insert import insert_frame
from l1db.sql.bulk_read import read_frame
from l1db.sql.database import make_engine
from l1db.sql.schema import L1Schema

_LOG = logging.getLogger(__name__)

DB_NAME = "l1db_bench_read"


def old_read(conn: sa.Connection, stmt: sa.Select) -> pd.DataFrame:
    """The read path of L1db before bulk_read (``_read`` + ``_typed``), the baseline."""
    result = conn.execute(stmt)
    columns = list(result.keys())
    rows = result.fetchall()
    frame = pd.DataFrame.from_records(rows, columns=columns, coerce_float=True)
    dtypes = {col.name: column_dtype(col) for col in stmt.selected_columns if col.name in frame}
    if len(frame) == 0:
        return pd.DataFrame({name: pd.Series([], dtype=dtypes.get(name, object)) for name in frame.columns})
    return frame.astype(dtypes)


def fetch_only(conn: sa.Connection, stmt: sa.Select) -> int:
    return len(conn.execute(stmt).fetchall())


def bench_backend(url: str, sizes: dict[str, int], repeats: int, seed: int) -> dict[str, dict[str, list[float]]]:
    """Store the tables, then time the read methods; samples by table and method."""
    schema = L1Schema(L1dbConfig(url=url))
    engine = make_engine(url)
    schema.create(engine, drop=True)
    rng = np.random.default_rng(seed)
    results: dict[str, dict[str, list[float]]] = {}
    for name, n in sizes.items():
        table = schema.tables[name]
        stored = check_frame(table, random_frame(table, n, rng, null_fraction=0.1))
        with engine.begin() as conn:
            insert_frame(conn, table, stored)
        stmt = sa.select(*table.columns)
        with engine.connect() as conn:
            # Warm-up (numba kernels, statement cache) and the exactness check.
            key = table.primary_key.columns[0].name
            back = read_frame(conn, stmt).sort_values(key, ignore_index=True)
            pd.testing.assert_frame_equal(back, stored.sort_values(key, ignore_index=True))
            old_read(conn, stmt)
        methods: dict[str, Callable[[sa.Connection], object]] = {
            "old": lambda conn: old_read(conn, stmt),
            "read_frame": lambda conn: read_frame(conn, stmt),
            "fetch": lambda conn: fetch_only(conn, stmt),
        }
        samples: dict[str, list[float]] = {m: [] for m in methods}
        for _ in range(repeats):
            for method, func in methods.items():
                with engine.connect() as conn:
                    samples[method].append(timed(lambda: func(conn))[0])
        results[name] = samples
    engine.dispose()
    return results


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit code."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per method (default 5)")
    parser.add_argument("--sources", type=int, default=100_000, help="DiaSource rows to read")
    parser.add_argument("--objects", type=int, default=10_000, help="DiaObject rows to read")
    parser.add_argument("--seed", type=int, default=1, help="random seed")
    add_backend_options(parser)
    args = parser.parse_args(argv)
    backends = args.backends
    if args.repeats < 1 or args.sources < 1 or args.objects < 1:
        print("bench_read: --repeats and the row counts must be >= 1", file=sys.stderr)
        return 2
    sizes = {"DiaSource": args.sources, "DiaObject": args.objects}

    load_start = os.getloadavg()
    results: dict[str, dict[str, dict[str, list[float]]]] = {}
    with tempfile.TemporaryDirectory(prefix="l1db_bench_") as tmp:
        for backend in backends:
            with backend_database(backend, DB_NAME, Path(tmp), args) as url:
                results[backend] = bench_backend(url, sizes, args.repeats, args.seed)
    load_end = os.getloadavg()

    print(f"rows: {sizes}, {args.repeats} runs per method, medians in seconds; "
          f"load average {load_start[0]:.2f} at start, {load_end[0]:.2f} at end")
    print()
    print("| backend | table | rows | old (fetchall + from_records + astype) | read_frame | "
          "old / read_frame | fetchall alone |")
    print("|---|---|---|---|---|---|---|")
    for backend, tables in results.items():
        for name, samples in tables.items():
            med = {k: statistics.median(v) for k, v in samples.items()}
            print(f"| {backend} | {name} | {sizes[name]:,} | {med['old']:.3f} | {med['read_frame']:.3f} | "
                  f"{med['old'] / med['read_frame']:.1f}x | {med['fetch']:.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
