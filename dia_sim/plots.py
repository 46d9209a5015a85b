"""Plots of per-visit timing tables (the CSV written by log2csv).

Every function returns a `matplotlib.figure.Figure` built without pyplot, so
nothing here touches the global backend: the figures render with Agg when
saved (``fig.savefig``) and display inline in a notebook.

Time per visit is drawn against the visit number: the per-visit values as a
scatter underneath, a box-and-whisker per bin of visits (box: quartiles,
whiskers: 1.5 IQR, outliers left to the scatter) with the bin mean marked,
and a least-squares line whose slope (seconds per 1,000 visits) is in the
legend. All rows of one table form one series: a resumed run (a new run id)
continues the visit numbers of the run before it.

Incomplete rows (``complete`` = 0: a visit abandoned by a kill or a failure,
whose partial times would show as low outliers) are left out of the plots
and the fits by default (`complete_rows`); the titles say how many.
"""

from __future__ import annotations

import math
import os
import re
import textwrap
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.typing import RcKeyType

from .fits import (
    READ_OPERATIONS,
    ROW_COLUMNS,
    SURVEY_OBSERVATIONS_PER_YEAR,
    SURVEY_YEAR_VISITS,
    check_projectable,
    history_months,
    line_fit,
    numeric_column,
    project_run,
    slopes_before_after,
    window_fill_visit,
)
from .log2csv import read_csv, read_provenance, run_description
from .open_loop import in_flight_steps, table_latencies

__all__ = [
    "SELECT_PANELS",
    "STORE_PANELS",
    "DEFAULT_THRESHOLD",
    "choose_bin_size",
    "store_panels",
    "plot_operations",
    "plot_selects",
    "plot_stores",
    "plot_slow_fraction",
    "plot_compare",
    "panel_title",
    "complete_rows",
    "load_run",
    "run_figures",
    "write_plots",
    "describe_figures",
    "HISTORY_PANELS",
    "SCALING_ASSUMPTION",
    "plot_history",
    "plot_projection",
    "write_history_plots",
    "write_projection_plots",
]

#: Panels of the selects figure, in order.
SELECT_PANELS: tuple[str, ...] = ("obj_select", "src_select", "fsrc_select", "sum_select")

#: Candidate panels of the stores figure; `store_panels` picks those present.
STORE_PANELS: tuple[str, ...] = (
    "obj_insert", "obj_nightly_insert", "obj_validity_update", "obj_last_delete", "obj_last_insert",
    "obj_last_upsert", "src_insert", "fsrc_insert", "store",
)

#: Default threshold (seconds of ``visit_real``) of `plot_slow_fraction`.
DEFAULT_THRESHOLD = 10.0

_PANEL_TITLES = {
    "obj_select": "DiaObject select",
    "src_select": "DiaSource select",
    "fsrc_select": "DiaForcedSource select",
    "sum_select": "sum of the three selects",
    "obj_insert": "DiaObject insert",
    "obj_nightly_insert": "DiaObjectNightly insert",
    "obj_validity_update": "DiaObject validity update",
    "obj_last_delete": "DiaObjectLast delete",
    "obj_last_insert": "DiaObjectLast insert",
    "obj_last_upsert": "DiaObjectLast upsert",
    "src_insert": "DiaSource insert",
    "fsrc_insert": "DiaForcedSource insert",
    "store": "whole store",
    "visit": "whole visit",
}

#: What the whole store is, by the run's backend (its provenance's ``backend``): every backend but
#: Cassandra is SQL, whose store is one transaction (`l1db.cassandra.writes` says what Cassandra's is).
_STORE_TITLES = {"cassandra": "whole store (idempotent writes, no transaction)"}
_SQL_STORE_TITLE = "whole store (one transaction)"

_METRIC_LABELS = {"real": "wall time per visit (s)", "cpu": "cpu time per visit, user + sys (s)"}

# -- back-pressure --
#: Panel -> the log2csv column of the wall time its operation waited on the database's back-pressure,
#: drawn over the panel's wall time as the per-bin mean (where any visit waited).
WAIT_COLUMNS = {"sum_select": "select_wait", "store": "store_wait"}
_WAIT_COLOR = "#dd8452"
#: Legend of the wait line.
WAIT_LABEL = "of which waiting on back-pressure (bin mean)"
# -- end of back-pressure --

_STYLE: dict[RcKeyType, Any] = {
    "font.size": 11,
    "axes.titlesize": 12,
    "axes.labelsize": 11,
    "legend.fontsize": 9,
    "figure.titlesize": 13,
    "figure.dpi": 100,
    "savefig.dpi": 100,
}

_BOX_COLOR = "#4c72b0"
_MEAN_COLOR = "#c44e52"
_FIT_COLOR = "#222222"


