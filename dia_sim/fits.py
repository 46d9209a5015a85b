"""Fits of per-visit times (log2csv tables): history depth, the plateau, and a survey-year projection.

History depth. A visit's simulated time follows from its number and the
run's cadence (`dia_sim.schedule`, the ``interval`` and
``days_between_nights`` of the provenance record), so each row of a
per-visit table has the months of history the database held at that visit
(`history_months`) and the visit at which the history window was full
(`window_fill_visit`). `slopes_before_after` fits each operation's time
against the visit number on each side of it: after it, the reads of a
steady-state run stop growing (a plateau) unless the database's size
itself slows them down.

Projection (what a user needs to plan a cluster). `fit_operations` fits
each operation's time against the visit number (``a + b * visit``) and,
where the operation has a row count, against its rows (``a + c * rows``).
`project` then gives the per-visit time at a survey visit number (one
year: 288,000 visits at 800 a night):

- a read (``*_select``) at the rows it would read then (``rows_at``: by
  default the run's rows extrapolated linearly to that visit; for a
  time-compressed run, `survey_rows` scales the plateau's rows to the
  survey's history depth), through its fit against rows;
- every other operation (stores, simulation) as it takes at the end of the
  run (``growth="none"``: no growth with the tables' size), or through its
  fit against the visit number (``growth="linear"``, an upper bound);
- a fitted line that falls (noise around a flat series) projects its mean
  instead, and nothing projects below zero;
- on a cluster of N nodes, under the stated assumption that reads scale as
  1/N (DMTN-184 found close to that from 3 to 12 nodes) and stores and the
  simulation do not change.

Example::

    fits = fit_operations(table)
    frame = project(fits, visits=288_000, nodes=(1, 3, 6, 12))
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from l1db.constants import MONTH_DAYS

from .schedule import parse_time, visit_mjd

__all__ = [
    "READ_OPERATIONS",
    "PROJECTED_OPERATIONS",
    "ROW_COLUMNS",
    "SURVEY_YEAR_VISITS",
    "MIN_PROJECTION_VISITS",
    "LineFit",
    "OperationFit",
    "cadence_of",
    "history_months",
    "window_fill_visit",
    "line_fit",
    "check_projectable",
    "numeric_column",
    "slopes_before_after",
    "fit_operations",
    "survey_rows",
    "project",
    "SURVEY_OBSERVATIONS_PER_YEAR",
    "compression_of",
    "project_run",
    "GROWTH",
]

#: One survey year: 800 visits a night, 360 nights.
SURVEY_YEAR_VISITS = 288_000
#: Fewest complete visits a run must hold to be projected (`project_run`): a line through a handful of
#: visits, extrapolated a thousandfold, says nothing (and its uncertainty cannot even be estimated below 3).
MIN_PROJECTION_VISITS = 20
#: The reads: they scale with the nodes of a cluster in `project`.
READ_OPERATIONS: tuple[str, ...] = ("obj_select", "src_select", "fsrc_select")
#: The operations whose sum is a visit's projected time (reads, the whole store, the simulation).
PROJECTED_OPERATIONS: tuple[str, ...] = (*READ_OPERATIONS, "store", "sim")
#: The row-count column an operation's time is fitted against.
ROW_COLUMNS: dict[str, str] = {
    "obj_select": "obj_read",
    "src_select": "src_read",
    "fsrc_select": "fsrc_read",
    "obj_insert": "obj_stored",
    "src_insert": "src_stored",
    "fsrc_insert": "fsrc_stored",
}


def _run_config(provenance: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """``[ap_proto]`` and ``[l1db]`` options of the first provenance record that has them."""
    for record in provenance:
        config = record.get("config")
        if isinstance(config, Mapping) and isinstance(config.get("ap_proto"), Mapping):
            return {**dict(config.get("l1db") or {}), **dict(config["ap_proto"])}
    return {}


def cadence_of(provenance: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The run's schedule and history window from its provenance (defaults for what is missing).

    Returns
    -------
    cadence : `dict`
        ``interval`` (s), ``days_between_nights``, ``start_mjd`` and
        ``window_days`` (the longer history window).
    """
    config = _run_config(provenance)
    months = max(int(config.get("read_sources_months", 12)), int(config.get("read_forced_sources_months", 12)))
    return {
        "interval": float(config.get("interval", 45.0)),
        "days_between_nights": int(config.get("days_between_nights", 1)),
        "start_mjd": float(parse_time(config.get("start_time", "2026-01-01T20:00:00")).mjd),
        "window_days": months * MONTH_DAYS,
    }


