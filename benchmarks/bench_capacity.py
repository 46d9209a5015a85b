"""The sustainable rate: the shortest cadence a database keeps up with, by bisection of open-loop runs.

Each probe is an open-loop ap_proto run (``--cadence C``, docs/open-loop.md)
of ``--visits`` visits, on a fresh database (``create_l1_schema --drop`` of
the config) or, with ``--state DIR``, on the history of a saved state
(``l1db_state save``: the config's database is emptied and the state
restored before every probe, so that every probe starts from the same
visit). The cadence is sustained when the run did not fall behind
(``--max-in-flight``), its verdict says it kept up, and the visits' p95
latency is within ``--budget`` seconds. Bisection between ``--fast`` (assumed
not sustained) and ``--slow`` (checked first: if it is not sustained, no
cadence in the range is) for ``--steps`` probes; prints the machine and its
load, one Markdown row per probe and the sustainable rate, 3600 / cadence
visits per hour, with the budget it used. Everything after ``--`` goes to
ap_proto (density, patch, ``--divide``, ``--workers``, ...).

Usage::

    .venv/bin/python benchmarks/bench_capacity.py -c cfg/l1db-pg.cfg --catalog sources.npy \\
        --visits 20 --budget 60 --fast 0.5 --slow 8 -- --divide camera
    # after the window is full: a state saved after a time-compressed run
    .venv/bin/python benchmarks/bench_capacity.py -c pg.cfg --catalog sources.npy --state states/pg-steady \\
        --visits 12 --fast 1 --slow 30 -- --observations-per-year 10 --pointing-area 0,7,-30,-20

The database of the config is dropped (or emptied) before every probe: never
give a config whose database holds anything else. Measure on a quiet machine
only: every probe competes with whatever else runs.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from dia_sim.open_loop import Verdict, verdict
from l1db.backends import backend_for
from l1db.config import load_config
from l1db.timing_log import machine_info, parse_log, toolkit_info

ROOT = Path(__file__).resolve().parent.parent


def _tool(name: str, *args: str, **kwargs) -> None:
    subprocess.run([sys.executable, str(ROOT / "bin" / name), *args], check=True, **kwargs)


def fresh_database(args: argparse.Namespace) -> None:
    """The config's database as the probe starts it: empty, or holding the saved state ``args.state``."""
    if args.state is None:
        _tool("create_l1_schema", "-c", str(args.config), "--drop", stdout=subprocess.DEVNULL)
        return
    config = load_config(args.config)
    backend_for(config.url).load("state")(config, args.run_dir).clear()
    run_dir = ["--run-dir", args.run_dir] if args.run_dir else []
    _tool("l1db_state", "restore", "-c", str(args.config), *run_dir, str(args.state), stdout=subprocess.DEVNULL)


def probe(cadence: float, args: argparse.Namespace) -> Verdict:
    """One open-loop run at ``cadence`` on a fresh database; its verdict (from its timing log)."""
    fresh_database(args)
    log = args.work / f"capacity-{cadence:.3f}.jsonl"
    log.unlink(missing_ok=True)
    _tool("ap_proto", "-c", str(args.config), "-l", str(log), "-n", str(args.visits), "--cadence", f"{cadence:g}",
          "--max-in-flight", str(args.max_in_flight), "--no-progress", *args.ap_proto, str(args.catalog),
          stderr=subprocess.DEVNULL)
    parsed = parse_log(log)
    return verdict(parsed.latencies, cadence, [int(b["visit"]) for b in parsed.behind])


def sustained(result: Verdict, budget: float) -> bool:
    """Kept up (not behind, no growing queue) with the p95 latency within ``budget``."""
    return result.kept_up and result.visits > 0 and result.p95 <= budget


