"""Timing logs to a per-visit table: one row per (run, visit).

The logs are read by `l1db.timing_log` (the only parser of their format);
this module aggregates the timing records:

1. within one tile, records of the same operation are added up (an operation
   run several times in one tile ran sequentially);
2. ``sum_select`` of a tile is the SUM of its ``obj_select``, ``src_select``
   and ``fsrc_select`` (never an average);
3. over the tiles of a visit (processes running concurrently, possibly
   writing separate log files): wall time (``*_real``) is the maximum over
   tiles, cpu time (``*_cpu`` = user + sys) and row counts are summed.

Every column of `CSV_COLUMNS` is always written; a value is empty where the
input has no record of that operation for that visit (an operation the
configuration does not use, ``daily_merge`` outside the visit it ran before).

The daily job's records (``daily`` in the log: the work between nights, run
before a visit and logged under it) are not the visit's: of them only its
own operations (`DAILY_OPERATIONS`: the ``daily_merge_*`` and
``daily_partitions_*`` columns, and ``obj_merged``) go to the visit's row,
never the operations inside them (the merge's
``obj_insert``, ``obj_validity_update``, ``obj_last_*``: the nightly rows
it moves were counted as stored by the visits that stored them). A log
written before the field existed has the merge's operations in the visit's
columns.

``complete`` says whether the row measures a whole visit: 1 when every tile
of the visit ran to its end in that run (its ``visit`` record, written once
the tile's store, or its read-only pass, finished), 0 otherwise: a visit
abandoned by a kill or a failure, or the remaining tiles of a tiled visit
that a resumed run finished. The number of tiles is the run's ``divide``
squared, or 189 for ``divide = camera`` (from its provenance record; without
one, the tiles that have records). Plots and fits leave incomplete rows out by default.

``failures`` counts the visit's failure records (failed attempts, over all
tiles) and ``lost_real`` is the time they cost: per tile the failed
attempts' wall time plus the waits before the retries, the largest over the
tiles (they run concurrently); 0 for a visit without failure. The failed
attempts of the loop's own work logged under the visit (the daily job before
it, the row counts after it: `l1db.timing_log.LOOP_OPERATIONS`) are not the
visit's: ``loop_failures`` counts them, apart.

Back-pressure (the timing records' ``wait`` and ``resent``, 0 where a
record has none): ``select_wait`` and ``store_wait`` are per tile the
seconds the selects and the store waited on the database's back-pressure,
the largest over the tiles (they run concurrently); ``select_resent`` and
``store_resent`` the requests sent again, summed over the tiles. Only the
outer operations count (``store`` holds its table operations' waits).

Open-loop runs (``ap_proto --cadence``): ``released`` is when the visit was
released (Unix seconds), ``queue_wait`` the seconds from its release until
its first tile began, ``latency`` the seconds from its release until its
last tile's store was acknowledged (from its ``latency`` record); empty for
a closed-loop run's visits and for visits not completed.

Next to the CSV a sidecar ``<csv>.provenance.json`` keeps the runs'
provenance records, so that plots can say which backend, indexing strategy
and density a CSV measured (see `write_provenance`, `read_provenance`).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, TextIO

import numpy as np
import pandas as pd

from l1db.timing_log import LOOP_OPERATIONS, ParsedLog, parse_logs

from .tiling import tiling

__all__ = [
    "COMPLETE_OPERATION",
    "COUNT_COLUMNS",
    "INT_COLUMNS",
    "tiles_per_visit",
    "CSV_OPERATIONS",
    "DAILY_OPERATIONS",
    "CSV_COLUMNS",
    "PRESSURE_COLUMNS",
    "OPEN_LOOP_COLUMNS",
    "SELECT_OPERATIONS",
    "PROVENANCE_SUFFIX",
    "visit_table",
    "logs_to_table",
    "write_csv",
    "read_csv",
    "provenance_path",
    "write_provenance",
    "read_provenance",
    "read_behind",
    "run_description",
]

_LOG = logging.getLogger(__name__)

#: The selects whose per-tile sum is ``sum_select``.
SELECT_OPERATIONS: tuple[str, ...] = ("obj_select", "src_select", "fsrc_select")

#: Row-count columns: name -> (operations whose ``rows`` are added up, description).
COUNT_COLUMNS: dict[str, tuple[tuple[str, ...], str]] = {
    "obj_read": (("obj_select",), "DiaObjects read"),
    "src_read": (("src_select",), "DiaSources read (history)"),
    "fsrc_read": (("fsrc_select",), "DiaForcedSources read (history)"),
    "obj_stored": (("obj_insert", "obj_nightly_insert"), "new DiaObject versions stored"),
    "src_stored": (("src_insert",), "DiaSources stored"),
    "fsrc_stored": (("fsrc_insert",), "DiaForcedSources stored"),
    "obj_merged": (("daily_merge",), "DiaObject versions the daily job before the visit merged from the nightly table"),
}

#: The daily job's own operations: of its records (``daily``), those that go to the table.
DAILY_OPERATIONS: tuple[str, ...] = ("daily_merge", "daily_partitions")

#: Operations with ``<op>_real`` and ``<op>_cpu`` columns, in column order.
CSV_OPERATIONS: tuple[str, ...] = (
    "obj_select", "src_select", "fsrc_select", "sum_select",
    "obj_insert", "obj_nightly_insert", "obj_last_insert", "obj_last_upsert", "obj_last_delete",
    "obj_validity_update", "src_insert", "fsrc_insert", "visit_insert", "store",
    "sim", "visit", *DAILY_OPERATIONS, "connect",
)

# -- back-pressure columns --
#: Back-pressure columns: name -> (the timing field added up, the outer operations it is taken from, description).
PRESSURE_COLUMNS: dict[str, tuple[str, tuple[str, ...], str]] = {
    "select_wait": ("wait", SELECT_OPERATIONS, "seconds the selects waited on back-pressure"),
    "select_resent": ("resent", SELECT_OPERATIONS, "requests of the selects sent again"),
    "store_wait": ("wait", ("store",), "seconds the store waited on back-pressure"),
    "store_resent": ("resent", ("store",), "requests of the store sent again"),
    "connect_wait": ("wait", ("connect",), "seconds connecting waited on back-pressure"),
    "connect_resent": ("resent", ("connect",), "connection queries sent again"),
}
# -- end of back-pressure columns --

#: The operation whose record ends a tile: its presence makes the tile complete.
COMPLETE_OPERATION = "visit"

#: Columns of open-loop runs (from their latency records), at the end of the table.
OPEN_LOOP_COLUMNS: tuple[str, ...] = ("released", "queue_wait", "latency")

#: Every CSV column, in order.
CSV_COLUMNS: tuple[str, ...] = (
    ("run", "visit", "n_tiles", "complete", "failures", "lost_real", "loop_failures")
    + tuple(COUNT_COLUMNS)
    + tuple(f"{op}_{kind}" for op in CSV_OPERATIONS for kind in ("real", "cpu"))
    + tuple(PRESSURE_COLUMNS)
    + OPEN_LOOP_COLUMNS
)

#: Integer columns (nullable Int64 in a table).
INT_COLUMNS: tuple[str, ...] = ("visit", "n_tiles", "complete", "failures", "loop_failures", *COUNT_COLUMNS,
                                *(name for name, (field, _ops, _doc) in PRESSURE_COLUMNS.items() if field == "resent"))

#: Suffix of the provenance sidecar of a CSV file.
PROVENANCE_SUFFIX = ".provenance.json"


def _empty_table() -> pd.DataFrame:
    table = pd.DataFrame({name: pd.Series(dtype="float64") for name in CSV_COLUMNS})
    table["run"] = table["run"].astype("str")
    for name in INT_COLUMNS:
        table[name] = table[name].astype("Int64")
    return table


def tiles_per_visit(provenance: Iterable[Mapping[str, Any]]) -> dict[str, int]:
    """Tiles of a visit of each run (``divide`` squared, 189 for the camera), from the runs' provenance records.

    A run whose record has no valid ``divide`` is left out.
    """
    tiles = {}
    for record in provenance:
        config = record.get("config")
        ap_proto = config.get("ap_proto") if isinstance(config, Mapping) else None
        divide = ap_proto.get("divide") if isinstance(ap_proto, Mapping) else None
        if divide is None:
            continue
        try:
            count = tiling(divide).n_tiles
        except ValueError:
            continue
        if "run" in record:
            tiles[str(record["run"])] = count
    return tiles


def visit_table(timings: pd.DataFrame, provenance: Iterable[Mapping[str, Any]] = (),
                failures: pd.DataFrame | None = None, latencies: pd.DataFrame | None = None) -> pd.DataFrame:
    """Aggregate timing (and failure) records to one row per (run, visit).

    Parameters
    ----------
    timings : `pandas.DataFrame`
        Timing records as in `l1db.timing_log.ParsedLog.timings`.
    provenance : iterable of mappings
        The runs' provenance records: the number of tiles of a visit of each
        run (for ``complete``); a run without one counts the tiles that have
        records.
    failures : `pandas.DataFrame`, optional
        Failure records as in `l1db.timing_log.ParsedLog.failures`: counted
        (``failures``) and their time added up (``lost_real``) per visit,
        those of the loop's own work apart (``loop_failures``). A visit with
        failures but no timing record still gets a row.
    latencies : `pandas.DataFrame`, optional
        Latency records of open-loop runs as in
        `l1db.timing_log.ParsedLog.latencies`: `OPEN_LOOP_COLUMNS`.

    Returns
    -------
    table : `pandas.DataFrame`
        Columns `CSV_COLUMNS`, sorted by run and visit; counts (and
        ``complete``, 0 or 1) as nullable Int64, times as float64 seconds (NaN
        where absent).
    """
    failures = failures if failures is not None and not failures.empty else None
    if timings.empty and failures is None:
        return _empty_table()
    parts = []
    if not timings.empty:
        parts.append(_timing_columns(timings, provenance))
    if failures is not None:
        parts.append(_failure_columns(failures))
    table = parts[0] if len(parts) == 1 else parts[0].join(parts[1], how="outer")
    if latencies is not None and not latencies.empty:
        table = table.join(_open_loop_columns(latencies), how="left")
    table = table.sort_index()
    for name, fill in (("n_tiles", 0), ("complete", 0), ("failures", 0), ("lost_real", 0.0), ("loop_failures", 0)):
        if name not in table.columns:
            table[name] = fill
        table[name] = table[name].fillna(fill)
    for name in INT_COLUMNS:
        if name == "visit":
            continue
        if name not in table.columns:
            table[name] = pd.NA
        table[name] = table[name].astype("Int64")
    for name in CSV_COLUMNS:
        if name not in table.columns and name not in ("run", "visit"):
            table[name] = np.nan
    table = table.reset_index()
    table["run"] = table["run"].astype("str")
    table["visit"] = table["visit"].astype("Int64")
    return table.loc[:, list(CSV_COLUMNS)]


def _open_loop_columns(latencies: pd.DataFrame) -> pd.DataFrame:
    """`OPEN_LOOP_COLUMNS` per (run, visit) from latency records (one per completed visit)."""
    frame = latencies.drop_duplicates(["run", "visit"], keep="last").set_index(["run", "visit"])
    return frame.loc[:, list(OPEN_LOOP_COLUMNS)]


def _failure_columns(failures: pd.DataFrame) -> pd.DataFrame:
    """Per (run, visit): ``failures`` and ``lost_real`` of the visit's tiles (a count over tiles, and the largest
    per-tile total), and ``loop_failures``, the loop's own work's."""
    by_visit = ["run", "visit"]
    loop = failures["op"].isin(LOOP_OPERATIONS)
    own = failures.loc[~loop, ["run", "visit", "tile"]].copy()
    own["cost"] = failures.loc[~loop, "lost"] + failures.loc[~loop, "wait"]
    per_tile = own.groupby([*by_visit, "tile"], sort=True)["cost"].sum()
    return pd.DataFrame({
        "failures": own.groupby(by_visit, sort=True).size(),
        "lost_real": per_tile.groupby(level=by_visit, sort=True).max(),
        "loop_failures": failures.loc[loop].groupby(by_visit, sort=True).size(),
    })


def _timing_columns(timings: pd.DataFrame, provenance: Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    """Every column but the failures', indexed by (run, visit)."""
    keys = ["run", "visit", "tile"]
    # The daily job's records: its own operations only (the module docstring). A frame made without the
    # field (by hand, not parsed) has none.
    daily = (timings["daily"].to_numpy(dtype=bool) if "daily" in timings.columns
             else np.zeros(len(timings), dtype=bool))
    kept = ~daily | timings["op"].isin(DAILY_OPERATIONS).to_numpy()
    timings, daily = timings[kept], daily[kept]
    records = timings.loc[:, ["run", "visit", "tile", "op", "real", "rows"]].copy()
    records["cpu"] = timings["user"] + timings["sys"]

    # Step 1: one value per (run, visit, tile, op). min_count keeps "no rows" as NaN.
    grouped = records.groupby([*keys, "op"], sort=False)
    real = grouped["real"].sum().unstack("op")
    cpu = grouped["cpu"].sum().unstack("op")
    rows = grouped["rows"].sum(min_count=1).unstack("op")

    # Step 2: sum_select is a sum of the selects within the tile.
    selects = [op for op in SELECT_OPERATIONS if op in real.columns]
    if selects:
        real["sum_select"] = real[selects].sum(axis=1, min_count=1)
        cpu["sum_select"] = cpu[selects].sum(axis=1, min_count=1)

    # Step 3: over tiles, wall time is the maximum, cpu and counts the sum.
    by_visit = ["run", "visit"]
    real_v = real.groupby(level=by_visit, sort=True).max()
    cpu_v = cpu.groupby(level=by_visit, sort=True).sum(min_count=1)
    rows_v = rows.groupby(level=by_visit, sort=True).sum(min_count=1)
    # The tiles are the visit's own: the daily job before it (tile 0) is none of them.
    own = records[~daily]
    n_tiles = own.groupby(by_visit, sort=True)["tile"].nunique().reindex(real_v.index, fill_value=0)
    finished = own[own["op"] == COMPLETE_OPERATION].groupby(by_visit, sort=True)["tile"].nunique()
    finished = finished.reindex(n_tiles.index, fill_value=0)
    expected = pd.Series(tiles_per_visit(provenance), dtype="float64")
    wanted = expected.reindex(n_tiles.index.get_level_values("run")).to_numpy()
    wanted = np.where(np.isnan(wanted), n_tiles.to_numpy(), wanted)

    table = pd.DataFrame(index=real_v.index)
    table["n_tiles"] = n_tiles.astype("Int64")
    table["complete"] = pd.array(((finished.to_numpy() == n_tiles.to_numpy()) & (finished.to_numpy() > 0)
                                  & (finished.to_numpy() >= wanted)).astype(int), dtype="Int64")
    for name, (ops, _doc) in COUNT_COLUMNS.items():
        present = [op for op in ops if op in rows_v.columns]
        if present:
            table[name] = rows_v[present].sum(axis=1, min_count=1).round().astype("Int64")
        else:
            table[name] = pd.array([pd.NA] * len(table), dtype="Int64")
    for op in CSV_OPERATIONS:
        nan = np.full(len(table), np.nan)
        table[f"{op}_real"] = real_v[op].to_numpy(dtype="float64") if op in real_v.columns else nan
        table[f"{op}_cpu"] = cpu_v[op].to_numpy(dtype="float64") if op in cpu_v.columns else nan
    # A visit with timing records but none of the back-pressure fields waited 0 s.
    pressure = _pressure_columns(timings).reindex(table.index).fillna(0)
    for name in PRESSURE_COLUMNS:
        table[name] = pressure[name].to_numpy()
    return table