def history_months(visits: np.ndarray | Sequence[int], provenance: Sequence[Mapping[str, Any]] = ()) -> np.ndarray:
    """Months (30 days) of history in the database at each visit: time since the first visit.

    The first visit of ``visits`` is taken as the database's first (a table
    of a whole run, or of a run and its resumptions).
    """
    visits = np.asarray(visits, dtype=np.int64)
    if visits.size == 0:
        return np.empty(0)
    cadence = cadence_of(provenance)
    mjd = visit_mjd(cadence["start_mjd"], visits - visits.min(), cadence["interval"],
                    night_step=cadence["days_between_nights"])
    return (np.atleast_1d(mjd) - cadence["start_mjd"]) / MONTH_DAYS


def window_fill_visit(visits: np.ndarray | Sequence[int], provenance: Sequence[Mapping[str, Any]] = ()) -> float:
    """The first visit at which the history window is full; NaN if the run never gets there."""
    visits = np.sort(np.asarray(visits, dtype=np.int64))
    months = history_months(visits, provenance)
    full = np.nonzero(months * MONTH_DAYS >= cadence_of(provenance)["window_days"])[0]
    return float(visits[full[0]]) if full.size else math.nan


@dataclasses.dataclass(frozen=True)
class LineFit:
    """A least-squares line ``y = intercept + slope * x`` and the points it was fitted to."""

    intercept: float
    slope: float
    n: int
    r2: float
    x_min: float
    x_max: float
    y_mean: float
    #: Mean of x, sum of squared deviations of x, and the residuals' standard deviation (n - 2 degrees of
    #: freedom; NaN for 2 points): what `stderr` needs.
    x_mean: float = math.nan
    sxx: float = math.nan
    residual_std: float = math.nan

    def __call__(self, x: float | np.ndarray) -> float | np.ndarray:
        return self.intercept + self.slope * x

    def extrapolate(self, x: float) -> float:
        """The line at ``x``; a line falling with x (noise in a flat series) gives the mean instead, never < 0."""
        return max(float(self(x)) if self.slope >= 0 else self.y_mean, 0.0)

    def stderr(self, x: float) -> float:
        """Standard error of `extrapolate` at ``x`` (of the fitted line there; of the mean for a falling line)."""
        if self.slope < 0:
            return self.residual_std / math.sqrt(self.n)
        return self.residual_std * math.sqrt(1.0 / self.n + (x - self.x_mean) ** 2 / self.sxx)


def line_fit(x: np.ndarray, y: np.ndarray) -> LineFit | None:
    """Least-squares line through the finite points; None with fewer than 2 distinct x."""
    x = np.asarray(x, dtype="float64")
    y = np.asarray(y, dtype="float64")
    keep = np.isfinite(x) & np.isfinite(y)
    x, y = x[keep], y[keep]
    if np.unique(x).size < 2:
        return None
    slope, intercept = np.polyfit(x, y, 1)
    residual = y - (intercept + slope * x)
    total = float(((y - y.mean()) ** 2).sum())
    r2 = 1.0 - float((residual**2).sum()) / total if total > 0 else 1.0
    residual_std = math.sqrt(float((residual**2).sum()) / (x.size - 2)) if x.size > 2 else math.nan
    return LineFit(float(intercept), float(slope), int(x.size), r2, float(x.min()), float(x.max()), float(y.mean()),
                   float(x.mean()), float(((x - x.mean()) ** 2).sum()), residual_std)


def numeric_column(table: pd.DataFrame, name: str) -> np.ndarray:
    """Column ``name`` as float64 (NaN where empty or absent)."""
    if name not in table.columns:
        return np.full(len(table), np.nan)
    return pd.to_numeric(table[name], errors="coerce").to_numpy(dtype="float64", na_value=np.nan)


def slopes_before_after(table: pd.DataFrame, ops: Iterable[str], fill_visit: float,
                        metric: str = "real") -> dict[str, tuple[float, float]]:
    """Slope (seconds per visit) of each operation's time against the visit number, before and after ``fill_visit``.

    A side with fewer than two visits gives NaN.
    """
    visits = numeric_column(table, "visit")
    out = {}
    for op in ops:
        values = numeric_column(table, f"{op}_{metric}")
        before = line_fit(visits[visits < fill_visit], values[visits < fill_visit])
        after = line_fit(visits[visits >= fill_visit], values[visits >= fill_visit])
        out[op] = (before.slope if before else math.nan, after.slope if after else math.nan)
    return out


