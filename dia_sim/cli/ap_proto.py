"""``ap_proto``: run the simulated Alert Production loop against an L1 database."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import time
from typing import TYPE_CHECKING

from l1db.cli import quiet_broken_pipe
from l1db.config import ConfigError, L1dbConfig, default_config_path
from l1db.config_model import add_arguments, flag, option_fields, validate_section
from l1db.errors import L1dbError, driver_error_reason

from ..options import ApProtoSection, RunOptions, load_ap_config, run_options

if TYPE_CHECKING:
    from ..visit_plan import TileResult, VisitPlan

__all__ = ["main", "flags_table"]

_LOG = logging.getLogger(__name__)

EPILOG = """\
examples:
  ap_proto -c cfg/l1db-pg.cfg -n 1000 sources.npy
  ap_proto -n 50 --pointing-area 0,20,-30,-10 --false-per-visit 500 sources.npy
  ap_proto -n 100 --divide 2 -l run.jsonl sources.npy     # 2 x 2 tiles on the machine's cores
  ap_proto -n 100 --divide 4 --workers 3 sources.npy       # 16 tiles a visit in 3 worker processes
  ap_proto -n 100 --divide 4 --scheduler tcp://10.0.0.1:8786 sources.npy   # on a Dask cluster
  ap_proto -n 600 --pointing-area 0,12,-34,-20 --observations-per-year 20 sources.npy
                                       # time-compressed: the 12-month window fills in ~200 visits
  ap_proto -n 10 --divide camera sources.npy              # the camera's 189 detectors, one tile each
  ap_proto -n 200 --cadence 30 --divide 4 sources.npy      # open loop: a visit released every 30 s

