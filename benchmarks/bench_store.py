"""Benchmark: storing one full-width visit, bulk path against SQLAlchemy executemany.

On each backend in one run (SQLite file, PostgreSQL and MariaDB databases
``l1db_bench`` created and dropped here) it stores the same visit, 15,000
DiaObjects, 15,000 DiaSources and 20,000 DiaForcedSources of the real schema
with every column filled with random values, into emptied tables, alternating:

- ``bulk``: `l1db.frames.check_frame` + `l1db.sql.bulk_insert.insert_frame` of the
  three tables in one transaction (the time includes the checks and commit);
- ``core``: SQLAlchemy Core ``conn.execute(table.insert(), rows)`` with the
  rows as a list of dicts prepared before the clock starts, one transaction;
- on MySQL also ``bulk-insert``: insert_frame through a connection without
  ``local_infile``, i.e. mysqlclient's multi-row INSERT instead of LOAD DATA.

Prints medians of ``--repeats`` runs and the ratios, as a Markdown table.

Usage::

    .venv/bin/python benchmarks/bench_store.py --repeats 5
"""

from __future__ import annotations

import argparse
import logging
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
from l1db.frames import check_frame
from l1db.sql.bulk_insert import insert_frame
from l1db.sql.database import make_engine
from l1db.sql.schema import L1Schema

_LOG = logging.getLogger(__name__)

DB_NAME = "l1db_bench"
TABLES = ("DiaObject", "DiaSource", "DiaForcedSource")


def _store_bulk(engine: sa.Engine, tables: dict[str, sa.Table], frames: dict[str, pd.DataFrame]) -> None:
    with engine.begin() as conn:
        for name, frame in frames.items():
            insert_frame(conn, tables[name], check_frame(tables[name], frame))


def _store_core(engine: sa.Engine, tables: dict[str, sa.Table], rows: dict[str, list[dict]]) -> None:
    with engine.begin() as conn:
        for name, table_rows in rows.items():
            conn.execute(tables[name].insert(), table_rows)


def _empty(engine: sa.Engine, tables: dict[str, sa.Table]) -> None:
    with engine.begin() as conn:
        for name in TABLES:
            if engine.dialect.name == "sqlite":
                conn.execute(tables[name].delete())
            else:
                conn.exec_driver_sql(f"TRUNCATE TABLE {conn.dialect.identifier_preparer.format_table(tables[name])}")
    if engine.dialect.name == "sqlite":
        with engine.connect() as conn:
            conn.exec_driver_sql("VACUUM")


def bench_backend(backend: str, url: str, sizes: dict[str, int], repeats: int, seed: int) -> dict[str, list[float]]:
    """Run the alternating measurements on one database; return samples by method."""
    schema = L1Schema(L1dbConfig(url=url))
    engine = make_engine(url)
    schema.create(engine, drop=True)
    tables = schema.tables
    rng = np.random.default_rng(seed)
    frames = {name: random_frame(tables[name], n, rng) for name, n in sizes.items()}

    samples: dict[str, list[float]] = {"check": [], "bulk": [], "core": [], "to_dicts": []}
    methods: dict[str, Callable[[], None]] = {
        "bulk": lambda: _store_bulk(engine, tables, frames),
    }
    plain_engine = None
    if backend == "mysql":
        plain_engine = make_engine(url, connect_args={"local_infile": 0})
        samples["bulk-insert"] = []
        methods["bulk-insert"] = lambda: _store_bulk(plain_engine, tables, frames)

    def core() -> None:
        seconds, rows = timed(lambda: {name: frame.to_dict("records") for name, frame in frames.items()})
        samples["to_dicts"].append(seconds)
        _empty(engine, tables)
        samples["core"].append(timed(lambda: _store_core(engine, tables, rows))[0])

    # Warm-up (numba kernel load, connection pool, statement caches): not timed.
    for func in methods.values():
        _empty(engine, tables)
        func()
    for _ in range(repeats):
        for name, func in methods.items():
            _empty(engine, tables)
            samples[name].append(timed(func)[0])
        core()
        samples["check"].append(timed(lambda: [check_frame(tables[n], f) for n, f in frames.items()])[0])
    with engine.connect() as conn:
        counts = {n: conn.execute(sa.select(sa.func.count()).select_from(tables[n])).scalar_one() for n in TABLES}
    if counts != sizes:
        raise RuntimeError(f"{backend}: tables hold {counts}, expected {sizes}")
    engine.dispose()
    if plain_engine is not None:
        plain_engine.dispose()
    return samples


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit code."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per method (default 5)")
    parser.add_argument("--objects", type=int, default=15_000, help="DiaObjects per visit")
    parser.add_argument("--sources", type=int, default=15_000, help="DiaSources per visit")
    parser.add_argument("--forced", type=int, default=20_000, help="DiaForcedSources per visit")
    parser.add_argument("--seed", type=int, default=1, help="random seed")
    add_backend_options(parser)
    args = parser.parse_args(argv)
    backends = args.backends
    if args.repeats < 1:
        print("bench_store: --repeats must be >= 1", file=sys.stderr)
        return 2
    sizes = {"DiaObject": args.objects, "DiaSource": args.sources, "DiaForcedSource": args.forced}

    results: dict[str, dict[str, list[float]]] = {}
    with tempfile.TemporaryDirectory(prefix="l1db_bench_") as tmp:
        for backend in backends:
            with backend_database(backend, DB_NAME, Path(tmp), args) as url:
                results[backend] = bench_backend(backend, url, sizes, args.repeats, args.seed)

    print(f"visit: {sizes}, {args.repeats} runs per method, medians in seconds")
    print()
    print("| backend | check_frame | bulk (check + insert_frame + commit) | Core executemany | "
          "to_dict('records') | executemany / bulk | MySQL multi-row INSERT path |")
    print("|---|---|---|---|---|---|---|")
    for backend, samples in results.items():
        med = {k: statistics.median(v) for k, v in samples.items() if v}
        extra = f"{med['bulk-insert']:.3f}" if "bulk-insert" in med else "-"
        print(f"| {backend} | {med['check']:.4f} | {med['bulk']:.3f} | {med['core']:.3f} | "
              f"{med['to_dicts']:.3f} | {med['core'] / med['bulk']:.1f}x | {extra} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
