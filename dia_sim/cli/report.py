"""Command-line tool ``l1db_report``: one self-contained HTML page of one or more runs."""

from __future__ import annotations

import argparse
import sys

from l1db.cli import input_file_problem, quiet_broken_pipe

from ..plots import DEFAULT_THRESHOLD
from ..report import ReportError, load_runs, write_report

__all__ = ["main"]

_PROG = "l1db_report"

_DESCRIPTION = """\
Write one HTML page of one or more runs, that opens offline (figures, style
and all inline; no script, nothing fetched). Each input is a run: a CSV
written by log2csv -o (its provenance sidecar CSV.provenance.json next to it)
or a timing log read directly (a log still being written works: its torn
last line and unfinished visit are reported).

Per run: what was run (the provenance: backend, server version, config,
strategy, pixelization, density, tiles, cadence, seed, git commit, machine),
per operation the wall time's median, p95, p99 and max over the complete
visits with the rows read and stored, plot_timing's figures, failed attempts
and incomplete visits, and from 10 complete visits the survey-year
projection (plot_timing --project; with --history's figure for a
time-compressed run). With several inputs the page starts with their medians
side by side, the provenance keys that differ, and the runs overlaid.
"""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=_PROG, description=_DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("inputs", nargs="+", metavar="RUN",
                        help="per-visit CSV written by log2csv -o (name ending .csv) or timing log, one per run")
    parser.add_argument("-o", "--output", required=True, metavar="HTML", help="the HTML file to write")
    parser.add_argument("--label", nargs="+", metavar="L",
                        help="one name per run, in order (default: backend, strategy and density from the "
                        "provenance)")
    parser.add_argument("--title", metavar="TEXT", help="the page's title (default: the runs' names)")
    parser.add_argument("--threshold", type=float, default=DEFAULT_THRESHOLD, metavar="SECONDS",
                        help="slow-visit threshold of the slow-fraction figure (default: %(default)g)")
    return parser


@quiet_broken_pipe
def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit code (0: written; 1: bad input, nothing written; 2: bad arguments)."""
    args = _parser().parse_args(argv)
    problem = input_file_problem(args.inputs, "run file")
    if problem:
        print(f"{_PROG}: error: {problem}", file=sys.stderr)
        return 1
    try:
        runs = load_runs(args.inputs, args.label)
        out = write_report(runs, args.output, title=args.title, threshold=args.threshold)
    except ReportError as exc:
        print(f"{_PROG}: error: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"{_PROG}: error: cannot write {args.output}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    visits = sum(len(run.table) for run in runs)
    print(f"{_PROG}: {len(runs)} run(s), {visits:,} visit rows -> {out}", file=sys.stderr)
    print(out)
    return 0


if __name__ == "__main__":  # python -m dia_sim.cli.report
    sys.exit(main())