def _pressure_columns(timings: pd.DataFrame) -> pd.DataFrame:
    """`PRESSURE_COLUMNS` per (run, visit): per tile a sum; over tiles the largest wait and the summed resends."""
    keys = ["run", "visit", "tile"]
    columns = {}
    for name, (field, ops, _doc) in PRESSURE_COLUMNS.items():
        chosen = timings.loc[timings["op"].isin(ops), keys]
        # A frame made without the field (by hand, not parsed) has no back-pressure.
        chosen[field] = timings[field] if field in timings.columns else 0
        per_tile = chosen.groupby(keys, sort=True)[field].sum()
        over_tiles = per_tile.groupby(level=["run", "visit"], sort=True)
        columns[name] = over_tiles.max() if field == "wait" else over_tiles.sum()
    return pd.DataFrame(columns)


def logs_to_table(paths: Iterable[str | os.PathLike]) -> tuple[pd.DataFrame, ParsedLog]:
    """Parse timing logs and aggregate them with `visit_table`.

    Returns
    -------
    table : `pandas.DataFrame`
        The per-visit table.
    parsed : `l1db.timing_log.ParsedLog`
        Everything parsed (provenance records, malformed count).
    """
    parsed = parse_logs(paths)
    return visit_table(parsed.timings, parsed.provenance, parsed.failures, parsed.latencies), parsed


