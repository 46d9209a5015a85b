"""Command-line tool ``plot_timing``: PNG figures from log2csv CSV tables."""

from __future__ import annotations

import argparse
import sys

from l1db.cli import input_file_problem, quiet_broken_pipe

from ..plots import DEFAULT_THRESHOLD, describe_figures, write_plots

__all__ = ["main"]

_DESCRIPTION = """\
Draw the timing figures of one or more runs from CSV files written by log2csv:

  selects.png        time per visit of obj_select, src_select, fsrc_select and their sum
  stores.png         time per visit of the store operations present, and the whole store
  slow_fraction.png  fraction of visits whose whole-visit time exceeds --threshold, per bin
  compare.png        per-bin mean of sum_select and store, one line per CSV

Per-operation panels show each visit (scatter), a box per bin of visits with
the bin mean, and a least-squares line with its slope per 1,000 visits.
Visits marked incomplete in the CSV (abandoned by a kill or a failure) are
left out of the plots and fits unless --include-incomplete; the titles and
a line on stderr say how many.
With several CSVs the first three figures are written for each, prefixed by
its label. Labels and titles come from --label or from the CSV's provenance
sidecar (CSV.provenance.json: backend, indexing strategy, density).
"""


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, not {text}")
    return value


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="plot_timing", description=_DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter
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
    return parser


@quiet_broken_pipe
def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit code."""
    parser = _parser()
    args = parser.parse_args(argv)
    problem = input_file_problem(args.csv, "CSV file")
    if problem:
        print(f"plot_timing: {problem}", file=sys.stderr)
        return 1
    if args.label is not None and len(args.label) != len(args.csv):
        print(f"plot_timing: {len(args.csv)} CSV files but {len(args.label)} labels", file=sys.stderr)
        return 1
    try:
        figures = write_plots(
            args.csv, args.output_dir, labels=args.label, bin_size=args.bin, threshold=args.threshold,
            metric="cpu" if args.cpu else "real", include_incomplete=args.include_incomplete,
            report=lambda line: print(f"plot_timing: {line}; --include-incomplete plots them", file=sys.stderr),
        )
    except (OSError, ValueError, KeyError) as exc:
        # pandas raises ValueError/ParserError (a ValueError) on a file that is no CSV table.
        print(f"plot_timing: {exc}", file=sys.stderr)
        return 1
    for line in describe_figures(figures):
        print(line)
    return 0
