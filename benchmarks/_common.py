"""Pieces the benchmark scripts share: scratch databases and random full-width rows.

Run the scripts from the repository root (``.venv/bin/python benchmarks/X.py``);
this folder is then first on ``sys.path``, so ``from _common import ...`` works.
"""

from __future__ import annotations

import argparse
import contextlib
import shutil
import statistics
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TypeVar

import numpy as np
import pandas as pd
import sqlalchemy as sa

from dia_sim.rows import BANDS
from l1db import backends
from l1db.frames import column_dtype, column_kind
from l1db.scratch import Servers, scratch_database

__all__ = [
    "BACKENDS",
    "add_backend_options",
    "parse_backends",
    "backend_database",
    "random_frame",
    "timed",
    "median_time",
    "markdown_table",
]

T = TypeVar("T")

#: The backends a benchmark can run on (`l1db.backends.BACKENDS`).
BACKENDS = tuple(b.name for b in backends.BACKENDS)
#: The backends a benchmark runs on unless told otherwise: the SQL ones.
DEFAULT_BACKENDS = tuple(b.name for b in backends.BACKENDS if b.kind == backends.SQL)


def add_backend_options(parser: argparse.ArgumentParser) -> None:
    """``--backends`` and the servers' admin URLs."""
    parser.add_argument("--backends", default=",".join(DEFAULT_BACKENDS), type=parse_backends,
                        help=f"comma-separated backends of {', '.join(BACKENDS)} "
                             f"(default: {','.join(DEFAULT_BACKENDS)})")
    local = Servers()
    parser.add_argument("--pg-admin-url", default=local.pg_admin_url, help="PostgreSQL admin URL")
    parser.add_argument("--mysql-admin-url", default=local.mysql_admin_url, help="MySQL/MariaDB admin URL")
    parser.add_argument("--cassandra-hosts", default=local.cassandra_hosts,
                        help=f"Cassandra contact points, comma-separated (default {local.cassandra_hosts})")


def parse_backends(text: str) -> list[str]:
    """The backends of a ``--backends`` value (argparse's ``type``: a bad one is a usage error, exit 2)."""
    backends = [b.strip() for b in text.split(",") if b.strip()]
    unknown = sorted(set(backends) - set(BACKENDS))
    if unknown or not backends:
        raise argparse.ArgumentTypeError(f"bad --backends {text!r}: choose from {', '.join(BACKENDS)}")
    return backends


def backend_database(backend: str, name: str, tmp_dir: Path, args: argparse.Namespace
                     ) -> contextlib.AbstractContextManager[str]:
    """`l1db.scratch.scratch_database` on the servers of `add_backend_options`."""
    servers = Servers(args.pg_admin_url, args.mysql_admin_url, args.cassandra_hosts)
    return scratch_database(backend, name, tmp_dir, servers)


def random_frame(table: sa.Table, n: int, rng: np.random.Generator, null_fraction: float = 0.0) -> pd.DataFrame:
    """``n`` rows for ``table``: every column random values of its type, unique first key column.

    With ``null_fraction``, that share of each nullable column is NULL.
    """
    data: dict[str, object] = {}
    for column in table.columns:
        kind = column_kind(column)
        if kind == "bool":
            values = rng.integers(0, 2, n).astype(bool)
        elif kind.startswith("int"):
            info = np.iinfo(kind)
            values = rng.integers(info.min, info.max, n, endpoint=True, dtype=kind)
        elif kind.startswith("float"):
            values = (rng.standard_normal(n) * 10.0 ** rng.integers(-5, 6, n)).astype(kind)
        else:
            letters = np.array(list(BANDS), dtype=object)  # band names: fit a CHAR(1) band column
            values = letters[rng.integers(0, len(letters), n)]
        if null_fraction and column.nullable:
            values = pd.Series(values, dtype=column_dtype(column))
            values[rng.random(n) < null_fraction] = None
        data[column.name] = values
    # Unique keys: the first key column numbers the rows.
    data[table.primary_key.columns[0].name] = np.arange(n, dtype=np.int64) + 1
    return pd.DataFrame(data)


def timed(func: Callable[[], T]) -> tuple[float, T]:
    """Wall-clock seconds of one call of ``func``, and what it returned."""
    start = time.perf_counter()
    result = func()
    return time.perf_counter() - start, result


def markdown_table(frame: pd.DataFrame) -> str:
    """``frame`` as a Markdown table (for BENCHMARKS.md), one line per row."""
    lines = ["| " + " | ".join(str(c) for c in frame.columns) + " |", "|" + "---|" * len(frame.columns)]
    lines += ["| " + " | ".join(str(v) for v in record) + " |" for record in frame.itertuples(index=False)]
    return "\n".join(lines)


def median_time(func: Callable[[], T], runs: int) -> tuple[float, T]:
    """Median wall-clock seconds of ``runs`` calls of ``func``, and what the last one returned."""
    times = []
    for _ in range(runs):
        seconds, result = timed(func)
        times.append(seconds)
    return statistics.median(times), result


def add_results_option(parser: argparse.ArgumentParser) -> None:
    """``--results DIR``: where `keep_results` puts the runs' timing logs and their report."""
    parser.add_argument("--results", type=Path, default=None, metavar="DIR",
                        help="keep each run's timing log in DIR and write DIR/report.html comparing them "
                             "(l1db_report); BENCHMARKS.md links the reports under benchmarks/results/")


def keep_results(logs: Mapping[str, Path], out_dir: Path, title: str) -> Path:
    """Copy each run's timing log to ``out_dir/LABEL.jsonl`` and write ``out_dir/report.html`` of them all; say where.

    Parameters
    ----------
    logs : `~collections.abc.Mapping` [`str`, `pathlib.Path`]
        Label of each run (e.g. its backend) -> its timing log.
    out_dir : `pathlib.Path`
        Folder for the logs and the report; made if missing.
    title : `str`
        The report's title.

    Returns
    -------
    report : `pathlib.Path`
        The report written.
    """
    from dia_sim.report import load_runs, write_report

    out_dir.mkdir(parents=True, exist_ok=True)
    kept = []
    for label, log in logs.items():
        kept.append(out_dir / f"{label}.jsonl")
        shutil.copyfile(log, kept[-1])
    report = write_report(load_runs(kept, list(logs)), out_dir / "report.html", title=title)
    print(f"logs and report in {out_dir} ({report.name})", flush=True)
    return report