A run resumes after the last visit stored in the database; --start-time and
--start-visit-id apply only to an empty database. Options not given on the
command line come from the config's [ap_proto] section, then the defaults.
"""


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="ap_proto",
        description="Simulate the Alert Production pipeline's use of the L1 database, visit by visit, "
        "and log the time of every operation.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("sources", help="variable-source catalogue written by gen_sources (.npy)")
    p.add_argument("-c", "--config", default=None, help="config file (default: the packaged SQLite config)")
    p.add_argument("-n", "--num-visits", default="1", help="number of visits to run (default 1)")
    p.add_argument("-e", "--explain", action="store_true", help="log the query plan of every select")
    p.add_argument("-U", "--no-update", action="store_true", help="read only: store nothing")
    # Every [ap_proto] option, documented by its declaration (dia_sim.options);
    # a value given here replaces the config file's and is validated the same way.
    add_arguments(p, ApProtoSection)
    p.add_argument("-l", "--log", default="ap_proto_timing.jsonl",
                   help="timing log, appended to (default ap_proto_timing.jsonl)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar even on a terminal")
    p.add_argument("-v", "--verbose", action="count", default=0, help="more logging (-vv: debug)")
    return p


def flags_table() -> str:
    """The table of ap_proto's arguments (docs/commands.md): one row per argument of ``ap_proto --help``, its text.

    Written into docs/commands.md by ``python -m dia_sim.cli.readme_tables docs/*.md``
    (a test checks it is current).
    """
    parser = _parser()
    formatter = parser._get_formatter()

    def cell(text: str) -> str:
        return " ".join(text.split()).replace("|", "\\|")

    lines = ["| ap_proto argument | meaning |", "|---|---|"]
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction):
            continue
        if action.option_strings:
            name = "/".join(action.option_strings)
            if action.nargs != 0:
                name += f" {action.metavar or action.dest.upper()}"
        else:  # a positional, named as --help names it
            name = str(action.metavar or action.dest)
        lines.append(f"| `{cell(name)}` | {cell(formatter._expand_help(action))} |")
    return "\n".join(lines) + "\n"


def _options(args: argparse.Namespace, config: L1dbConfig) -> RunOptions:
    """The run's options: command line over the config's [ap_proto] section, every value checked.

    ``config`` is loaded with the [ap_proto] section (`dia_sim.options.load_ap_config`).

    Raises
    ------
    l1db.config.ConfigError
        One line naming the option (``--seed``) or the config file, section and key.
    """
    given = {key: getattr(args, key) for key in option_fields(ApProtoSection) if getattr(args, key) is not None}

    def where(key: str | None) -> str:
        # A key from the command line (also the command line's own, num_visits), or from the file.
        if key in given or (key is not None and key not in config.sections.get("ap_proto", {})):
            return flag(key)
        return config.where("ap_proto", key)

    section = validate_section(ApProtoSection, {**config.sections.get("ap_proto", {}), **given}, where)
    if section.observations_per_year:
        for name in ("interval", "days_between_nights"):
            if name in given:
                raise ConfigError(f"{flag(name)} and {where('observations_per_year')} exclude each other: the "
                                  f"cadence is derived from the observations per year (give one or the other)")
    return run_options(section, where, num_visits=args.num_visits, explain=args.explain, no_update=args.no_update)


class _Progress:
    """Progress bar on a terminal, one log line every so often otherwise."""

    def __init__(self, total: int, enabled: bool) -> None:
        self.total = total
        self.bar = None
        self.count = 0
        self.start = time.monotonic()
        if enabled:
            from tqdm import tqdm

            self.bar = tqdm(total=total, unit="visit", dynamic_ncols=True)

    def __call__(self, plan: VisitPlan, results: list[TileResult]) -> None:
        self.count += 1
        sources = sum(r.sources for r in results)
        objects = sum(r.objects_read for r in results)
        if self.bar is not None:
            self.bar.set_postfix(visit=plan.visit_id, src=sources, obj_read=objects, refresh=False)
            self.bar.update(1)
        elif self.count == self.total or self.count % max(1, self.total // 10) == 0:
            rate = self.count / max(time.monotonic() - self.start, 1e-9)
            print(f"ap_proto: visit {plan.visit_id} done ({self.count}/{self.total}, {rate:.2f} visits/s; "
                  f"{sources} DiaSources, {objects} DiaObjects read)", file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


@quiet_broken_pipe
def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit code (0 done, 1 error, 2 usage, 130 interrupted)."""
    args = _parser().parse_args(argv)
    level = logging.WARNING if args.verbose == 0 else logging.INFO if args.verbose == 1 else logging.DEBUG
    if args.explain:
        level = min(level, logging.INFO)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # Dask's own chatter (workers starting and stopping) only with -vv: the run's output is ap_proto's.
    logging.getLogger("distributed").setLevel(logging.DEBUG if args.verbose >= 2 else logging.CRITICAL)
    # The config and the options first: a bad value is said before the loop is imported.
    try:
        config = load_ap_config(args.config or default_config_path())
        options = _options(args, config)
    except KeyboardInterrupt:
        print("ap_proto: interrupted at the start; nothing was stored.", file=sys.stderr)
        return 130
    except (ConfigError, ValueError) as exc:
        return _error(exc)
    return _run(args, argv, config, options)


def _error(exc: Exception) -> int:
    """Say an expected error in one line on stderr; return exit code 1."""
    print(f"ap_proto: error: {exc}", file=sys.stderr)
    return 1


def _run(args: argparse.Namespace, argv: list[str] | None, config: L1dbConfig, options: RunOptions) -> int:
    """Run the loop of a validated config and options; returns the exit code."""
    # The loop and what it raises, after the arguments, the config and the options: --help, a usage
    # error and a bad config need none of pandas, numba, SQLAlchemy, healpy and Dask (a second of CPU).
    from l1db.frames import L1dbInputError

    from ..ap_loop import ApLoop, VisitAbandoned
    from ..catalog import CatalogError
    from ..retries import VisitFailed
    from ..tile_pool import PoolError

    try:
        loop = ApLoop(config, args.sources, options, args.log, argv=sys.argv if argv is None else ["ap_proto", *argv])
        if options.compression is not None:
            print(f"ap_proto: {options.compression.describe(loop.window_days)}", file=sys.stderr)
        progress = _Progress(options.num_visits, enabled=sys.stderr.isatty() and not args.no_progress)
        try:
            done = loop.run(progress)
        finally:
            progress.close()
    except VisitAbandoned as exc:
        # A second Ctrl-C or SIGTERM during a visit: what was kept.
        print(f"ap_proto: interrupted; {exc}. Run again to resume.", file=sys.stderr)
        return 130
    except KeyboardInterrupt:
        # A second Ctrl-C or SIGTERM between visits (a row count, or a daily job: rolled back, or if it was
        # committing, finished and logged), or at the start.
        print("ap_proto: interrupted between visits; every visit stored is complete and logged. "
              "Run again to resume.", file=sys.stderr)
        return 130
    except (ConfigError, L1dbError, CatalogError, L1dbInputError, VisitFailed, PoolError, ValueError) as exc:
        return _error(exc)
    except Exception as exc:
        reason = driver_error_reason(exc)
        if reason is None:
            raise
        print(f"ap_proto: database error: {reason}", file=sys.stderr)
        return 1
    stopped = ""
    if loop.stop_signal == signal.SIGINT:
        stopped = " (stopped by Ctrl-C; run again to resume)"
    elif loop.stop_signal == signal.SIGTERM:
        stopped = f" (stopped by SIGTERM after finishing {loop.finishing}; run again to resume)"
    print(f"ap_proto: {done} visit(s) done{stopped}; timing log: {args.log}", file=sys.stderr)
    if loop.verdict is not None:
        if loop.verdict.behind_visit is not None:
            print(f"ap_proto: the database fell behind: the release of visit {loop.verdict.behind_visit} found "
                  f"{options.max_in_flight} visits in flight (--max-in-flight); the run stopped once they were "
                  f"stored and logged", file=sys.stderr)
        print(f"ap_proto: {loop.verdict.line()}", file=sys.stderr)
    return 0


if __name__ == "__main__":  # python -m dia_sim.cli.ap_proto
    sys.exit(main())