def write_csv(table: pd.DataFrame, out: str | os.PathLike | TextIO) -> None:
    """Write a per-visit table as CSV (empty fields where absent; times to 1 microsecond)."""
    table.to_csv(out, index=False, float_format="%.6f", na_rep="")


def read_csv(path: str | os.PathLike) -> pd.DataFrame:
    """Read a CSV written by `write_csv`; counts as nullable Int64, times float64.

    Raises
    ------
    ValueError
        If the file is not a log2csv table (pandas parser errors are ValueErrors too).
    """
    dtypes: dict[str, Any] = {"run": "str"}
    dtypes.update({name: "Int64" for name in INT_COLUMNS})
    name = os.fspath(path)
    try:
        header = pd.read_csv(path, nrows=0).columns
        if "run" not in header or "visit" not in header:
            raise ValueError(f"{name}: not a log2csv table (no 'run' and 'visit' columns)")
        table = pd.read_csv(path, dtype={k: v for k, v in dtypes.items() if k in header})
        for column in table.columns:
            if column.endswith(("_real", "_cpu")):
                table[column] = table[column].astype("float64")
    except pd.errors.EmptyDataError:
        raise ValueError(f"{name}: empty file, not a log2csv table") from None
    except UnicodeDecodeError:
        raise ValueError(f"{name}: not a log2csv table (not UTF-8 text)") from None
    except (pd.errors.ParserError, TypeError) as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ValueError(f"{name}: not a log2csv table ({reason})") from None
    except ValueError as exc:
        if str(exc).startswith(name):
            raise
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ValueError(f"{name}: not a log2csv table ({reason})") from None
    return table