def choose_bin_size(visits: Sequence[int] | np.ndarray, target_bins: int = 20) -> int:
    """Bin size (visits) giving about ``target_bins`` bins: 1, 2 or 5 times a power of ten.

    Parameters
    ----------
    visits : array-like of int
        Visit numbers (NaN-free).
    target_bins : `int`
        Wanted number of bins (at least this many when the run allows it).
    """
    visits = np.asarray(visits, dtype="float64")
    if visits.size == 0:
        return 1
    span = float(visits.max() - visits.min() + 1)
    raw = span / max(int(target_bins), 1)
    if raw <= 1:
        return 1
    power = 10 ** math.floor(math.log10(raw))
    for step in (1, 2, 5, 10):
        if step * power >= raw:
            return int(step * power)
    return int(10 * power)


def store_panels(table: pd.DataFrame) -> list[str]:
    """Store operations to draw for ``table``: inserts, store, and the DiaObject ones present."""
    def present(op: str) -> bool:
        column = f"{op}_real"
        return column in table.columns and bool(table[column].notna().any())

    always = {"src_insert", "fsrc_insert", "store"}
    panels = [op for op in STORE_PANELS if op in always or present(op)]
    if not any(op.startswith("obj_") for op in panels):
        panels.insert(0, "obj_insert")
    return panels