@dataclasses.dataclass(frozen=True)
class OperationFit:
    """An operation's time fitted against the visit number and against its rows."""

    op: str
    by_visit: LineFit | None
    rows_column: str | None = None
    by_rows: LineFit | None = None
    #: The rows against the visit number (to extrapolate them).
    rows_by_visit: LineFit | None = None
    #: Median time over the last third of the run's visits (the time it takes now).
    recent: float = math.nan
    #: Standard error of `recent` (1.2533 sigma / sqrt(n) of a median).
    recent_stderr: float = math.nan


def fit_operations(table: pd.DataFrame, ops: Sequence[str] = PROJECTED_OPERATIONS,
                   metric: str = "real") -> dict[str, OperationFit]:
    """`OperationFit` of each of ``ops`` present in ``table`` (a log2csv per-visit table)."""
    visits = numeric_column(table, "visit")
    fits = {}
    for op in ops:
        values = numeric_column(table, f"{op}_{metric}")
        if not np.isfinite(values).any():
            continue
        column = ROW_COLUMNS.get(op)
        rows = numeric_column(table, column) if column else None
        known = np.isfinite(visits) & np.isfinite(values)
        late = known & (visits >= np.nanmin(visits) + 2 * (np.nanmax(visits) - np.nanmin(visits)) / 3)
        fits[op] = OperationFit(
            op, line_fit(visits, values), column,
            line_fit(rows, values) if rows is not None else None,
            line_fit(visits, rows) if rows is not None else None,
            float(np.median(values[late])) if late.any() else math.nan,
            1.2533 * float(np.std(values[late], ddof=1)) / math.sqrt(late.sum()) if late.sum() > 1 else math.nan,
        )
    return fits


def survey_rows(table: pd.DataFrame, fill_visit: float, scale: float = 1.0) -> dict[str, float]:
    """Rows each read reads once the window is full: the median after ``fill_visit``, times ``scale``.

    ``scale`` turns a time-compressed run's history depth into the survey's:
    the survey's observations per point per year over the run's (80 / K).
    """
    visits = numeric_column(table, "visit")
    out = {}
    for op in READ_OPERATIONS:
        rows = numeric_column(table, ROW_COLUMNS[op])[visits >= fill_visit]
        rows = rows[np.isfinite(rows)]
        if rows.size:
            out[ROW_COLUMNS[op]] = float(np.median(rows)) * scale
    return out


#: How `project` carries the operations without rows (stores, simulation) to the projected visit.
GROWTH = ("none", "linear")


