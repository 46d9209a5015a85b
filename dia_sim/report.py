"""Runs to one self-contained HTML page: what was run, what came out, and how runs compare.

A run is one input file: a per-visit CSV written by log2csv (with its
provenance sidecar, `dia_sim.log2csv.provenance_path`) or a timing log read
directly (through `dia_sim.log2csv.logs_to_table`, so `l1db.timing_log`
stays the only parser of the format; a log still being written, with its
last line torn and its last visit unfinished, reads too). A file with
several run ids (a run and its resumptions) is one series, as in the plots.

The page (`render_report`) holds per run: its provenance (the facts a
reader compares first, then every key), a summary per operation (wall
time median, p95, p99 and max over the complete visits, the median cpu
time, and the rows the operation read or stored), the rows read and stored
per visit, plot_timing's per-visit figures (`dia_sim.plots.run_figures`),
the history figure of a time-compressed run, failed attempts and incomplete
visits, and the survey-year projection (`dia_sim.fits.project_run`) once
the run has `dia_sim.fits.MIN_PROJECTION_VISITS` complete visits. With several runs it starts
with their medians side by side, the provenance keys that differ, and the
figure overlaying them (`dia_sim.plots.plot_compare`).

Everything is inline: figures are PNG data URIs, the style sheet is in the
page, there is no script and no URL to fetch, so the file opens offline.
Every string taken from the input is escaped (`html.escape`).
"""

from __future__ import annotations

import base64
import dataclasses
import datetime
import html
import io
import json
import logging
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from l1db.pixel_kinds import DEFAULT_PIXEL_LEVELS

from .fits import ROW_COLUMNS, SURVEY_YEAR_VISITS, check_projectable, compression_of, numeric_column, project_run
from .log2csv import (
    COUNT_COLUMNS,
    CSV_OPERATIONS,
    logs_to_table,
    provenance_path,
    read_behind,
    read_csv,
    read_provenance,
    run_description,
)
from .open_loop import Verdict, run_verdicts, table_latencies
from .plots import (
    DEFAULT_THRESHOLD,
    complete_rows,
    panel_title,
    plot_compare,
    plot_history,
    plot_projection,
    run_figures,
)

__all__ = [
    "PROJECTION_NODES",
    "STATISTICS",
    "ReportError",
    "ReportRun",
    "load_run",
    "load_runs",
    "operation_summary",
    "rows_summary",
    "flatten_provenance",
    "provenance_differences",
    "render_report",
    "write_report",
]

_LOG = logging.getLogger(__name__)

#: Cluster sizes of the report's projection.
PROJECTION_NODES: tuple[int, ...] = (1, 3, 6, 12)
#: The wall-time statistics of the summary: name -> percentile.
STATISTICS: dict[str, float] = {"median": 50.0, "p95": 95.0, "p99": 99.0, "max": 100.0}
#: Failure records shown per run (the rest counted).
_MAX_FAILURE_ROWS = 200

#: The facts shown first for a run: label -> flattened provenance keys (the first present wins).
_FACTS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("backend", ("backend",)),
    ("server version", ("server_version",)),
    ("database", ("config.database.url",)),
    ("schema", ("config.l1db.schema_file",)),
    ("pixelization", ("config.l1db.pixelization", "config.cassandra.part_pixelization")),
    ("pixel level", ("config.l1db.pixel_level", "config.cassandra.part_pixel_level")),
    ("sources per visit", ("per_visit",)),
    ("catalogue", ("catalog.path",)),
    ("tiles per visit (divide)", ("config.ap_proto.divide",)),
    ("workers", ("config.ap_proto.workers",)),
    ("interval between visits (s)", ("config.ap_proto.interval",)),
    ("days between nights", ("config.ap_proto.days_between_nights",)),
    ("time compression", ("time_compression",)),
    ("seed", ("seed",)),
    ("git commit", ("git_commit",)),
    ("toolkit version", ("toolkit_version",)),
    ("python", ("python",)),
    ("machine", ("machine",)),
    ("started", ("time",)),
    ("command", ("argv",)),
)