def _series(table: pd.DataFrame, column: str) -> tuple[np.ndarray, np.ndarray]:
    """Visits and values of ``column`` where both are known."""
    if column not in table.columns or "visit" not in table.columns:
        return np.empty(0), np.empty(0)
    visits = pd.to_numeric(table["visit"], errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
    values = pd.to_numeric(table[column], errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
    keep = np.isfinite(visits) & np.isfinite(values)
    return visits[keep], values[keep]


def _visits(table: pd.DataFrame) -> np.ndarray:
    """Every known visit number of ``table``."""
    if "visit" not in table.columns:
        return np.empty(0)
    return pd.to_numeric(table["visit"], errors="coerce").dropna().to_numpy(dtype="float64")


def _bin_index(visits: np.ndarray, origin: float, bin_size: int) -> np.ndarray:
    return np.floor((visits - origin) / bin_size).astype(np.int64)


def _group(index: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
    """Distinct bin indices and the values in each (one sort, not one scan per bin)."""
    order = np.argsort(index, kind="stable")
    bins, starts = np.unique(index[order], return_index=True)
    return bins, np.split(values[order], starts[1:])


def _bin_centre(index: np.ndarray | int, origin: float, bin_size: int) -> np.ndarray | float:
    return origin + (np.asarray(index) + 0.5) * bin_size - 0.5


#: Top of a binned panel's y axis over its highest point: the legend's four lines fit above the data.
_LEGEND_HEADROOM = 1.45


def _draw_binned(ax: Any, visits: np.ndarray, values: np.ndarray, bin_size: int, origin: float) -> None:
    """Scatter, per-bin boxes with means, least-squares line; legend with the slope."""
    if values.size == 0:
        ax.text(0.5, 0.5, "no records", transform=ax.transAxes, ha="center", va="center", color="grey")
        return
    ax.scatter(visits, values, s=6, color="#8c8c8c", alpha=0.45, linewidths=0, zorder=1)
    bins, groups = _group(_bin_index(visits, origin, bin_size), values)
    ax.boxplot(
        groups, positions=_bin_centre(bins, origin, bin_size), widths=0.7 * bin_size,
        showmeans=True, showfliers=False, manage_ticks=False, patch_artist=True,
        boxprops={"facecolor": "#c6d4ea", "edgecolor": _BOX_COLOR, "alpha": 0.8},
        medianprops={"color": _BOX_COLOR, "linewidth": 1.5},
        whiskerprops={"color": _BOX_COLOR}, capprops={"color": _BOX_COLOR},
        meanprops={"marker": "D", "markerfacecolor": _MEAN_COLOR, "markeredgecolor": _MEAN_COLOR,
                   "markersize": 4},
        zorder=2,
    )
    handles = [
        Line2D([], [], marker="o", linestyle="", color="#8c8c8c", markersize=4, label="each visit"),
        Line2D([], [], marker="s", linestyle="", markerfacecolor="#c6d4ea", markeredgecolor=_BOX_COLOR,
               markersize=8, label=f"quartiles per {bin_size:,} visits"),
        Line2D([], [], marker="D", linestyle="", color=_MEAN_COLOR, markersize=5, label="bin mean"),
    ]
    if np.unique(visits).size >= 2:
        slope, intercept = np.polyfit(visits, values, 1)
        xs = np.array([visits.min(), visits.max()])
        (fit,) = ax.plot(xs, intercept + slope * xs, color=_FIT_COLOR, linewidth=1.5, zorder=3,
                         label=f"least squares: {slope * 1000:+.3g} s per 1,000 visits")
        handles.append(fit)
    # A fixed corner, kept clear by headroom above the highest point: loc="best" tests every
    # point and box of the panel at each candidate place (15 % of a report's CPU, measured).
    top = float(np.nanmax(values))
    ax.set_ylim(0, top * _LEGEND_HEADROOM if top > 0 else 1.0)
    ax.legend(handles=handles, loc="upper left", framealpha=0.9)


def _draw_wait(ax: Any, table: pd.DataFrame, column: str, bin_size: int, origin: float) -> None:
    """The per-bin mean of ``column`` (seconds waited on back-pressure) as a line, if any visit waited."""
    visits, waits = _series(table, column)
    if not (waits > 0).any():
        return
    bins, groups = _group(_bin_index(visits, origin, bin_size), waits)
    (line,) = ax.plot(_bin_centre(bins, origin, bin_size), [float(g.mean()) for g in groups], color=_WAIT_COLOR,
                      marker="v", markersize=4, linewidth=1.2, zorder=4, label=WAIT_LABEL)
    legend = ax.get_legend()
    handles = list(legend.legend_handles) if legend is not None else []
    ax.legend(handles=[*handles, line], loc="best", framealpha=0.9)


def _grid(n: int, ncols: int) -> tuple[int, int]:
    ncols = max(1, min(ncols, n))
    return math.ceil(n / ncols), ncols


def _title(what: str, label: str | None) -> str:
    return f"{what} — {label}" if label else what


def panel_title(op: str, backend: str | None = None) -> str:
    """A panel's title: the operation and what it is; the whole store's says what ``backend`` does.

    ``backend`` is the run's backend as its provenance records it (``sqlite``,
    ``postgresql``, ``cassandra``, ...; `dia_sim.log2csv.run_description`),
    `None` when unknown or when the panel mixes backends.
    """
    what = _PANEL_TITLES.get(op, op)
    if op == "store" and backend:
        what = _STORE_TITLES.get(str(backend).lower(), _SQL_STORE_TITLE)
    return f"{op}: {what}"


def _common_backend(backends: Sequence[str | None]) -> str | None:
    """A backend whose whole store is what every one of ``backends`` does; `None` if they differ or one is unknown."""
    if not backends or not all(backends):
        return None
    titles = {panel_title("store", backend) for backend in backends}
    return backends[0] if len(titles) == 1 else None


def plot_operations(
    table: pd.DataFrame,
    ops: Sequence[str],
    *,
    metric: str = "real",
    bin_size: int | None = None,
    title: str | None = None,
    ncols: int = 2,
    backend: str | None = None,
) -> Figure:
    """One panel per operation: its time per visit against the visit number.

    Parameters
    ----------
    table : `pandas.DataFrame`
        Per-visit table (log2csv CSV, see `dia_sim.log2csv.read_csv`).
    ops : sequence of `str`
        Operations to draw, one panel each (``<op>_<metric>`` columns; a
        missing column gives a panel saying "no records").
    metric : ``"real"`` or ``"cpu"``
        Wall time or cpu (user + sys) time.
    bin_size : `int`, optional
        Visits per box; default from `choose_bin_size` (about 20 bins).
    title : `str`, optional
        Figure title.
    ncols : `int`
        Panels per row.
    backend : `str`, optional
        The run's backend (its provenance's), for the whole store's title (`panel_title`).

    Returns
    -------
    figure : `matplotlib.figure.Figure`
        With exactly ``len(ops)`` axes.
    """
    if metric not in _METRIC_LABELS:
        raise ValueError(f"metric must be one of {sorted(_METRIC_LABELS)}, not {metric!r}")
    if not ops:
        raise ValueError("no operation to plot")
    visits_all = _visits(table)
    size = int(bin_size) if bin_size else choose_bin_size(visits_all)
    origin = float(visits_all.min()) if visits_all.size else 0.0
    nrows, ncols = _grid(len(ops), ncols)
    with matplotlib.rc_context(_STYLE):
        fig = Figure(figsize=(6.4 * ncols, 4.3 * nrows), layout="constrained")
        axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
        for ax, op in zip(axes, ops):
            visits, values = _series(table, f"{op}_{metric}")
            _draw_binned(ax, visits, values, size, origin)
            if metric == "real" and op in WAIT_COLUMNS:
                _draw_wait(ax, table, WAIT_COLUMNS[op], size, origin)
            ax.set_title(panel_title(op, backend))
            ax.set_xlabel("visit number")
            ax.set_ylabel(_METRIC_LABELS[metric])
            ax.grid(True, alpha=0.3)
        for ax in axes[len(ops):]:
            fig.delaxes(ax)
        if title:
            fig.suptitle(title)
    return fig


def plot_selects(table: pd.DataFrame, *, label: str | None = None, **kwargs: Any) -> Figure:
    """`plot_operations` for the three selects and their sum (4 axes)."""
    return plot_operations(table, SELECT_PANELS, title=_title("Select time per visit", label), **kwargs)


def plot_stores(table: pd.DataFrame, *, label: str | None = None, **kwargs: Any) -> Figure:
    """`plot_operations` for the store operations present (`store_panels`); give ``backend`` for the store's title."""
    return plot_operations(table, store_panels(table), title=_title("Store time per visit", label), **kwargs)


def plot_slow_fraction(
    table: pd.DataFrame,
    threshold: float = DEFAULT_THRESHOLD,
    *,
    bin_size: int | None = None,
    label: str | None = None,
) -> Figure:
    """Fraction of visits per bin whose whole-visit wall time (``visit_real``) exceeds ``threshold``.

    Returns
    -------
    figure : `matplotlib.figure.Figure`
        With one axes.
    """
    visits, values = _series(table, "visit_real")
    size = int(bin_size) if bin_size else choose_bin_size(visits)
    with matplotlib.rc_context(_STYLE):
        fig = Figure(figsize=(9.6, 4.8), layout="constrained")
        ax = fig.subplots()
        if values.size:
            origin = float(visits.min())
            bins, groups = _group(_bin_index(visits, origin, size), values)
            counts = np.array([g.size for g in groups])
            slow = np.array([np.count_nonzero(g > threshold) for g in groups])
            total = np.count_nonzero(values > threshold)
            ax.bar(_bin_centre(bins, origin, size), slow / counts, width=0.85 * size, color=_BOX_COLOR,
                   label=f"{total:,} of {values.size:,} visits ({total / values.size:.1%}) over {threshold:g} s")
            ax.legend(loc="upper left")
        else:
            ax.text(0.5, 0.5, "no visit_real records", transform=ax.transAxes, ha="center", va="center",
                    color="grey")
        ax.set_ylim(0, 1.2)  # Headroom for the legend above full bins.
        ax.set_xlabel("visit number")
        ax.set_ylabel(f"fraction of visits > {threshold:g} s")
        what = f"Fraction of visits slower than {threshold:g} s, bins of {size:,} visits"
        ax.set_title(f"{what}\n{label}" if label else what)
        ax.grid(True, axis="y", alpha=0.3)
    return fig


def plot_compare(
    tables: Sequence[pd.DataFrame],
    labels: Sequence[str],
    *,
    ops: Sequence[str] = ("sum_select", "store"),
    metric: str = "real",
    bin_size: int | None = None,
    backends: Sequence[str | None] | None = None,
) -> Figure:
    """Several runs overlaid: per-bin mean time of each of ``ops``, one line per table.

    Parameters
    ----------
    tables : sequence of `pandas.DataFrame`
        Per-visit tables (one per run, strategy or backend).
    labels : sequence of `str`
        Legend label of each table.
    ops : sequence of `str`
        One panel per operation.
    metric : ``"real"`` or ``"cpu"``
        Wall or cpu time.
    bin_size : `int`, optional
        Visits per bin, the same for all tables; default from the longest run.
    backends : sequence of `str`, optional
        Each table's backend (its provenance's): the whole store's title says
        what it is when every run has the same one (`panel_title`).

    Returns
    -------
    figure : `matplotlib.figure.Figure`
        With ``len(ops)`` axes.
    """
    if len(tables) != len(labels):
        raise ValueError(f"{len(tables)} tables but {len(labels)} labels")
    if metric not in _METRIC_LABELS:
        raise ValueError(f"metric must be one of {sorted(_METRIC_LABELS)}, not {metric!r}")
    spans = [_visits(t) for t in tables]
    if bin_size:
        size = int(bin_size)
    else:
        size = max((choose_bin_size(v) for v in spans if v.size), default=1)
    with matplotlib.rc_context(_STYLE):
        fig = Figure(figsize=(6.4 * len(ops), 4.6), layout="constrained")
        axes = fig.subplots(1, len(ops), squeeze=False).ravel()
        for ax, op in zip(axes, ops):
            drawn = False
            for table, label in zip(tables, labels):
                visits, values = _series(table, f"{op}_{metric}")
                if not values.size:
                    continue
                origin = float(visits.min())
                bins, groups = _group(_bin_index(visits, origin, size), values)
                means = np.array([g.mean() for g in groups])
                ax.plot(_bin_centre(bins, origin, size), means, marker="o", markersize=4, label=label)
                drawn = True
            if drawn:
                ax.legend(loc="upper left")
                ax.set_ylim(bottom=0)
            else:
                ax.text(0.5, 0.5, "no records", transform=ax.transAxes, ha="center", va="center", color="grey")
            ax.set_title(panel_title(op, _common_backend(backends or [])))
            ax.set_xlabel("visit number")
            ax.set_ylabel(f"bin mean of {_METRIC_LABELS[metric]}")
            ax.grid(True, alpha=0.3)
        fig.suptitle(f"Comparison of runs: mean per bin of {size:,} visits")
    return fig


def complete_rows(table: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """The rows of complete visits, and how many rows were left out.

    A table without a ``complete`` column (an older CSV) is kept whole.
    """
    if "complete" not in table.columns:
        return table, 0
    keep = (table["complete"] == 1).fillna(False).to_numpy(dtype=bool)
    return table[keep].reset_index(drop=True), int((~keep).sum())


def load_run(csv_path: str | os.PathLike, include_incomplete: bool = False) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Read a log2csv CSV and describe it from its provenance sidecar.

    Parameters
    ----------
    csv_path : path-like
        CSV written by log2csv.
    include_incomplete : `bool`
        Keep the rows of incomplete visits (left out by default, see
        `complete_rows`).

    Returns
    -------
    table : `pandas.DataFrame`
        The per-visit table.
    description : `dict`
        `dia_sim.log2csv.run_description` of the sidecar's provenance
        (``backend``, ``strategy``, ``density``, ``label``; ``label`` is empty
        without a sidecar), and ``left_out``: incomplete rows left out.
    """
    table = read_csv(csv_path)
    left_out = 0
    if not include_incomplete:
        table, left_out = complete_rows(table)
    description = run_description(read_provenance(csv_path))
    description["left_out"] = left_out
    return table, description


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-").lower() or "run"


def plot_open_loop(table: pd.DataFrame, *, label: str | None = None) -> Figure:
    """Open-loop runs (``ap_proto --cadence``): visits in flight, and each visit's latency, against time.

    Time is seconds since the first release of the table's runs (a resumed
    run continues on the same axis, after its gap). Rows without a latency
    (closed-loop runs, visits not completed) are left out.

    Returns
    -------
    figure : `matplotlib.figure.Figure`
        With two axes sharing the time axis.
    """
    latencies = table_latencies(table)
    with matplotlib.rc_context(_STYLE):
        fig = Figure(figsize=(9.6, 6.4), layout="constrained")
        top, bottom = fig.subplots(2, 1, sharex=True)
        if len(latencies):
            origin = float(latencies["released"].min())
            times, counts = in_flight_steps(latencies)
            top.step(times - origin, counts, where="post", color=_BOX_COLOR)
            top.set_ylim(0, max(int(counts.max()), 1) + 0.5)
            released = latencies["released"].to_numpy() - origin
            bottom.plot(released, latencies["latency"], ".", color=_BOX_COLOR, label="latency (release to stored)")
            bottom.plot(released, latencies["queue_wait"], "x", color="grey", label="queue wait (release to start)")
            p50, p95 = np.percentile(latencies["latency"], [50, 95])
            for value, style, name in ((p50, "--", "median"), (p95, ":", "p95")):
                bottom.axhline(value, linestyle=style, color="black", linewidth=1, label=f"{name} {value:.2f} s")
            bottom.legend(loc="best")
        else:
            top.text(0.5, 0.5, "no latency records (not an open-loop run)", transform=top.transAxes, ha="center",
                     va="center", color="grey")
        top.set_ylabel("visits in flight")
        bottom.set_ylabel("seconds")
        bottom.set_xlabel("seconds since the first release")
        what = "Open loop: visits in flight and latency per visit"
        top.set_title(f"{what}\n{label}" if label else what)
        for ax in (top, bottom):
            ax.grid(True, alpha=0.3)
    return fig


def run_figures(table: pd.DataFrame, label: str | None = None, backend: str | None = None, *,
                bin_size: int | None = None, threshold: float = DEFAULT_THRESHOLD,
                metric: str = "real") -> dict[str, Figure]:
    """The per-visit figures of one run: ``selects``, ``stores`` and ``slow_fraction`` (`write_plots`' files).

    ``label`` titles them; ``backend`` (the run's) titles the whole store's panel. An
    open-loop run (a table with latencies) has ``open_loop`` too (`plot_open_loop`).
    """
    figures = {
        "selects": plot_selects(table, label=label, bin_size=bin_size, metric=metric),
        "stores": plot_stores(table, label=label, bin_size=bin_size, metric=metric, backend=backend),
        "slow_fraction": plot_slow_fraction(table, threshold, bin_size=bin_size, label=label),
    }
    if "latency" in table.columns and table["latency"].notna().any():
        figures["open_loop"] = plot_open_loop(table, label=label)
    return figures


def write_plots(
    csv_paths: Sequence[str | os.PathLike],
    out_dir: str | os.PathLike,
    *,
    labels: Sequence[str] | None = None,
    bin_size: int | None = None,
    threshold: float = DEFAULT_THRESHOLD,
    metric: str = "real",
    include_incomplete: bool = False,
    report: Callable[[str], None] | None = None,
) -> dict[Path, Figure]:
    """Write every figure for ``csv_paths`` into ``out_dir``.

    With one CSV: ``selects.png``, ``stores.png``, ``slow_fraction.png`` and
    ``compare.png``. With several, the first three are written per CSV with
    its label as a prefix (``<label>_selects.png``), and ``compare.png``
    overlays them all.

    Parameters
    ----------
    csv_paths : sequence of path-like
        CSVs written by log2csv (their provenance sidecars are used if present).
    out_dir : path-like
        Output folder (created if needed).
    labels : sequence of `str`, optional
        One label per CSV; default: backend, strategy and density from the
        provenance, else the file name.
    bin_size, threshold, metric
        As in `plot_operations` and `plot_slow_fraction`.
    include_incomplete : `bool`
        Plot (and fit) the rows of incomplete visits too; by default they are
        left out, and the titles and ``report`` say how many.
    report : callable, optional
        Receives one line per CSV that had rows left out.

    Returns
    -------
    figures : `dict` [`pathlib.Path`, `matplotlib.figure.Figure`]
        Every file written and its figure.

    Raises
    ------
    ValueError
        If a CSV is not a log2csv table or has no (complete) visit row;
        nothing is written then.
    """
    if not csv_paths:
        raise ValueError("no CSV file given")
    if labels is not None and len(labels) != len(csv_paths):
        raise ValueError(f"{len(csv_paths)} CSV files but {len(labels)} labels")
    out = Path(out_dir)
    tables, titles, names = [], [], []
    notes: list[str] = []
    backends: list[str | None] = []
    for k, path in enumerate(csv_paths):
        table, description = load_run(path, include_incomplete)
        backends.append(description["backend"])
        left_out = description["left_out"]
        if table.empty and left_out:
            raise ValueError(f"{os.fspath(path)}: no complete visit row ({left_out} incomplete, "
                             f"left out unless asked for)")
        if table.empty:
            raise ValueError(f"{os.fspath(path)}: no visit rows (a header only); nothing to plot")
        title = labels[k] if labels is not None else (description["label"] or Path(path).stem)
        note = f"{left_out:,} incomplete visit{'s' if left_out != 1 else ''} left out" if left_out else ""
        if note and report is not None:
            report(f"{os.fspath(path)}: {note} (visits abandoned by a kill or a failure)")
        tables.append(table)
        titles.append(title)
        names.append(title)
        notes.append(note)
    if len(set(names)) < len(names):  # Same provenance twice: tell the files apart.
        names = [f"{name} ({Path(p).stem})" for name, p in zip(names, csv_paths)]
        titles = names if labels is None else titles
    titles = [f"{title}; {note}" if note else title for title, note in zip(titles, notes)]
    legends = [f"{name} ({note})" if note else name for name, note in zip(names, notes)]

    # Every input read and checked: only now is anything written.
    out.mkdir(parents=True, exist_ok=True)
    figures: dict[Path, Figure] = {}
    used: set[str] = set()
    for table, title, name, backend in zip(tables, titles, names, backends):
        prefix = ""
        if len(csv_paths) > 1:
            slug = _slug(name)
            while slug in used:
                slug += "-1"
            used.add(slug)
            prefix = slug + "_"
        for name, figure in run_figures(table, title, backend, bin_size=bin_size, threshold=threshold,
                                        metric=metric).items():
            figures[out / f"{prefix}{name}.png"] = figure
    figures[out / "compare.png"] = plot_compare(tables, legends, bin_size=bin_size, metric=metric, backends=backends)
    for path, fig in figures.items():
        fig.savefig(path)
    return figures


def describe_figures(figures: Mapping[Path, Figure]) -> list[str]:
    """One line per written figure, for the command line."""
    return [f"{path} ({len(fig.axes)} panel{'s' if len(fig.axes) != 1 else ''})" for path, fig in figures.items()]


# -- history depth and the plateau (time-compressed steady-state runs) ------------

#: Operations of the history figure, one row of panels each.
HISTORY_PANELS: tuple[str, ...] = ("obj_select", "src_select", "fsrc_select", "store")

_RUN_COLORS = ("#4c72b0", "#dd8452", "#55a868", "#c44e52", "#8172b3", "#937860")


def _binned_means(x: np.ndarray, y: np.ndarray, bins: int = 20) -> tuple[np.ndarray, np.ndarray]:
    """Mean of ``y`` in ``bins`` equal bins of ``x`` (empty bins left out)."""
    if x.size == 0:
        return np.empty(0), np.empty(0)
    edges = np.linspace(x.min(), x.max() + 1e-12, bins + 1)
    index = np.clip(np.digitize(x, edges) - 1, 0, bins - 1)
    counts = np.bincount(index, minlength=bins)
    sums = np.bincount(index, weights=y, minlength=bins)
    keep = counts > 0
    centres = 0.5 * (edges[:-1] + edges[1:])
    return centres[keep], sums[keep] / counts[keep]


def plot_history(
    tables: Sequence[pd.DataFrame],
    labels: Sequence[str],
    provenances: Sequence[Sequence[Mapping[str, Any]]],
    *,
    ops: Sequence[str] = HISTORY_PANELS,
    metric: str = "real",
) -> Figure:
    """Each operation's time against the history depth, one row per operation, runs overlaid.

    Left: against the months of history in the database (`dia_sim.fits.history_months`),
    with the visit at which the history window is full marked and a
    least-squares line on each side of it (slopes per 1,000 visits in the
    legend): a plateau shows as a flat line after the mark. Right: against
    the history rows the visit read (DiaSource + DiaForcedSource), which
    stop growing once the window is full.

    Returns
    -------
    figure : `matplotlib.figure.Figure`
        With ``2 * len(ops)`` axes.
    """
    if not (len(tables) == len(labels) == len(provenances)):
        raise ValueError(f"{len(tables)} tables, {len(labels)} labels, {len(provenances)} provenances")
    if metric not in _METRIC_LABELS:
        raise ValueError(f"metric must be one of {sorted(_METRIC_LABELS)}, not {metric!r}")
    with matplotlib.rc_context(_STYLE):
        fig = Figure(figsize=(13.0, 3.9 * len(ops)), layout="constrained")
        axes = fig.subplots(len(ops), 2, squeeze=False)
        backend = _common_backend([run_description(p)["backend"] for p in provenances])
        for k, (table, label, provenance) in enumerate(zip(tables, labels, provenances)):
            color = _RUN_COLORS[k % len(_RUN_COLORS)]
            visits = _visits(table)
            months = history_months(visits.astype(np.int64), provenance)
            fill = window_fill_visit(visits.astype(np.int64), provenance)
            fill_month = float(np.interp(fill, visits, months)) if np.isfinite(fill) else math.nan
            depth = np.nan_to_num(numeric_column(table, "src_read"))
            depth += np.nan_to_num(numeric_column(table, "fsrc_read"))
            slopes = slopes_before_after(table, ops, fill, metric) if np.isfinite(fill) else {}
            for row, op in enumerate(ops):
                values = numeric_column(table, f"{op}_{metric}")
                keep = np.isfinite(values)
                left, right = axes[row]
                left.scatter(months[keep], values[keep], s=6, color=color, alpha=0.3, linewidths=0)
                right.scatter(depth[keep], values[keep], s=6, color=color, alpha=0.3, linewidths=0)
                xs, means = _binned_means(months[keep], values[keep])
                left.plot(xs, means, color=color, linewidth=1.2, marker="o", markersize=3,
                          label=f"{label}: bin means")
                xs, means = _binned_means(depth[keep], values[keep])
                right.plot(xs, means, color=color, linewidth=1.2, marker="o", markersize=3, label=label)
                if np.isfinite(fill_month):
                    left.axvline(fill_month, color=color, linestyle=":", linewidth=1)
                    before, after = slopes.get(op, (math.nan, math.nan))
                    for side, slope, word in ((months < fill_month, before, "before"),
                                              (months >= fill_month, after, "after")):
                        sel = side & keep
                        if sel.sum() >= 2 and np.isfinite(slope):
                            fit = np.polyfit(months[sel], values[sel], 1)
                            xs = np.array([months[sel].min(), months[sel].max()])
                            left.plot(xs, np.polyval(fit, xs), color=color, linewidth=2.2,
                                      linestyle="--" if word == "before" else "-",
                                      label=f"{label}, {word} the window fills: {slope * 1000:+.3g} s / 1,000 visits")
                left.set_title(panel_title(op, backend))
                left.set_xlabel("months of history in the database (dotted: 12-month window full)")
                right.set_title(f"{op} against the history read")
                right.set_xlabel("history rows read by the visit (DiaSource + DiaForcedSource)")
                for ax in (left, right):
                    ax.set_ylabel(_METRIC_LABELS[metric])
                    ax.grid(True, alpha=0.3)
                    ax.set_ylim(bottom=0)
        for left, right in axes:
            left.legend(loc="upper left", fontsize=7.5, framealpha=0.9)
            right.legend(loc="upper left", fontsize=8, framealpha=0.9)
        fig.suptitle("Time per visit against history depth (time-compressed runs)")
    return fig


#: The assumption `plot_projection` states on the figure.
SCALING_ASSUMPTION = ("assumption: reads (obj/src/fsrc_select) scale as 1/N with N nodes; "
                      "store and simulation do not change with N")


def plot_projection(table: pd.DataFrame, projection: pd.DataFrame, *, label: str | None = None,
                    visits: int | None = None, metric: str = "real") -> Figure:
    """Reads against the rows they read with their fits, and the projected per-visit time against cluster size.

    Parameters
    ----------
    table : `pandas.DataFrame`
        The per-visit table the fits were made from.
    projection : `pandas.DataFrame`
        `dia_sim.fits.project` output (its ``N=<n>`` columns are the cluster sizes).
    label : `str`, optional
        Run label for the title.
    visits : `int`, optional
        The visit number projected to, for the title.
    Returns
    -------
    figure : `matplotlib.figure.Figure`
        With 4 axes.
    """
    node_columns = [c for c in projection.columns if c.startswith("N=")]
    nodes = [int(c[2:]) for c in node_columns]
    with matplotlib.rc_context(_STYLE):
        fig = Figure(figsize=(13.0, 8.6), layout="constrained")
        axes = fig.subplots(2, 2).ravel()
        for ax, op in zip(axes[:3], READ_OPERATIONS):
            rows = numeric_column(table, ROW_COLUMNS[op])
            values = numeric_column(table, f"{op}_{metric}")
            ax.scatter(rows, values, s=6, color="#8c8c8c", alpha=0.5, linewidths=0, label="each visit")
            fit = line_fit(rows, values)
            target = projection.loc[projection["op"] == op]
            if fit is not None:
                end = max(fit.x_max, float(target["rows"].iloc[0]) if len(target) else 0.0)
                xs = np.array([0.0, end if np.isfinite(end) else fit.x_max])
                ax.plot(xs, fit(xs), color=_FIT_COLOR, linewidth=1.5,
                        label=f"fit: {fit.intercept:.3g} s + {fit.slope * 1e6:.3g} s per million rows "
                        f"(R² {fit.r2:.2f})")
            if len(target) and np.isfinite(target["rows"].iloc[0]):
                ax.plot([target["rows"].iloc[0]], [target[node_columns[0]].iloc[0]], marker="*", markersize=12,
                        color=_MEAN_COLOR, linestyle="", label=f"projected: {target['rows'].iloc[0]:,.0f} rows")
            ax.set_xlabel(f"rows read ({ROW_COLUMNS[op]})")
            ax.set_ylabel(_METRIC_LABELS[metric])
            ax.set_title(panel_title(op))
            ax.legend(loc="upper left", fontsize=8)
            ax.grid(True, alpha=0.3)
            ax.set_xlim(left=0)
            ax.set_ylim(bottom=0)
        ax = axes[3]
        bottom = np.zeros(len(nodes))
        for k, (_, row) in enumerate(projection[projection["op"] != "visit"].iterrows()):
            heights = row[node_columns].to_numpy(dtype="float64")
            ax.bar([str(n) for n in nodes], heights, bottom=bottom, label=row["op"],
                   color=_RUN_COLORS[k % len(_RUN_COLORS)])
            bottom += heights
        for x, total in enumerate(bottom):
            ax.text(x, total, f"{total:.2f} s", ha="center", va="bottom", fontsize=9)
        ax.set_xlabel("nodes in the cluster (N)")
        ax.set_ylabel("projected time per visit (s)")
        where = f"visit {visits:,}" if visits else "the projected visit"
        ax.set_title(f"per-visit time at {where}\n" + textwrap.fill(SCALING_ASSUMPTION, 75), fontsize=9)
        ax.legend(loc="upper right", fontsize=8)
        ax.grid(True, axis="y", alpha=0.3)
        fig.suptitle(_title("Projection from one machine's run", label))
    return fig


def write_history_plots(
    csv_paths: Sequence[str | os.PathLike],
    out_dir: str | os.PathLike,
    *,
    labels: Sequence[str] | None = None,
    metric: str = "real",
) -> tuple[dict[Path, Figure], dict[str, float]]:
    """Write ``history.png`` (`plot_history` of every CSV, overlaid) into ``out_dir``.

    Returns
    -------
    figures : `dict` [`pathlib.Path`, `matplotlib.figure.Figure`]
        The file written and its figure.
    fills : `dict` [`str`, `float`]
        Each label's visit at which the history window is full (NaN: never).
    """
    tables, names, provenances = [], [], []
    for k, path in enumerate(csv_paths):
        table, description = load_run(path)
        if table.empty:
            raise ValueError(f"{os.fspath(path)}: no complete visit row; nothing to plot")
        tables.append(table)
        names.append(labels[k] if labels is not None else (description["label"] or Path(path).stem))
        provenances.append(read_provenance(path))
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    figure = plot_history(tables, names, provenances, metric=metric)
    path = out / "history.png"
    figure.savefig(path)
    fills = {name: window_fill_visit(_visits(t).astype(np.int64), p) for name, t, p in zip(names, tables, provenances)}
    return {path: figure}, fills


def write_projection_plots(
    csv_paths: Sequence[str | os.PathLike],
    out_dir: str | os.PathLike,
    *,
    labels: Sequence[str] | None = None,
    visits: int | None = None,
    nodes: Sequence[int] = (1, 3, 6, 12),
    survey_per_year: float | None = None,
    growth: str = "none",
) -> tuple[dict[Path, Figure], dict[str, tuple[pd.DataFrame, str]]]:
    """Write ``projection.png`` (one CSV) or ``<label>_projection.png`` (several) into ``out_dir``.

    Returns
    -------
    figures : `dict` [`pathlib.Path`, `matplotlib.figure.Figure`]
        Every file written and its figure.
    projections : `dict` [`str`, `tuple`]
        Each label's `dia_sim.fits.project_run` output (table and how its rows were projected).
    """
    visits = visits or SURVEY_YEAR_VISITS
    out = Path(out_dir)
    runs = []
    for k, path in enumerate(csv_paths):
        table, description = load_run(path)
        if table.empty:
            raise ValueError(f"{os.fspath(path)}: no complete visit row; nothing to project")
        name = labels[k] if labels is not None else (description["label"] or Path(path).stem)
        check_projectable(table, os.fspath(path))
        projection = project_run(table, read_provenance(path), visits=visits, nodes=nodes,
                                 survey_per_year=survey_per_year or SURVEY_OBSERVATIONS_PER_YEAR, growth=growth)
        runs.append((name, table, projection))
    out.mkdir(parents=True, exist_ok=True)
    figures, projections = {}, {}
    for name, table, (projection, how) in runs:
        prefix = f"{_slug(name)}_" if len(runs) > 1 else ""
        figure = plot_projection(table, projection, label=f"{name}\n{how}", visits=visits)
        figures[out / f"{prefix}projection.png"] = figure
        figure.savefig(out / f"{prefix}projection.png")
        projections[name] = (projection, how)
    return figures, projections