def provenance_path(csv_path: str | os.PathLike) -> Path:
    """Path of the provenance sidecar of ``csv_path``."""
    return Path(f"{os.fspath(csv_path)}{PROVENANCE_SUFFIX}")


def write_provenance(
    path: str | os.PathLike, provenance: Sequence[Mapping[str, Any]], logs: Sequence[str] = (),
    behind: Sequence[Mapping[str, Any]] = (),
) -> None:
    """Write the sidecar: ``{"runs": [provenance records...], "logs": [paths]}``.

    With ``behind`` (the logs' ``behind`` records: open-loop runs that fell
    behind, which a per-visit row cannot say) also ``"behind": [records]``.
    """
    content: dict[str, Any] = {"runs": list(provenance), "logs": [os.fspath(p) for p in logs]}
    if behind:
        content["behind"] = list(behind)
    Path(path).write_text(json.dumps(content, indent=1, default=str) + "\n", encoding="utf-8")


def read_provenance(csv_path: str | os.PathLike) -> list[dict[str, Any]]:
    """Provenance records from the sidecar of ``csv_path``; empty if it has none or it is unreadable."""
    path = provenance_path(csv_path)
    try:
        content = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return []
    except (OSError, ValueError) as exc:
        _LOG.warning("ignoring unreadable provenance sidecar %s: %s", path, exc)
        return []
    runs = content.get("runs") if isinstance(content, dict) else None
    return [r for r in runs if isinstance(r, dict)] if isinstance(runs, list) else []


