"""Command-line tool ``log2csv``: timing logs to a per-visit CSV table."""

from __future__ import annotations

import argparse
import os
import sys

from l1db.cli import input_file_problem, quiet_broken_pipe

from ..log2csv import logs_to_table, provenance_path, write_csv, write_provenance
from ..open_loop import run_verdicts

__all__ = ["main"]

_DESCRIPTION = """\
Turn ap_proto timing logs into a CSV table with one row per (run, visit):
row counts read and stored, and the wall (_real) and cpu (_cpu = user + sys)
seconds of every operation. The records of a visit's tiles, from one or
several log files, are aggregated: wall time is the maximum over tiles, cpu
time and row counts are summed; sum_select is the per-tile SUM of the three
selects. Lines that hold no timing record are ignored; malformed records
(a truncated last line among them) are counted and reported on stderr.
The complete column is 1 for a visit whose every tile finished in that run,
0 for a visit abandoned by a kill or a failure (plots leave those out);
failures counts the visit's failed attempts and lost_real the seconds they
cost (their work and the waits before the retries); loop_failures counts
those of the loop's own work logged with the visit (the daily job before it,
the row counts after it).

With -o, the runs' provenance records are written next to the CSV as
OUT.provenance.json (plot_timing reads them for its titles and labels).
"""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="log2csv", description=_DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("logs", nargs="+", metavar="LOG", help="timing log files (several runs and tiles allowed)")
    parser.add_argument("-o", "--output", metavar="CSV", help="output CSV file (default: standard output)")
    parser.add_argument(
        "--provenance", metavar="JSON",
        help="where to write the provenance sidecar (default: CSV.provenance.json with -o, none on stdout)",
    )
    return parser


@quiet_broken_pipe
def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit code (0: records converted, 1: no record or bad input)."""
    args = _parser().parse_args(argv)
    problem = input_file_problem(args.logs, "log file")
    if problem:
        print(f"log2csv: {problem}", file=sys.stderr)
        return 1
    try:
        table, parsed = logs_to_table(args.logs)
    except OSError as exc:
        print(f"log2csv: cannot read log: {exc}", file=sys.stderr)
        return 1
    if parsed.timings.empty and parsed.failures.empty:
        print(f"log2csv: no timing record found in {', '.join(args.logs)} "
              f"({parsed.malformed} malformed)", file=sys.stderr)
        return 1
    sidecar = args.provenance or (provenance_path(args.output) if args.output else None)
    try:
        if args.output:
            write_csv(table, args.output)
        else:
            write_csv(table, sys.stdout)
        if sidecar:
            write_provenance(sidecar, parsed.provenance, args.logs, parsed.behind)
    except BrokenPipeError:
        # A reader that stopped early (``log2csv LOG | head``): no message, as the
        # Python docs advise, and no second error when the interpreter flushes stdout.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except OSError as exc:
        print(f"log2csv: cannot write output: {exc}", file=sys.stderr)
        return 1
    runs = table["run"].nunique()
    where = args.output or "standard output"
    incomplete = int((table["complete"] == 0).sum())
    print(f"log2csv: {len(parsed.timings)} records, {runs} run(s), {len(table)} visit rows "
          f"({incomplete} incomplete, {len(parsed.failures)} failed attempt(s)) -> {where}; "
          f"{parsed.malformed} malformed record(s)", file=sys.stderr)
    # Open-loop runs: their verdict (latency percentiles over the visits, from the records).
    for run, result in run_verdicts(parsed.latencies, parsed.provenance, parsed.behind).items():
        print(f"log2csv: run {run}: {result.line()}", file=sys.stderr)
    return 0


if __name__ == "__main__":  # python -m dia_sim.cli.log2csv
    sys.exit(main())