def project(fits: Mapping[str, OperationFit], visits: int = SURVEY_YEAR_VISITS,
            rows_at: Mapping[str, float] | None = None, nodes: Sequence[int] = (1,),
            growth: str = "none") -> pd.DataFrame:
    """Projected per-visit time of each operation at visit ``visits``, on clusters of ``nodes`` nodes.

    Parameters
    ----------
    fits : mapping
        `fit_operations` output.
    visits : `int`
        The visit number to project to.
    rows_at : mapping, optional
        Rows each read reads at that visit (by row column, e.g. ``src_read``);
        default: its rows against the visit number, extrapolated.
    nodes : sequence of `int`
        Cluster sizes. Reads scale as 1/N (the assumption), the rest does not.
    growth : ``"none"`` or ``"linear"``
        The operations without rows to fit against (stores, simulation), and
        reads whose rows never changed: ``none`` = as they take at the end of
        the run (median of its last third: no growth with the tables' size);
        ``linear`` = their fit against the visit number extrapolated (an upper
        bound: a slope measured over a few hundred visits, on a loaded machine,
        multiplied a thousandfold).

    Returns
    -------
    frame : `pandas.DataFrame`
        One row per operation and a ``visit`` row (their sum), columns
        ``op``, ``rows``, ``fit`` (``rows``, ``end of run`` or ``visit``),
        ``stderr`` (the standard error of the fit's seconds on one node, from
        the scatter of the run's visits about the fit; the visit's: of the
        sum, the operations taken as independent) and ``N=<n>`` (seconds).
    """
    if growth not in GROWTH:
        raise ValueError(f"growth must be one of {GROWTH}, not {growth!r}")
    rows_at = dict(rows_at or {})
    records = []
    for op, fit in fits.items():
        if op not in PROJECTED_OPERATIONS:
            continue
        rows, how, seconds, stderr = math.nan, "end of run", fit.recent, fit.recent_stderr
        if op in READ_OPERATIONS:
            rows = rows_at.get(fit.rows_column, math.nan) if fit.rows_column is not None else math.nan
            if not math.isfinite(rows) and fit.rows_by_visit is not None:
                rows = fit.rows_by_visit.extrapolate(visits)
        if math.isfinite(rows) and fit.by_rows is not None:
            seconds, how, stderr = fit.by_rows.extrapolate(rows), "rows", fit.by_rows.stderr(rows)
        elif growth == "linear" and fit.by_visit is not None:  # no rows, or rows that never changed
            seconds, how, stderr = fit.by_visit.extrapolate(visits), "visit", fit.by_visit.stderr(visits)
        scale = [1.0 / n if op in READ_OPERATIONS else 1.0 for n in nodes]
        records.append({"op": op, "rows": rows, "fit": how, "stderr": stderr,
                        **{f"N={n}": seconds * s for n, s in zip(nodes, scale)}})
    frame = pd.DataFrame(records, columns=["op", "rows", "fit", "stderr", *[f"N={n}" for n in nodes]])
    total = {"op": "visit", "rows": math.nan, "fit": "sum", "stderr": math.sqrt(float((frame["stderr"] ** 2).sum())),
             **{f"N={n}": frame[f"N={n}"].sum() for n in nodes}}
    return pd.concat([frame, pd.DataFrame([total])], ignore_index=True)


#: Observations of a point per year in the survey (~80 DiaSources of a persistent variable in a 12-month window).
SURVEY_OBSERVATIONS_PER_YEAR = 80.0


def compression_of(provenance: Sequence[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    """The ``time_compression`` entry of the run's provenance, None for an uncompressed run."""
    for record in provenance:
        if isinstance(record.get("time_compression"), Mapping):
            return record["time_compression"]
    return None


def check_projectable(table: pd.DataFrame, name: str = "the run") -> None:
    """Refuse (`ValueError`, one line) a run of fewer than `MIN_PROJECTION_VISITS` visits to project."""
    visits = np.unique(numeric_column(table, "visit")[np.isfinite(numeric_column(table, "visit"))]).size
    if visits < MIN_PROJECTION_VISITS:
        raise ValueError(f"{name} has {visits} complete visit(s); a projection needs at least "
                         f"{MIN_PROJECTION_VISITS} (a line through fewer, extrapolated to thousands of visits, "
                         f"says nothing)")


def project_run(table: pd.DataFrame, provenance: Sequence[Mapping[str, Any]] = (), *,
                visits: int = SURVEY_YEAR_VISITS, nodes: Sequence[int] = (1,),
                survey_per_year: float = SURVEY_OBSERVATIONS_PER_YEAR,
                growth: str = "none") -> tuple[pd.DataFrame, str]:
    """`project` a run to visit ``visits``, with the rows its reads would read then.

    A time-compressed run whose window filled reads, at one survey year, its
    plateau's rows scaled from its observations per year to the survey's
    (``survey_per_year``); any other run, its rows extrapolated linearly
    against the visit number.

    Returns
    -------
    projection : `pandas.DataFrame`
        `project` output.
    how : `str`
        One line saying where the projected rows came from.

    Raises
    ------
    ValueError
        If the run has fewer than `MIN_PROJECTION_VISITS` visits.
    """
    check_projectable(table)
    fits = fit_operations(table)
    compression = compression_of(provenance)
    fill = window_fill_visit(numeric_column(table, "visit").astype(np.int64), provenance) if len(table) else math.nan
    rows_at = None
    how = "rows read extrapolated linearly against the visit number"
    if compression is not None and math.isfinite(fill):
        k = float(compression.get("achieved_per_year") or compression["observations_per_year"])
        rows_at = survey_rows(table, fill, survey_per_year / k)
        how = (f"rows read: the plateau's (visits >= {fill:.0f}, window full) x {survey_per_year:g} / {k:.3g} "
               f"observations per point per year")
    how += "; store and simulation " + ("extrapolated linearly against the visit number" if growth == "linear"
                                        else "as at the end of the run")
    return project(fits, visits, rows_at, nodes, growth), how