#: Facts whose 0 in the config means a default: label -> what it means, from the flattened provenance.
_ZERO_MEANS: dict[str, Any] = {
    "pixel level": lambda flat: "default: level "
    + str(DEFAULT_PIXEL_LEVELS.get(flat.get("config.l1db.pixelization", ""), "of the pixelization")),
    "workers": lambda flat: "default: the machine's cores, at most a visit's tiles",
}

#: Provenance keys that differ between any two runs, so never listed as a difference.
_ALWAYS_DIFFERENT = ("run", "time")

_STYLE = """
body { font-family: sans-serif; margin: 1.5em 2em; color: #222; max-width: 1400px; }
h1 { font-size: 1.6em; } h2 { font-size: 1.3em; border-bottom: 2px solid #4c72b0; margin-top: 2em; }
h3 { font-size: 1.1em; margin-top: 1.5em; }
table { border-collapse: collapse; margin: 0.5em 0 1em; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.2em 0.6em; text-align: left; vertical-align: top; }
th { background: #eef2f8; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.diff td { background: #fff6e0; } .note { color: #555; } .warn { color: #a33; }
img { max-width: 100%; height: auto; border: 1px solid #ddd; margin: 0.3em 0; }
code { font-size: 0.95em; } details { margin: 0.5em 0 1em; }
"""


class ReportError(ValueError):
    """An input the report cannot use (the message names the file)."""


@dataclasses.dataclass
class ReportRun:
    """One input of the report: a per-visit table, its provenance and what the log said besides."""

    path: Path
    name: str
    #: Every per-visit row (complete and incomplete), log2csv's columns.
    table: pd.DataFrame
    provenance: list[dict[str, Any]]
    #: Failure records (a timing log's); None for a CSV, whose rows only count them.
    failures: pd.DataFrame | None = None
    #: Malformed records of a timing log (a run still writing leaves its last line torn).
    malformed: int = 0
    #: The last table-size record of a timing log (``counts``), if any.
    counts: dict[str, Any] | None = None
    #: ``behind`` records of open-loop runs that fell behind (the log's, or the CSV sidecar's).
    behind: list[dict[str, Any]] = dataclasses.field(default_factory=list)

    @property
    def verdicts(self) -> dict[str, Verdict]:
        """The verdict of each open-loop run (`dia_sim.open_loop.run_verdicts`), by run id."""
        return run_verdicts(table_latencies(self.table), self.provenance, self.behind)

    @property
    def complete(self) -> pd.DataFrame:
        """The rows of complete visits (those the statistics, plots and fits use)."""
        return complete_rows(self.table)[0]

    @property
    def description(self) -> dict[str, Any]:
        """`dia_sim.log2csv.run_description` of the provenance."""
        return run_description(self.provenance)


def _is_csv(path: Path) -> bool:
    return path.suffix.lower() == ".csv"


def load_run(path: str | os.PathLike, name: str | None = None) -> ReportRun:
    """Read one input: a log2csv CSV (with its provenance sidecar) or a timing log.

    Raises
    ------
    ReportError
        If the file cannot be read, a CSV is no log2csv table or has no
        sidecar or no visit row, or a log holds no run (no provenance,
        timing or failure record).
    """
    path = Path(path)
    if _is_csv(path):
        try:
            table = read_csv(path)
        except ValueError as exc:
            raise ReportError(str(exc)) from None
        except OSError as exc:
            raise ReportError(f"{path}: cannot read: {exc.strerror or exc}") from None
        sidecar = provenance_path(path)
        if not sidecar.is_file():
            raise ReportError(f"{path}: no provenance sidecar {sidecar} (log2csv -o writes it; or give the timing log)")
        provenance = read_provenance(path)
        if not provenance:
            raise ReportError(f"{path}: its provenance sidecar {sidecar} holds no run record")
        if table.empty:
            raise ReportError(f"{path}: no visit row (a header only)")
        description = run_description(provenance)
        return ReportRun(path, name or description["label"] or path.stem, table, provenance,
                         behind=read_behind(path))
    try:
        table, parsed = logs_to_table([path])
    except OSError as exc:
        raise ReportError(f"{path}: cannot read: {exc.strerror or exc}") from None
    if not parsed.provenance and parsed.timings.empty and parsed.failures.empty:
        raise ReportError(f"{path}: no run in it (no provenance, timing or failure record of a timing log; "
                          f"{parsed.malformed} malformed)")
    description = run_description(parsed.provenance)
    return ReportRun(path, name or description["label"] or path.stem, table, list(parsed.provenance),
                     parsed.failures, parsed.malformed, parsed.counts[-1] if parsed.counts else None,
                     list(parsed.behind))


