"""``ap_proto``: run the simulated Alert Production loop against an L1 database."""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

from astropy.time import Time

from l1db.cli import quiet_broken_pipe
from l1db.config import ConfigError, default_config_path, load_config
from l1db.errors import L1dbError, driver_error_reason
from l1db.frames import L1dbInputError

from ..ap_loop import ApLoop, RunOptions, TileResult, VisitPlan
from ..catalog import CatalogError
from ..pointing import parse_pointing_area
from ..visit_sim import SimConfig

__all__ = ["main"]

_LOG = logging.getLogger(__name__)

EPILOG = """\
examples:
  ap_proto -c cfg/l1db-pg.cfg -n 1000 sources.npy
  ap_proto -n 50 --pointing-area 0,20,-30,-10 --false-per-visit 500 sources.npy
  ap_proto -n 100 --divide 2 -l run.jsonl sources.npy     # 2 x 2 tiles in 4 processes

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
    p.add_argument("-n", "--num-visits", type=int, default=1, help="number of visits to run (default 1)")
    p.add_argument("-i", "--interval", type=float, default=None, help="seconds between visits (default 45)")
    p.add_argument("-e", "--explain", action="store_true", help="log the query plan of every select")
    p.add_argument("-U", "--no-update", action="store_true", help="read only: store nothing")
    p.add_argument("--start-time", default=None,
                   help="ISO time (TAI) of the first visit of an empty database (default 2026-01-01T20:00:00)")
    p.add_argument("--start-visit-id", type=int, default=None, help="first visit ID of an empty database (default 1)")
    p.add_argument("--divide", type=int, default=None,
                   help="split the field into N x N tiles processed in parallel processes (default 1)")
    p.add_argument("--fov", type=float, default=None, help="field of view diameter, degrees (default 3.5)")
    p.add_argument("--sky", choices=("south", "full"), default=None, help="pointings: south (default) or full sky")
    p.add_argument("--pointing-area", default=None, metavar="RA_MIN,RA_MAX,DEC_MIN,DEC_MAX",
                   help="confine pointings to this patch (degrees) so that fields overlap within tens of visits")
    p.add_argument("--forced-cutoff-days", type=float, default=None,
                   help="no forced photometry for objects undetected for longer (default 30)")
    p.add_argument("--detection-fraction", type=float, default=None,
                   help="probability that a catalogue source in the field is detected (default 1.0)")
    p.add_argument("--false-per-visit", type=float, default=None, help="mean noise DiaSources per field (default 5050)")
    p.add_argument("--transients-per-visit", type=float, default=None, help="mean transients per field (default 100)")
    p.add_argument("--match-radius", type=float, default=None, help="association radius, arcsec (default 1)")
    p.add_argument("--seed", type=int, default=None, help="random seed (default 1)")
    p.add_argument("--row-count-every", type=int, default=None,
                   help="log every table's row count every N visits (default 100, 0 = never)")
    p.add_argument("--daily-job-every", type=int, default=None,
                   help="run dailyJob() every N visits (default 0: between nights)")
    p.add_argument("-l", "--log", default="ap_proto_timing.jsonl",
                   help="timing log, appended to (default ap_proto_timing.jsonl)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar even on a terminal")
    p.add_argument("-v", "--verbose", action="count", default=0, help="more logging (-vv: debug)")
    return p


def _options(args: argparse.Namespace, section: dict) -> RunOptions:
    def pick(name: str, attr: str | None = None):
        value = getattr(args, attr or name)
        return section[name] if value is None else value

    area_text = pick("pointing_area")
    area = parse_pointing_area(area_text) if area_text else None
    start_time = Time(pick("start_time"), scale="tai")
    num = args.num_visits
    divide = pick("divide")
    if num < 0:
        raise ValueError(f"--num-visits must be >= 0, got {num}")
    if divide < 1:
        raise ValueError(f"--divide must be >= 1, got {divide}")
    sim = SimConfig(
        detection_fraction=pick("detection_fraction"),
        false_per_visit=pick("false_per_visit"),
        transients_per_visit=pick("transients_per_visit"),
        match_radius_arcsec=pick("match_radius"),
        forced_cutoff_days=pick("forced_cutoff_days"),
    )
    interval = pick("interval")
    if not interval > 0:
        raise ValueError(f"--interval must be positive, got {interval}")
    return RunOptions(
        num_visits=num,
        interval=interval,
        divide=divide,
        fov=pick("fov"),
        sky=pick("sky"),
        pointing_area=area,
        seed=pick("seed"),
        start_time=start_time,
        start_visit_id=pick("start_visit_id"),
        row_count_every=pick("row_count_every"),
        daily_job_every=pick("daily_job_every"),
        explain=args.explain,
        no_update=args.no_update,
        sim=sim,
    )


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
        options = _options(args, dict(config.sections["ap_proto"]))
        if not Path(args.sources).is_file():
            raise CatalogError(f"{args.sources}: sources file not found (make one with gen_sources)")
        loop = ApLoop(config, args.sources, options, args.log, argv=sys.argv if argv is None else ["ap_proto", *argv])
        progress = _Progress(options.num_visits, enabled=sys.stderr.isatty() and not args.no_progress)
        try:
            done = loop.run(progress)
        finally:
            progress.close()
    except KeyboardInterrupt:
        print("ap_proto: interrupted; the current visit was rolled back. Run again to resume.", file=sys.stderr)
        return 130
    except (ConfigError, L1dbError, CatalogError, L1dbInputError, ValueError) as exc:
        print(f"ap_proto: error: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:
        reason = driver_error_reason(exc)
        if reason is None:
            raise
        print(f"ap_proto: database error: {reason}", file=sys.stderr)
        return 1
    stopped = " (stopped by Ctrl-C; run again to resume)" if loop.stop_requested else ""
    print(f"ap_proto: {done} visit(s) done{stopped}; timing log: {args.log}", file=sys.stderr)
    return 0