def read_behind(csv_path: str | os.PathLike) -> list[dict[str, Any]]:
    """The ``behind`` records kept in the sidecar of ``csv_path`` (`write_provenance`); empty if none."""
    try:
        content = json.loads(provenance_path(csv_path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    behind = content.get("behind") if isinstance(content, dict) else None
    return [r for r in behind if isinstance(r, dict)] if isinstance(behind, list) else []


def _find(record: Mapping[str, Any], *names: str) -> Any:
    """First of ``names`` at the top of ``record`` or in any section of its config."""
    config = record.get("config")
    sections = [record] + ([s for s in config.values() if isinstance(s, Mapping)]
                           if isinstance(config, Mapping) else [])
    for name in names:
        for section in sections:
            if section.get(name) not in (None, ""):
                return section[name]
    return None


def run_description(provenance: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """What a human needs to tell runs apart: backend, strategy and density.

    Parameters
    ----------
    provenance : sequence of mappings
        Provenance records (of one or more runs; the first one that knows a
        value wins).

    Returns
    -------
    description : `dict`
        ``backend`` (e.g. ``"postgresql"``), ``strategy`` (``dia_object_index``,
        with ``+nightly`` / ``+upsert`` when those options are on), ``density``
        (sources per visit) and ``label`` (the three joined, for legends and
        titles); values are `None` (and left out of ``label``) when unknown.
    """
    out: dict[str, Any] = {"backend": None, "strategy": None, "density": None}
    for record in provenance:
        if out["backend"] is None:
            out["backend"] = _find(record, "backend")
        if out["strategy"] is None:
            index = _find(record, "dia_object_index")
            if index is not None:
                strategy = str(index)
                if str(_find(record, "dia_object_nightly")) in ("1", "True"):
                    strategy += "+nightly"
                if str(_find(record, "object_last_replace")) in ("1", "True"):
                    strategy += "+upsert"
                out["strategy"] = strategy
        if out["density"] is None:
            out["density"] = _find(record, "density", "per_visit", "sources_per_visit")
    parts = [str(out["backend"]) if out["backend"] else None, out["strategy"]]
    if out["density"] is not None:
        density = out["density"]
        parts.append(f"{density:.0f} sources/visit" if isinstance(density, (int, float))
                     else f"{density} sources/visit")
    out["label"] = ", ".join(p for p in parts if p)
    return out