def load_runs(paths: Sequence[str | os.PathLike], labels: Sequence[str] | None = None) -> list[ReportRun]:
    """`load_run` of every path; names made distinct with the file name where two runs would share one."""
    if not paths:
        raise ReportError("no run given")
    if labels is not None and len(labels) != len(paths):
        raise ReportError(f"{len(paths)} inputs but {len(labels)} labels")
    runs = [load_run(path, labels[k] if labels is not None else None) for k, path in enumerate(paths)]
    names = [run.name for run in runs]
    if len(set(names)) < len(names):
        for run in runs:
            run.name = f"{run.name} ({run.path.name})"
    return runs


# -- numbers ------------------------------------------------------------------------


def operation_summary(table: pd.DataFrame) -> pd.DataFrame:
    """Per operation present: visits, wall-time `STATISTICS`, median cpu time, and its rows.

    Parameters
    ----------
    table : `pandas.DataFrame`
        Per-visit rows (the complete ones, as the report uses).

    Returns
    -------
    summary : `pandas.DataFrame`
        One row per operation with a wall time (in `CSV_OPERATIONS` order),
        columns ``op``, ``visits``, the `STATISTICS` (seconds), ``cpu_median``
        (seconds), ``rows_column`` (the row count it is fitted against, or
        empty), ``rows_median`` and ``rows_total``.
    """
    records = []
    for op in CSV_OPERATIONS:
        values = numeric_column(table, f"{op}_real")
        values = values[np.isfinite(values)]
        if not values.size:
            continue
        stats = np.percentile(values, list(STATISTICS.values()))
        cpu = numeric_column(table, f"{op}_cpu")
        cpu = cpu[np.isfinite(cpu)]
        column = ROW_COLUMNS.get(op, "")
        rows = numeric_column(table, column) if column else np.empty(0)
        rows = rows[np.isfinite(rows)]
        records.append({
            "op": op, "visits": int(values.size), **dict(zip(STATISTICS, map(float, stats))),
            "cpu_median": float(np.median(cpu)) if cpu.size else math.nan, "rows_column": column,
            "rows_median": float(np.median(rows)) if rows.size else math.nan,
            "rows_total": float(rows.sum()) if rows.size else math.nan,
        })
    columns = ["op", "visits", *STATISTICS, "cpu_median", "rows_column", "rows_median", "rows_total"]
    return pd.DataFrame(records, columns=columns)


def rows_summary(table: pd.DataFrame) -> pd.DataFrame:
    """Rows read and stored (`COUNT_COLUMNS`): median per visit and total over ``table``'s visits."""
    records = []
    for column, (_ops, doc) in COUNT_COLUMNS.items():
        rows = numeric_column(table, column)
        rows = rows[np.isfinite(rows)]
        if rows.size:
            records.append({"column": column, "what": doc, "median": float(np.median(rows)),
                            "total": float(rows.sum())})
    return pd.DataFrame(records, columns=["column", "what", "median", "total"])


def _value_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, default=str)


def flatten_provenance(records: Iterable[Mapping[str, Any]]) -> dict[str, str]:
    """Provenance records as ``{"config.l1db.pixelization": "htm", ...}``.

    Nested mappings become dotted keys, lists and numbers their JSON text;
    ``record`` and ``format`` (the log's own fields) are left out. A key
    whose value differs between the records (a run and its resumptions)
    holds the distinct values joined by `` | ``.
    """
    values: dict[str, list[str]] = {}

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, Mapping) and value:
            for key, inner in value.items():
                walk(f"{prefix}.{key}" if prefix else str(key), inner)
        else:
            seen = values.setdefault(prefix, [])
            text = _value_text(value)
            if text not in seen:
                seen.append(text)

    for record in records:
        walk("", {k: v for k, v in record.items() if k not in ("record", "format")})
    return {key: " | ".join(seen) for key, seen in values.items()}


