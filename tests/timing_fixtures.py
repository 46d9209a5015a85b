"""Synthetic timing logs for the log2csv, plot and notebook tests.

The records look like those of an ap_proto run: per visit and tile the
simulation, the three selects, the store's inserts (which ones depends on the
indexing strategy), the whole store and the whole visit, with times growing
linearly with the visit number and row counts of a reduced-density field.
They are written through `l1db.timing_log.TimingLogWriter`, the same writer
ap_proto uses, so the tests exercise the real format.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from l1db.timer import TimingRecord
from l1db.timing_log import TimingLogWriter, machine_info

__all__ = ["store_operations", "synthetic_records", "write_synthetic_log"]


def store_operations(strategy: str, nightly: bool = False, replace: bool = False) -> list[str]:
    """Operations of the store for an indexing strategy, as ap_proto emits them."""
    ops = ["obj_nightly_insert" if nightly else "obj_insert"]
    if strategy == "last_object_table":
        ops += ["obj_last_upsert"] if replace else ["obj_last_delete", "obj_last_insert"]
    else:
        ops += ["obj_validity_update"]
    return ops + ["src_insert", "fsrc_insert", "visit_insert"]


def synthetic_records(
    n_visits: int = 40,
    first_visit: int = 1,
    tiles: int = 1,
    seed: int = 0,
    strategy: str = "baseline",
    nightly: bool = False,
    replace: bool = False,
    per_visit: int = 1500,
    merge_every: int = 10,
) -> pd.DataFrame:
    """Timing records of a synthetic run, one row per record.

    Returns
    -------
    records : `pandas.DataFrame`
        Columns visit, tile, op, real, user, sys, rows (rows is `None` for the
        operations without a count), in the order ap_proto would write them.
    """
    rng = np.random.default_rng(seed)
    store_ops = store_operations(strategy, nightly, replace)
    rows: list[tuple] = []

    def add(visit: int, tile: int, op: str, real: float, count: int | None) -> None:
        real = float(real)
        user = real * float(rng.uniform(0.3, 0.7))
        sys_ = real * float(rng.uniform(0.0, 0.1))
        rows.append((visit, tile, op, round(real, 6), round(user, 6), round(sys_, 6), count))

    for i in range(n_visits):
        visit = first_visit + i
        growth = 1.0 + i / 50.0
        for tile in range(tiles):
            share = per_visit // tiles
            n_obj = int(rng.poisson(share * min(growth, 3.0)))
            n_src = int(rng.poisson(share * i / 4)) if i else 0
            n_fsrc = int(rng.poisson(share * i / 2)) if i else 0
            n_new = int(rng.poisson(share * 1.05))
            sim = rng.gamma(4.0, 0.004)
            t_obj = rng.gamma(4.0, 0.01 * growth / tiles)
            t_src = rng.gamma(4.0, 0.008 * growth / tiles)
            t_fsrc = rng.gamma(4.0, 0.006 * growth / tiles)
            add(visit, tile, "sim", sim, None)
            add(visit, tile, "obj_select", t_obj, n_obj)
            add(visit, tile, "src_select", t_src, n_src)
            add(visit, tile, "fsrc_select", t_fsrc, n_fsrc)
            store = 0.0
            for op in store_ops:
                count = {"src_insert": n_new, "fsrc_insert": n_obj, "visit_insert": 1}.get(op, n_new)
                t = rng.gamma(4.0, 0.005 * growth / tiles)
                store += t
                add(visit, tile, op, t, count)
            add(visit, tile, "store", store * 1.05, None)
            add(visit, tile, "visit", (sim + t_obj + t_src + t_fsrc + store * 1.05) * 1.02, None)
        if nightly and merge_every and (i + 1) % merge_every == 0:
            add(visit, 0, "daily_merge", rng.gamma(4.0, 0.05), int(rng.poisson(per_visit * merge_every)))
    return pd.DataFrame(rows, columns=["visit", "tile", "op", "real", "user", "sys", "rows"])


def write_synthetic_log(
    path: str | os.PathLike,
    run: str | None = None,
    backend: str = "sqlite",
    strategy: str = "baseline",
    nightly: bool = False,
    replace: bool = False,
    per_visit: int = 1500,
    files: int = 1,
    **kwargs,
) -> tuple[str, pd.DataFrame]:
    """Write a synthetic run's provenance and timing records.

    Parameters
    ----------
    path : path-like
        Log file; with ``files`` > 1 the tiles are spread round-robin over
        ``path``, ``path.1``, ... (as separate processes would write them),
        each file starting with its own provenance record.
    run : `str`, optional
        Run id (a new one if not given).
    **kwargs
        Passed to `synthetic_records` (``n_visits``, ``first_visit``,
        ``tiles``, ``seed``, ``merge_every``).

    Returns
    -------
    run : `str`
        The run id.
    records : `pandas.DataFrame`
        The records written (see `synthetic_records`).
    """
    records = synthetic_records(strategy=strategy, nightly=nightly, replace=replace, per_visit=per_visit, **kwargs)
    paths = [Path(path)] + [Path(f"{os.fspath(path)}.{k}") for k in range(1, files)]
    first = TimingLogWriter(paths[0], run=run)
    run = first.run
    writers = [first] + [TimingLogWriter(p, run=run) for p in paths[1:]]
    provenance = {
        "toolkit_version": "0.1.0",
        "git_commit": None,
        "config": {
            "database": {"url": f"{backend}://synthetic"},
            "l1db": {
                "dia_object_index": strategy,
                "dia_object_nightly": int(nightly),
                "object_last_replace": int(replace),
            },
            "ap_proto": {"per_visit": per_visit},
        },
        "backend": backend,
        "server_version": "synthetic",
        "machine": machine_info(),
        "seed": kwargs.get("seed", 0),
        "argv": ["synthetic"],
    }
    try:
        for writer in writers:
            writer.provenance(provenance)
        for rec in records.itertuples(index=False):
            writer = writers[rec.tile % len(writers)]
            count = None if rec.rows is None or pd.isna(rec.rows) else int(rec.rows)
            writer.timing(TimingRecord(rec.op, rec.real, rec.user, rec.sys, count), rec.visit, rec.tile)
    finally:
        for writer in writers:
            writer.close()
    return run, records
