"""``ap_proto``: run the simulated Alert Production loop against an L1 database."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import time
from typing import Any

from l1db.cli import quiet_broken_pipe
from l1db.config import OPTIONS, ConfigError, L1dbConfig, Option, default_config_path, load_config
from l1db.errors import L1dbError, driver_error_reason
from l1db.frames import L1dbInputError

from ..ap_loop import ApLoop, RunOptions, TileResult, VisitFailed, VisitPlan
from ..catalog import CatalogError
from ..compression import Cadence, derive_cadence
from ..ids import MAX_VISIT
from ..pointing import centre_area_deg2, check_area_in_sky, parse_pointing_area
from ..schedule import parse_time
from ..visit_sim import SimConfig

__all__ = ["main"]

_LOG = logging.getLogger(__name__)

EPILOG = """\
examples:
  ap_proto -c cfg/l1db-pg.cfg -n 1000 sources.npy
  ap_proto -n 50 --pointing-area 0,20,-30,-10 --false-per-visit 500 sources.npy
  ap_proto -n 100 --divide 2 -l run.jsonl sources.npy     # 2 x 2 tiles in 4 processes
  ap_proto -n 600 --pointing-area 0,12,-34,-20 --observations-per-year 20 sources.npy
                                       # time-compressed: the 12-month window fills in ~200 visits

A run resumes after the last visit stored in the database; --start-time and
--start-visit-id apply only to an empty database. Options not given on the
command line come from the config's [ap_proto] section, then the defaults.
"""


#: Short flags of the [ap_proto] options that have one.
_SHORT_FLAGS = {"interval": "-i"}
#: Metavars of the options whose values have a form.
_METAVARS = {"pointing_area": "RA_MIN,RA_MAX,DEC_MIN,DEC_MAX", "start_time": "ISO_TAI"}


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _metavar(opt: Option) -> str:
    if opt.name in _METAVARS:
        return _METAVARS[opt.name]
    if opt.choices is not None:
        return "{" + ",".join(str(c) for c in opt.choices) + "}"
    return "N" if opt.type is int else "X"


def _ap_proto_options() -> list[Option]:
    return [opt for opt in OPTIONS if opt.section == "ap_proto"]


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
    # Every [ap_proto] config option, with its documentation; values are
    # validated by the option's declaration, as in a config file.
    for opt in _ap_proto_options():
        flags = [f for f in (_SHORT_FLAGS.get(opt.name), _flag(opt.name)) if f]
        default = opt.default if opt.default != "" else "none"
        p.add_argument(*flags, dest=opt.name, default=None, metavar=_metavar(opt),
                       help=f"{opt.doc} (default {default}; allowed: {opt.allowed()})".replace("%", "%%"))
    p.add_argument("-l", "--log", default="ap_proto_timing.jsonl",
                   help="timing log, appended to (default ap_proto_timing.jsonl)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar even on a terminal")
    p.add_argument("-v", "--verbose", action="count", default=0, help="more logging (-vv: debug)")
    return p


def _options(args: argparse.Namespace, config: L1dbConfig) -> RunOptions:
    """The run's options: command line over the config's [ap_proto] section, every value checked.

    Raises
    ------
    l1db.config.ConfigError
        One line naming the option (``--seed``) or the config file and key.
    """
    section = config.sections["ap_proto"]
    values: dict[str, Any] = {}
    where: dict[str, str] = {}
    for opt in _ap_proto_options():
        text = getattr(args, opt.name)
        if text is None:
            values[opt.name] = section[opt.name]
            where[opt.name] = f"{config.path}: [ap_proto] {opt.name!r}" if config.path else opt.name
        else:
            where[opt.name] = _flag(opt.name)
            values[opt.name] = opt.parse(text, where[opt.name])
    try:
        num = int(args.num_visits)
    except ValueError:
        num = -1
    if num < 0:
        raise ConfigError(f"--num-visits: bad value {args.num_visits!r}; allowed: an integer >= 0")
    try:
        start_time = parse_time(values["start_time"])
    except ValueError as exc:
        raise ConfigError(f"{where['start_time']}: {exc}") from None
    if not 0 <= values["start_visit_id"] < MAX_VISIT:
        raise ConfigError(f"{where['start_visit_id']}: bad value {values['start_visit_id']}; "
                          f"allowed: an integer from 0 to {MAX_VISIT - 1}")
    area = None
    if values["pointing_area"]:
        try:
            area = parse_pointing_area(values["pointing_area"])
            check_area_in_sky(area, values["sky"])
        except ValueError as exc:
            raise ConfigError(f"{where['pointing_area']}: {exc}") from None
    cadence = _compression(args, values, where, area)
    sim = SimConfig(
        detection_fraction=values["detection_fraction"],
        false_per_visit=values["false_per_visit"],
        transients_per_visit=values["transients_per_visit"],
        match_radius_arcsec=values["match_radius"],
        forced_cutoff_days=values["forced_cutoff_days"],
    )
    return RunOptions(
        num_visits=num,
        interval=cadence.interval if cadence else values["interval"],
        days_between_nights=cadence.days_between_nights if cadence else values["days_between_nights"],
        divide=values["divide"],
        fov=values["fov"],
        sky=values["sky"],
        pointing_area=area,
        seed=values["seed"],
        start_time=start_time,
        start_visit_id=values["start_visit_id"],
        row_count_every=values["row_count_every"],
        daily_job_every=values["daily_job_every"],
        retry_attempts=values["retry_attempts"],
        retry_wait=values["retry_wait"],
        explain=args.explain,
        no_update=args.no_update,
        sim=sim,
        compression=cadence,
    )


def _compression(args: argparse.Namespace, values: dict[str, Any], where: dict[str, str],
                 area: tuple[float, float, float, float] | None) -> Cadence | None:
    """The cadence of ``observations_per_year`` (None when 0); it replaces the interval and days between nights."""
    if not values["observations_per_year"]:
        return None
    for name in ("interval", "days_between_nights"):
        if getattr(args, name) is not None:
            raise ConfigError(f"{_flag(name)} and {where['observations_per_year']} exclude each other: the "
                              f"cadence is derived from the observations per year (give one or the other)")
    try:
        return derive_cadence(values["observations_per_year"], centre_area_deg2(values["sky"], area, values["fov"]),
                              fov_deg=values["fov"])
    except ValueError as exc:
        raise ConfigError(f"{where['observations_per_year']}: {exc}") from None


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
    try:
        config = load_config(args.config or default_config_path())
        options = _options(args, config)
        loop = ApLoop(config, args.sources, options, args.log, argv=sys.argv if argv is None else ["ap_proto", *argv])
        if options.compression is not None:
            print(f"ap_proto: {options.compression.describe(loop.window_days)}", file=sys.stderr)
        progress = _Progress(options.num_visits, enabled=sys.stderr.isatty() and not args.no_progress)
        try:
            done = loop.run(progress)
        finally:
            progress.close()
    except KeyboardInterrupt:
        # A second Ctrl-C or SIGTERM.
        print("ap_proto: interrupted; the current visit was rolled back. Run again to resume.", file=sys.stderr)
        return 130
    except (ConfigError, L1dbError, CatalogError, L1dbInputError, VisitFailed, ValueError) as exc:
        print(f"ap_proto: error: {exc}", file=sys.stderr)
        return 1
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
        stopped = " (stopped by SIGTERM after finishing the current visit; run again to resume)"
    print(f"ap_proto: {done} visit(s) done{stopped}; timing log: {args.log}", file=sys.stderr)
    return 0