def provenance_differences(runs: Sequence[ReportRun]) -> dict[str, list[str]]:
    """Provenance keys whose values differ between ``runs``: key -> each run's value ("" where absent)."""
    flat = [flatten_provenance(run.provenance) for run in runs]
    keys = sorted({key for f in flat for key in f} - set(_ALWAYS_DIFFERENT))
    out = {}
    for key in keys:
        values = [f.get(key, "") for f in flat]
        if len(set(values)) > 1:
            out[key] = values
    return out


# -- HTML ---------------------------------------------------------------------------


def _e(value: Any) -> str:
    """``value`` as escaped HTML text."""
    return html.escape(str(value), quote=True)


def _seconds(value: float) -> str:
    return f"{value:.4f}" if math.isfinite(value) else ""


def _count(value: float) -> str:
    if not math.isfinite(value):
        return ""
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.1f}"


def _figure_img(figure: Figure, alt: str) -> str:
    """``figure`` as an ``<img>`` with a PNG data URI."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    data = base64.b64encode(buffer.getvalue()).decode("ascii")
    return f'<img src="data:image/png;base64,{data}" alt="{_e(alt)}">'


def _table(header: Sequence[str], rows: Iterable[str], attrs: str = "") -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    return f"<table{attrs}><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def _summary_html(run: ReportRun, index: int) -> str:
    summary = operation_summary(run.complete)
    if summary.empty:
        return '<p class="note">No complete visit yet: no statistics.</p>'
    rows = []
    for rec in summary.to_dict("records"):
        cells = [f'<td class="op" title="{_e(panel_title(rec["op"]))}"><code>{_e(rec["op"])}</code></td>',
                 f'<td class="num" data-stat="visits">{rec["visits"]}</td>']
        cells += [f'<td class="num" data-stat="{name}">{_seconds(rec[name])}</td>' for name in STATISTICS]
        cells.append(f'<td class="num" data-stat="cpu_median">{_seconds(rec["cpu_median"])}</td>')
        cells.append(f'<td><code>{_e(rec["rows_column"])}</code></td>' if rec["rows_column"] else "<td></td>")
        cells.append(f'<td class="num" data-stat="rows_median">{_count(rec["rows_median"])}</td>')
        cells.append(f'<td class="num" data-stat="rows_total">{_count(rec["rows_total"])}</td>')
        rows.append(f'<tr data-op="{_e(rec["op"])}">{"".join(cells)}</tr>')
    header = ["operation", "visits", *(f"{name} (s)" for name in STATISTICS), "median cpu (s)", "rows",
              "median rows", "total rows"]
    return _table(header, rows, f' class="summary" data-run="{index}"')


def _rows_html(run: ReportRun, index: int) -> str:
    summary = rows_summary(run.complete)
    if summary.empty:
        return ""
    rows = [f'<tr data-rows="{_e(r["column"])}"><td><code>{_e(r["column"])}</code></td><td>{_e(r["what"])}</td>'
            f'<td class="num" data-stat="median">{_count(r["median"])}</td>'
            f'<td class="num" data-stat="total">{_count(r["total"])}</td></tr>'
            for r in summary.to_dict("records")]
    return "<h3>Rows read and stored</h3>" + _table(["column", "what", "median per visit", "total"], rows,
                                                     f' class="rows" data-run="{index}"')


def _facts_html(run: ReportRun) -> str:
    flat = flatten_provenance(run.provenance)
    description = run.description
    table = run.table
    visits = pd.to_numeric(table["visit"], errors="coerce").dropna()
    complete = int((table["complete"] == 1).fillna(False).sum()) if "complete" in table.columns else len(table)
    facts: list[tuple[str, str]] = [
        ("input", str(run.path)),
        ("run ids", ", ".join(dict.fromkeys(table["run"].astype(str))) or flat.get("run", "")),
        ("strategy", description["strategy"] or ""),
        ("visits", f"{len(table):,} ({complete:,} complete)"
         + (f", visits {int(visits.min()):,} to {int(visits.max()):,}" if len(visits) else "")),
    ]
    for label, keys in _FACTS:
        value = next((flat[k] for k in keys if flat.get(k) not in (None, "", "null")), None)
        if value is None and label == "time compression":
            value = "none"
        elif value == "0" and label in _ZERO_MEANS:
            value = f"0 ({_ZERO_MEANS[label](flat)})"
        if value is not None:
            facts.append((label, value))
    rows = [f"<tr><th>{_e(label)}</th><td>{_e(value)}</td></tr>" for label, value in facts]
    every = [f"<tr><th><code>{_e(key)}</code></th><td>{_e(value)}</td></tr>" for key, value in sorted(flat.items())]
    return (f'<table class="facts">{"".join(rows)}</table>'
            f"<details><summary>every provenance key ({len(every)})</summary>"
            f'<table class="provenance">{"".join(every)}</table></details>')


def _state_html(run: ReportRun) -> str:
    """Notes on a log still being written: malformed records, the last visit unfinished, no visit yet."""
    notes = []
    if run.malformed:
        notes.append(f"{run.malformed:,} malformed record(s) in the log: a run still writing (or killed) "
                     "leaves its last line torn")
    if run.table.empty:
        notes.append("no visit recorded yet")
    elif "complete" in run.table.columns:
        last = run.table.iloc[-1]
        failures = last.get("failures", 0)
        if last["complete"] == 0 and (pd.isna(failures) or failures == 0):
            notes.append(f"the last visit ({int(last['visit']):,}) is unfinished: the run may still be going")
    return "".join(f'<p class="warn">{_e(note)}</p>' for note in notes)


def _failures_html(run: ReportRun) -> str:
    parts = ["<h3>Failures and incomplete visits</h3>"]
    failures = run.failures
    if failures is not None and not failures.empty:
        shown = failures.head(_MAX_FAILURE_ROWS)
        columns = list(shown.columns)
        rows = ["<tr>" + "".join(f"<td>{_e(value)}</td>" for value in rec) + "</tr>"
                for rec in shown.itertuples(index=False)]
        parts.append(f"<p>{len(failures):,} failed attempt(s)"
                     + (f", the first {_MAX_FAILURE_ROWS} shown" if len(failures) > len(shown) else "") + ":</p>")
        parts.append(_table(columns, rows, ' class="failures"'))
    elif "failures" in run.table.columns and (run.table["failures"].fillna(0) > 0).any():
        failed = run.table[run.table["failures"].fillna(0) > 0]
        rows = [f"<tr><td>{_e(r.run)}</td><td>{_e(r.visit)}</td><td class=\"num\">{_e(r.failures)}</td>"
                f"<td class=\"num\">{_seconds(float(r.lost_real))}</td></tr>" for r in failed.itertuples()]
        parts.append(f"<p>{int(failed['failures'].sum()):,} failed attempt(s) in {len(failed):,} visit(s) "
                     "(the CSV counts them; the timing log has the records):</p>")
        parts.append(_table(["run", "visit", "failed attempts", "time lost (s)"], rows, ' class="failures"'))
    else:
        parts.append('<p class="note">No failed attempt.</p>')
    if "complete" in run.table.columns:
        incomplete = run.table[(run.table["complete"] == 0).fillna(False)]
        if len(incomplete):
            rows = [f"<tr><td>{_e(r.run)}</td><td>{_e(r.visit)}</td><td class=\"num\">{_e(r.n_tiles)}</td>"
                    f"<td class=\"num\">{_e(getattr(r, 'failures', ''))}</td></tr>" for r in incomplete.itertuples()]
            parts.append(f"<p>{len(incomplete):,} incomplete visit(s) (abandoned by a kill or a failure, "
                         "or still running), left out of the statistics, plots and fits:</p>")
            parts.append(_table(["run", "visit", "tiles with records", "failed attempts"], rows,
                                ' class="incomplete"'))
        else:
            parts.append('<p class="note">Every visit complete.</p>')
    return "".join(parts)


def _counts_html(run: ReportRun) -> str:
    tables = (run.counts or {}).get("tables")
    if not isinstance(tables, Mapping) or not tables:
        return ""
    rows = [f"<tr><td>{_e(name)}</td><td class=\"num\">{_e(f'{count:,}' if isinstance(count, int) else count)}"
            "</td></tr>" for name, count in tables.items()]
    how = "" if run.counts is None or run.counts.get("exact", True) else " (the server's estimates)"
    return (f"<h3>Table sizes at visit {_e(run.counts.get('visit', '?') if run.counts else '?')}{how}</h3>"
            + _table(["table", "rows"], rows, ' class="counts"'))


def _projection_html(run: ReportRun) -> str:
    table = run.complete
    title = "<h3>Steady state: fit and projection</h3>"
    try:
        check_projectable(table)
    except ValueError as exc:  # too few visits: the same rule and words as plot_timing --project
        return title + f'<p class="note">No projection: {_e(exc)}.</p>'
    parts = [title]
    if compression_of(run.provenance) is not None:
        parts.append(_figure_img(plot_history([table], [run.name], [run.provenance]), "history depth"))
    projection, how = project_run(table, run.provenance, visits=SURVEY_YEAR_VISITS, nodes=PROJECTION_NODES)
    nodes = [c for c in projection.columns if c.startswith("N=")]
    rows = ["<tr>" + f"<td><code>{_e(r['op'])}</code></td><td class=\"num\">{_count(float(np.round(r['rows'])))}</td>"
            f"<td>{_e(r['fit'])}</td>" + "".join(f'<td class="num">{_seconds(float(r[n]))}</td>' for n in nodes)
            + "</tr>" for r in projection.to_dict("records")]
    parts.append(f"<p>Per-visit time projected to visit {SURVEY_YEAR_VISITS:,} (one survey year) on clusters of "
                 f"N nodes, seconds, from the {len(table):,} complete visits (the shorter the run, the rougher the "
                 f"projection); {_e(how)}.</p>")
    parts.append(_table(["operation", "rows", "fit", *nodes], rows, ' class="projection"'))
    parts.append(_figure_img(plot_projection(table, projection, label=run.name, visits=SURVEY_YEAR_VISITS),
                             "projection"))
    return "".join(parts)


def _verdict_html(run: ReportRun) -> str:
    """The verdict of each open-loop run of the input (`dia_sim.open_loop.Verdict.line`); empty without one."""
    verdicts = run.verdicts
    if not verdicts:
        return ""
    lines = "".join(f"<li><code>{_e(r)}</code>: {_e(v.line())}</li>" for r, v in verdicts.items())
    return ('<h3>Open loop: did the database keep up?</h3><ul class="verdict">' + lines + "</ul>"
            '<p class="note">Latency from each visit\'s release to its last store; see the open-loop figure '
            "below (docs/open-loop.md).</p>")


def _run_html(run: ReportRun, index: int, threshold: float) -> str:
    parts = [f'<section class="run" id="run-{index}"><h2>Run #{index + 1}: {_e(run.name)}</h2>', _state_html(run),
             _verdict_html(run),
             "<h3>What was run</h3>", _facts_html(run),
             "<h3>Summary per operation</h3>",
             '<p class="note">Wall time per visit over the complete visits (of a tiled visit: the slowest tile); '
             "cpu time is user + sys summed over the tiles; rows per visit.</p>",
             _summary_html(run, index), _rows_html(run, index), _counts_html(run)]
    complete = run.complete
    if not complete.empty:
        parts.append("<h3>Time per visit</h3>")
        for name, figure in run_figures(complete, run.name, run.description["backend"],
                                        threshold=threshold).items():
            parts.append(_figure_img(figure, name))
    parts.append(_failures_html(run))
    parts.append(_projection_html(run))
    parts.append("</section>")
    return "".join(parts)


def _comparison_html(runs: Sequence[ReportRun]) -> str:
    summaries = [operation_summary(run.complete).set_index("op") for run in runs]
    ops = [op for op in CSV_OPERATIONS if any(op in s.index for s in summaries)]
    header = ["operation"]
    for k in range(len(runs)):
        header += [f"#{k + 1} median (s)", f"#{k + 1} p95 (s)"]
        if k:
            header.append(f"#{k + 1} median / #1's")
    rows = []
    for op in ops:
        cells = [f"<td><code>{_e(op)}</code></td>"]
        first = summaries[0]["median"].get(op, math.nan) if "median" in summaries[0] else math.nan
        for k, summary in enumerate(summaries):
            median = float(summary["median"].get(op, math.nan)) if op in summary.index else math.nan
            p95 = float(summary["p95"].get(op, math.nan)) if op in summary.index else math.nan
            cells.append(f'<td class="num" data-run="{k}" data-stat="median">{_seconds(median)}</td>')
            cells.append(f'<td class="num" data-run="{k}" data-stat="p95">{_seconds(p95)}</td>')
            if k:
                ratio = median / first if math.isfinite(median) and math.isfinite(first) and first > 0 else math.nan
                cells.append(f'<td class="num" data-run="{k}" data-stat="ratio">'
                             f'{f"{ratio:.2f}" if math.isfinite(ratio) else ""}</td>')
        rows.append(f'<tr data-op="{_e(op)}">{"".join(cells)}</tr>')
    parts = ['<section id="comparison"><h2>Comparison</h2>',
             f"<p>{len(runs)} runs: " + "; ".join(f"<b>#{k + 1}</b> {_e(run.name)} ({len(run.complete):,} complete "
                                                  "visits)" for k, run in enumerate(runs)) + ".</p>",
             "<h3>Medians side by side</h3>", _table(header, rows, ' class="compare"'),
             "<h3>What differs between the runs</h3>"]
    differences = provenance_differences(runs)
    if differences:
        diff_rows = [f'<tr class="diff" data-key="{_e(key)}"><th><code>{_e(key)}</code></th>'
                     + "".join(f"<td>{_e(value)}</td>" for value in values) + "</tr>"
                     for key, values in differences.items()]
        parts.append(_table(["provenance key", *(f"#{k + 1} {run.name}" for k, run in enumerate(runs))], diff_rows,
                            ' class="differences"'))
    else:
        parts.append('<p class="note">Their provenance is the same (but for run ids and start times).</p>')
    tables = [run.complete for run in runs]
    if any(not t.empty for t in tables):
        figure = plot_compare(tables, [run.name for run in runs], ops=("sum_select", "store", "visit"),
                              backends=[run.description["backend"] for run in runs])
        parts.append("<h3>Overlaid</h3>" + _figure_img(figure, "comparison"))
    parts.append("</section>")
    return "".join(parts)


def render_report(runs: Sequence[ReportRun], *, title: str | None = None,
                  threshold: float = DEFAULT_THRESHOLD) -> str:
    """The whole page for ``runs`` (one, or several compared) as a string.

    Parameters
    ----------
    runs : sequence of `ReportRun`
        The inputs, in the order shown (the first is the comparison's reference).
    title : `str`, optional
        The page's title; default from the runs' names.
    threshold : `float`
        Slow-visit threshold of the slow-fraction figure (seconds of ``visit_real``).
    """
    if not runs:
        raise ReportError("no run given")
    title = title or ("L1 database benchmark: " + " vs ".join(run.name for run in runs))
    written = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    body = [f"<h1>{_e(title)}</h1>",
            f'<p class="note">Written {_e(written)} by l1db_report from '
            + ", ".join(f"<code>{_e(run.path)}</code>" for run in runs) + ".</p>"]
    if len(runs) > 1:
        body.append(_comparison_html(runs))
    body += [_run_html(run, k, threshold) for k, run in enumerate(runs)]
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{_e(title)}</title><style>{_STYLE}</style></head>\n<body>\n"
            + "\n".join(body) + "\n</body></html>\n")


def write_report(runs: Sequence[ReportRun], out: str | os.PathLike, **kwargs: Any) -> Path:
    """`render_report` into ``out``, whole or not at all (a temporary file renamed into place)."""
    out = Path(out)
    text = render_report(runs, **kwargs)
    temporary = out.with_name(f".{out.name}.tmp{os.getpid()}")
    try:
        temporary.write_text(text, encoding="utf-8")
        os.replace(temporary, out)
    finally:
        temporary.unlink(missing_ok=True)
    return out
