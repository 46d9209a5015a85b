"""The sustainable rate: the shortest cadence a database keeps up with, by bisection of open-loop runs.

Each probe is an open-loop ap_proto run (``--cadence C``, docs/open-loop.md)
of ``--visits`` visits on a fresh database (``create_l1_schema --drop`` of
the config): the cadence is sustained when the run did not fall behind
(``--max-in-flight``), its verdict says it kept up, and the visits' p95
latency is within ``--budget`` seconds. Bisection between ``--fast`` (assumed
not sustained) and ``--slow`` (checked first: if it is not sustained, no
cadence in the range is) for ``--steps`` probes; prints one Markdown row per
probe and the sustainable rate, 3600 / cadence visits per hour, with the
budget it used. Everything after ``--`` goes to ap_proto (density, patch,
``--divide``, ``--workers``, ...).

Usage::

    .venv/bin/python benchmarks/bench_capacity.py -c cfg/l1db-pg.cfg --catalog sources.npy \\
        --visits 100 --budget 60 --fast 5 --slow 120 -- --divide camera

Measure on a quiet machine only: every probe competes with whatever else runs.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

from dia_sim.open_loop import Verdict, verdict
from l1db.timing_log import parse_log

ROOT = Path(__file__).resolve().parent.parent


def probe(config: Path, catalog: Path, cadence: float, args: argparse.Namespace, work: Path) -> Verdict:
    """One open-loop run at ``cadence`` on a fresh database; its verdict (from its timing log)."""
    subprocess.run([sys.executable, str(ROOT / "bin" / "create_l1_schema"), "-c", str(config), "--drop"],
                   check=True, stdout=subprocess.DEVNULL)
    log = work / f"capacity-{cadence:.3f}.jsonl"
    log.unlink(missing_ok=True)
    subprocess.run([sys.executable, str(ROOT / "bin" / "ap_proto"), "-c", str(config), "-l", str(log),
                    "-n", str(args.visits), "--cadence", f"{cadence:g}", "--max-in-flight", str(args.max_in_flight),
                    "--no-progress", *args.ap_proto, str(catalog)], check=True, stderr=subprocess.DEVNULL)
    parsed = parse_log(log)
    return verdict(parsed.latencies, cadence, [int(b["visit"]) for b in parsed.behind])


def sustained(result: Verdict, budget: float) -> bool:
    """Kept up (not behind, no growing queue) with the p95 latency within ``budget``."""
    return result.kept_up and result.visits > 0 and result.p95 <= budget


def main(argv: list[str] | None = None) -> int:
    """Entry point; 0 when a sustainable cadence was found in the range."""
    argv = sys.argv[1:] if argv is None else argv
    ap_proto = argv[argv.index("--") + 1:] if "--" in argv else []
    own = argv[:argv.index("--")] if "--" in argv else argv
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-c", "--config", type=Path, required=True, help="the database's config (dropped per probe)")
    parser.add_argument("--catalog", type=Path, required=True, help="gen_sources catalogue")
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
    args.work.mkdir(parents=True, exist_ok=True)
    print("| cadence (s) | sustained | visits | p95 latency (s) | max in flight |\n|---|---|---|---|---|")

    def run(cadence: float) -> bool:
        result = probe(args.config, args.catalog, cadence, args, args.work)
        ok = sustained(result, args.budget)
        print(f"| {cadence:g} | {'yes' if ok else 'no'} | {result.visits} | {result.p95:.2f} | "
              f"{result.max_in_flight} |", flush=True)
        return ok

    fast, slow = args.fast, args.slow
    if not run(slow):
        print(f"\nnot sustained even at {slow:g} s (p95 budget {args.budget:g} s)")
        return 1
    for _ in range(args.steps):
        middle = (fast + slow) / 2
        if run(middle):
            slow = middle
        else:
            fast = middle
    print(f"\nsustainable: a visit every {slow:.3g} s = {3600 / slow:,.0f} visits per hour "
          f"(p95 latency budget {args.budget:g} s, {args.visits} visits a probe)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
