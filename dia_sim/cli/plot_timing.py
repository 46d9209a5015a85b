"""Command-line tool ``plot_timing``: PNG figures from log2csv CSV tables."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from l1db.cli import input_file_problem, quiet_broken_pipe

from ..fits import GROWTH, MIN_PROJECTION_VISITS, SURVEY_OBSERVATIONS_PER_YEAR, SURVEY_YEAR_VISITS, check_projectable
from ..plots import (
    DEFAULT_THRESHOLD,
    SCALING_ASSUMPTION,
    describe_figures,
    load_run,
    write_history_plots,
    write_plots,
    write_projection_plots,
)

__all__ = ["main"]

_DESCRIPTION = """\
Draw the timing figures of one or more runs from CSV files written by log2csv:

  selects.png        time per visit of obj_select, src_select, fsrc_select and their sum
  stores.png         time per visit of the store operations present, and the whole store
  slow_fraction.png  fraction of visits whose whole-visit time exceeds --threshold, per bin
  compare.png        per-bin mean of sum_select and store, one line per CSV
  open_loop.png      open-loop runs (ap_proto --cadence) only: visits in flight and
                     each visit's latency and queue wait against time

Per-operation panels show each visit (scatter), a box per bin of visits with
the bin mean, and a least-squares line with its slope per 1,000 visits.
Visits marked incomplete in the CSV (abandoned by a kill or a failure) are
left out of the plots and fits unless --include-incomplete; the titles and
a line on stderr say how many.
With several CSVs the first three figures are written for each, prefixed by
its label.

--history adds history.png: each operation's time against the months of
history in the database and against the history rows read, runs overlaid,
with the fitted slope before and after the 12-month window fills (for
time-compressed runs: ap_proto --observations-per-year).
--project adds projection.png (per CSV): each read's time against its rows,
and the per-visit time projected to one survey year (--project-visits) on
clusters of --nodes nodes, assuming reads scale as 1/N; the projection is
also printed, with the standard error of each fitted time. A run of fewer than
{min_visits} complete visits is not projected (refused before anything is written).
Labels and titles come from --label or from the CSV's provenance
sidecar (CSV.provenance.json: backend, indexing strategy, density).
"""


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, not {text}")
    return value


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="plot_timing", description=_DESCRIPTION.format(min_visits=MIN_PROJECTION_VISITS),
        formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("csv", nargs="+", metavar="CSV", help="per-visit CSV files written by log2csv")
    parser.add_argument("-o", "--output-dir", required=True, metavar="DIR", help="folder for the PNG files")
    parser.add_argument("--bin", type=_positive_int, metavar="N",
                        help="visits per box / bin (default: about 20 bins over the run)")
    parser.add_argument("--label", nargs="+", metavar="L", help="one legend label per CSV, in order")
    parser.add_argument("--threshold", type=float, default=DEFAULT_THRESHOLD, metavar="SECONDS",
                        help="slow-visit threshold on visit_real for slow_fraction.png (default: %(default)g)")
    parser.add_argument("--cpu", action="store_true", help="plot cpu (user + sys) instead of wall time")
    parser.add_argument("--include-incomplete", action="store_true",
                        help="also plot and fit the visits marked incomplete (abandoned by a kill or a failure); "
                        "by default they are left out and the titles say how many")
    parser.add_argument("--history", action="store_true",
                        help="also write history.png: time against history depth, slopes before/after the window fills")
    parser.add_argument("--project", action="store_true",
                        help="also write projection.png and print the per-visit time projected to --project-visits, "
                        f"with its standard error (runs of at least {MIN_PROJECTION_VISITS} complete visits)")
    parser.add_argument("--project-visits", type=_positive_int, default=SURVEY_YEAR_VISITS, metavar="N",
                        help="visit number to project to (default %(default)s: one survey year at 800 a night)")
    parser.add_argument("--nodes", type=_node_list, default=(1, 3, 6, 12), metavar="N,N,...",
                        help="cluster sizes of the projection (default 1,3,6,12)")
    parser.add_argument("--survey-per-year", type=float, default=SURVEY_OBSERVATIONS_PER_YEAR, metavar="K",
                        help="observations of a point per survey year, to scale a time-compressed run's plateau "
                        "rows to (default %(default)g)")
    parser.add_argument("--growth", choices=GROWTH, default="none",
                        help="store and simulation in the projection: none = as at the end of the run (default); "
                        "linear = their fit against the visit number extrapolated (an upper bound)")
    return parser


def _node_list(text: str) -> tuple[int, ...]:
    try:
        nodes = tuple(int(part) for part in text.split(","))
    except ValueError:
        nodes = ()
    if not nodes or min(nodes) < 1:
        raise argparse.ArgumentTypeError(f"must be positive integers separated by commas, not {text}")
    return nodes


@quiet_broken_pipe
def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit code."""
    parser = _parser()
    args = parser.parse_args(argv)
    problem = input_file_problem(args.csv, "CSV file")
    if problem:
        print(f"plot_timing: {problem}", file=sys.stderr)
        return 1
    out = Path(args.output_dir)
    for where in (out, *out.parents):
        if where.exists() and not where.is_dir():
            print(f"plot_timing: -o {args.output_dir}: {where} is a file, not a folder", file=sys.stderr)
            return 1
    if args.label is not None and len(args.label) != len(args.csv):
        print(f"plot_timing: {len(args.csv)} CSV files but {len(args.label)} labels", file=sys.stderr)
        return 1
    try:
        if args.project:  # before anything is written
            for path in args.csv:
                check_projectable(load_run(path)[0], path)
        figures = write_plots(
            args.csv, args.output_dir, labels=args.label, bin_size=args.bin, threshold=args.threshold,
            metric="cpu" if args.cpu else "real", include_incomplete=args.include_incomplete,
            report=lambda line: print(f"plot_timing: {line}; --include-incomplete plots them", file=sys.stderr),
        )
        if args.history:
            history, _ = write_history_plots(args.csv, args.output_dir, labels=args.label)
            figures.update(history)
        if args.project:
            projection, tables = write_projection_plots(
                args.csv, args.output_dir, labels=args.label, visits=args.project_visits, nodes=args.nodes,
                survey_per_year=args.survey_per_year, growth=args.growth)
            figures.update(projection)
    except OSError as exc:  # the output folder cannot be made or written
        print(f"plot_timing: {exc.filename or args.output_dir}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    except (ValueError, KeyError) as exc:
        # pandas raises ValueError/ParserError (a ValueError) on a file that is no CSV table.
        print(f"plot_timing: {exc}", file=sys.stderr)
        return 1
    for line in describe_figures(figures):
        print(line)
    if args.project:
        print(f"projected per-visit time at visit {args.project_visits:,}, seconds; {SCALING_ASSUMPTION}; "
              f"stderr: the standard error of the fitted time on one node")
        for label, (frame, how) in tables.items():
            print(f"\n{label} ({how}):")
            print(frame.to_string(index=False, float_format=lambda v: f"{v:,.3f}"))
    return 0


if __name__ == "__main__":  # python -m dia_sim.cli.plot_timing
    sys.exit(main())