def bisect(holds: Callable[[float], bool], fast: float, slow: float, steps: int) -> float | None:
    """The shortest cadence found to hold: ``slow`` checked first (None if it fails), then ``steps`` halvings.

    ``fast`` is assumed not to hold and is never probed.
    """
    if not holds(slow):
        return None
    for _ in range(steps):
        middle = (fast + slow) / 2
        if holds(middle):
            slow = middle
        else:
            fast = middle
    return slow


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def _machine() -> str:
    """The machine, the date and the toolkit's commit (the provenance record's own helpers)."""
    machine, commit = machine_info(), toolkit_info()["git_commit"] or "unknown"
    memory = (machine["memory_bytes"] or 0) / 2**30
    return (f"{platform.node()}: {machine['cpus']} cores, {memory:.0f} GiB; "
            f"{datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC; l1dbproto {commit[:7]}{commit[40:]}")


def main(argv: list[str] | None = None) -> int:
    """Entry point; 0 when a sustainable cadence was found in the range."""
    argv = sys.argv[1:] if argv is None else argv
    ap_proto = argv[argv.index("--") + 1:] if "--" in argv else []
    own = argv[:argv.index("--")] if "--" in argv else argv
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-c", "--config", type=Path, required=True, help="the database's config (dropped per probe)")
    parser.add_argument("--catalog", type=Path, required=True, help="gen_sources catalogue")
    parser.add_argument("--state", type=Path, help="a saved state (l1db_state save) restored before every probe "
                        "(default: an empty schema)")
    parser.add_argument("--run-dir", help="Cassandra with --state: the nodes' run dir, as for l1db_state")
    parser.add_argument("--visits", type=int, default=50, help="visits per probe (default 50)")
    parser.add_argument("--budget", type=float, default=60.0, help="p95 latency budget, seconds (default 60)")
    parser.add_argument("--fast", type=float, default=1.0, help="shortest cadence considered, seconds (default 1)")
    parser.add_argument("--slow", type=float, default=120.0, help="longest cadence considered, seconds (default 120)")
    parser.add_argument("--steps", type=int, default=5, help="bisection probes after the first (default 5)")
    parser.add_argument("--max-in-flight", type=int, default=10, help="ap_proto --max-in-flight (default 10)")
    parser.add_argument("--work", type=Path, default=Path("."), help="where the probes' logs go (default .)")
    args = parser.parse_args(own)
    args.ap_proto = ap_proto
    if not 0 < args.fast < args.slow:
        parser.error("need 0 < --fast < --slow")
    if args.state is not None and not (args.state / "manifest.json").is_file():
        parser.error(f"--state {args.state}: not a saved state (no manifest.json)")
    args.work.mkdir(parents=True, exist_ok=True)
    print(f"{_machine()}; load {_load()} at the start")
    print("| cadence (s) | sustained | visits | median latency (s) | p95 latency (s) | max in flight | "
          "probe (s) | load at start |\n|---|---|---|---|---|---|---|---|", flush=True)

    def holds(cadence: float) -> bool:
        load, started = _load(), time.monotonic()
        result = probe(cadence, args)
        ok = sustained(result, args.budget)
        print(f"| {cadence:g} | {'yes' if ok else 'no'} | {result.visits} | {result.median:.2f} | "
              f"{result.p95:.2f} | {result.max_in_flight} | {time.monotonic() - started:.0f} | {load} |", flush=True)
        return ok

    try:
        cadence = bisect(holds, args.fast, args.slow, args.steps)
    except subprocess.CalledProcessError as exc:
        print(f"bench_capacity: {Path(str(exc.cmd[1])).name} failed (exit {exc.returncode})", file=sys.stderr)
        return 1
    if cadence is None:
        print(f"\nnot sustained even at {args.slow:g} s (p95 budget {args.budget:g} s)")
        return 1
    print(f"\nsustainable: a visit every {cadence:.3g} s = {3600 / cadence:,.0f} visits per hour "
          f"(p95 latency budget {args.budget:g} s, {args.visits} visits a probe; load {_load()} at the end)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
