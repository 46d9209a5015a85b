"""Fault injection: random ``kill -9`` of ap_proto and server restarts, then the database checked against its log.

For each backend, on a fresh database:

1. kills: ``--kills`` times, start ap_proto, let it run to a random point
   (one time in five during its first 3 s, at start-up; otherwise 1-3
   visits after its start, then a random fraction of a second: in the reads,
   in the store, between visits) and ``kill -9`` its whole process group;
   the next start resumes after the last stored visit;
2. restarts: one more run of ``--visits`` visits during which the database
   server is restarted ``--restarts`` times at random points (down for a
   random 0.5 s to ``--down`` s each: PostgreSQL through pg_ctlcluster,
   MariaDB by stopping and starting mariadbd, Cassandra by ``kill -9`` of
   node 1 of ``--run-dir`` or ``cassandra_nodes stop``, at random, then
   ``cassandra_nodes start --node 1``); the run must ride through them and
   end with exit code 0. SQLite has no server: it gets the kills only;
3. checks (`_faults.check_database`): stored visits contiguous, every tile
   present, no key stored twice, rows per visit equal to what the log says
   was stored, the latest-version table holding the newest version of every
   object; and from the log: failures recorded, visits marked incomplete.

Prints one Markdown table row per backend; exit code 0 when every check
passed. Restarting a server affects everyone using it: keep ``--down`` short.

Usage::

    .venv/bin/python benchmarks/fault_injection.py --backends sqlite,postgresql,mysql --kills 20 --restarts 5
    # A node of its own for Cassandra (not the shared test node: see _faults):
    cassandra_nodes start --run-dir /tmp/faultnode
    .venv/bin/python benchmarks/fault_injection.py --backends cassandra --run-dir /tmp/faultnode --down 5
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import io
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import add_backend_options, backend_database
from _faults import NODE_STOPS, RESTARTABLE, check_database, restart_server

from dia_sim.catalog import generate_catalog
from dia_sim.log2csv import logs_to_table
from l1db.cli.create_l1_schema import main as create_l1_schema
from l1db.timing_log import parse_log

ROOT = Path(__file__).resolve().parent.parent
DB_NAME = "l1db_fault_injection"
#: A visit has ended in the log when its closing record is there.
VISIT_MARK = '"op": "visit"'


@dataclasses.dataclass
class Outcome:
    """What one backend went through, and what the checks found."""

    backend: str
    kills: int = 0
    restarts: int = 0
    #: Of the restarts, those that were a kill -9 of the server (Cassandra's node).
    hard: int = 0
    down: float = 0.0
    visits: int = 0
    failures: int = 0
    retries_max: int = 0
    lost: float = 0.0
    incomplete: int = 0
    unlogged: int = 0
    exit_codes: list[int] = dataclasses.field(default_factory=list)
    #: Visits each killed run closed before its kill.
    kill_points: list[int] = dataclasses.field(default_factory=list)
    problems: list[str] = dataclasses.field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.problems


def _env(args: argparse.Namespace) -> dict[str, str] | None:
    """ap_proto's environment: with ``--run-dir``, its nodes' run dir, whose start time its retry budget follows."""
    if args.run_dir is None:
        return None
    from l1db.cassandra.server import RUN_DIR_ENV

    return {**os.environ, RUN_DIR_ENV: str(args.run_dir)}


def _command(config: Path, catalog: Path, log: Path, n: int, args: argparse.Namespace) -> list[str]:
    return [sys.executable, str(ROOT / "bin" / "ap_proto"), "-c", str(config), "-l", str(log), "-n", str(n),
            "--pointing-area", args.patch, "--divide", str(args.divide), "--seed", str(args.seed),
            "--row-count-every", "0", "--no-progress", str(catalog)]


def _marks(log: Path) -> tuple[int, int]:
    """(provenance records, closed visits) in the log so far."""
    if not log.exists():
        return 0, 0
    text = log.read_text(errors="replace")
    return text.count('"record": "provenance"'), text.count(VISIT_MARK)


def _started(log: Path, provenance: int, visits: int) -> bool:
    """Whether the log holds at least so many provenance records and closed visits."""
    seen = _marks(log)
    return seen[0] >= provenance and seen[1] >= visits


def _wait_until(proc: subprocess.Popen, condition, timeout: float = 600.0) -> bool:
    """Poll ``condition`` until it holds (True) or the process ends (False)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        if proc.poll() is not None:
            return False
        time.sleep(0.02)
    raise RuntimeError(f"no progress in {timeout:g} s")


def kill_at_random(config: Path, catalog: Path, log: Path, args: argparse.Namespace,
                   rng: random.Random) -> tuple[int, int]:
    """Start ap_proto and ``kill -9`` its process group at a random point.

    Returns its exit code and the visits it closed before the kill.
    """
    provenance, visits = _marks(log)
    proc = subprocess.Popen(_command(config, catalog, log, 1_000_000, args), start_new_session=True, env=_env(args),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        # One kill in five at start-up; the others once the run is under way: 1-3 visits on, and a bit.
        if rng.random() < 0.2:
            time.sleep(rng.uniform(0.0, 3.0))
        else:
            extra = rng.randint(1, 3)
            _wait_until(proc, lambda: _started(log, provenance + 1, visits + extra))
            time.sleep(rng.uniform(0.0, args.kill_jitter))
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    return proc.returncode, _marks(log)[1] - visits


def run_with_restarts(config: Path, catalog: Path, log: Path, backend: str, args: argparse.Namespace,
                      rng: random.Random, outcome: Outcome) -> int:
    """Run ``--visits`` visits, restarting the server ``--restarts`` times during them; return the exit code."""
    proc = subprocess.Popen(_command(config, catalog, log, args.visits, args), env=_env(args),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        if backend in RESTARTABLE:
            for _ in range(args.restarts):
                _, visits = _marks(log)
                after = visits + rng.randint(1, 3)
                if not _wait_until(proc, lambda: _marks(log)[1] >= after):
                    break  # The run ended first: fewer restarts than asked, said in the report.
                time.sleep(rng.uniform(0.0, args.kill_jitter))
                down = rng.uniform(0.5, max(0.5, args.down))
                how = "stop" if backend != "cassandra" else (
                    rng.choice(NODE_STOPS) if args.node_stop == "random" else args.node_stop)
                outcome.down += restart_server(backend, down=down, run_dir=args.run_dir, how=how)
                outcome.restarts += 1
                outcome.hard += how == "kill"
        _, err = proc.communicate(timeout=3600)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    if proc.returncode != 0:
        outcome.problems.append(f"the run with restarts ended with exit code {proc.returncode}: "
                                f"{err.strip().splitlines()[-1] if err.strip() else ''}")
    return proc.returncode


def inject(backend: str, url: str, catalog: Path, work: Path, args: argparse.Namespace) -> Outcome:
    """Kills, restarts and checks on one fresh database."""
    rng = random.Random(f"{args.seed}-{backend}")
    outcome = Outcome(backend)
    start = time.monotonic()
    config = work / f"{backend}.cfg"
    layout = "" if url.startswith("cassandra") else f"[l1db]\ndia_object_index = {args.strategy}\n"
    config.write_text(f"[database]\nurl = {url}\n\n{layout}\n[ap_proto]\nfalse_per_visit = {args.noise}\n"
                      f"retry_attempts = {args.retry_attempts}\nretry_wait = {args.retry_wait}\n")
    with contextlib.redirect_stdout(io.StringIO()):  # its table listing would mix with the report
        created = create_l1_schema(["-c", str(config), "--drop"])
    if created != 0:
        raise RuntimeError(f"create_l1_schema failed for {backend}")
    log = work / f"{backend}.jsonl"
    log.unlink(missing_ok=True)
    for _ in range(args.kills):
        code, closed = kill_at_random(config, catalog, log, args, rng)
        outcome.exit_codes.append(code)
        outcome.kill_points.append(closed)
        outcome.kills += 1
    run_with_restarts(config, catalog, log, backend, args, rng, outcome)

    check = check_database(config, [log])
    outcome.visits = check.visits
    outcome.problems += check.problems
    outcome.unlogged = len(check.unlogged)
    if outcome.unlogged > outcome.kills:
        outcome.problems.append(f"{outcome.unlogged} visits stored but not logged, more than the {outcome.kills} kills")
    parsed = parse_log(log)
    table, _ = logs_to_table([log])
    outcome.failures = len(parsed.failures)
    outcome.retries_max = int(parsed.failures["attempt"].max()) if len(parsed.failures) else 0
    outcome.lost = float((parsed.failures["lost"] + parsed.failures["wait"]).sum())
    outcome.incomplete = int((table["complete"] == 0).sum())
    if outcome.restarts and not outcome.failures:
        outcome.problems.append("server restarts but no failure recorded")
    if len(parsed.failures) and not parsed.failures["retry"].all():
        outcome.problems.append("a failure was not retried (the run gave up)")
    outcome.seconds = time.monotonic() - start
    return outcome


def report(outcomes: list[Outcome], args: argparse.Namespace) -> str:
    """The outcomes as a Markdown table, with the run's settings."""
    lines = [
        f"fault injection: {args.kills} kills per backend, then {args.visits} visits with {args.restarts} server "
        f"restarts (down 0.5-{args.down:g} s each), divide {args.divide}, {args.strategy} (SQL), seed {args.seed}, "
        f"retry_attempts {args.retry_attempts}, retry_wait {args.retry_wait:g} s (Cassandra: raised to outlast a "
        f"node's start, as ap_proto does); s down = the server unavailable, its start included",
        "",
        "| backend | visits stored | kills | restarts (s down) | failures recorded | most attempts | s lost | "
        "incomplete rows | stored, unlogged | checks | minutes |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|",
    ]
    for o in outcomes:
        restarts = f"{o.restarts} ({o.down:.1f})" if o.backend in RESTARTABLE else "n/a"
        if o.hard:
            restarts += f", {o.hard} by kill -9"
        checks = "all passed" if o.ok else "; ".join(o.problems)
        lines.append(f"| {o.backend} | {o.visits} | {o.kills} | {restarts} | {o.failures} | {o.retries_max} | "
                     f"{o.lost:.1f} | {o.incomplete} | {o.unlogged} | {checks} | {o.seconds / 60:.1f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns 0 when every check passed on every backend."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=10, help="kill -9 of ap_proto per backend (default 10)")
    parser.add_argument("--restarts", type=int, default=3, help="server restarts during the last run (default 3)")
    parser.add_argument("--visits", type=int, default=30, help="visits of the run with restarts (default 30)")
    parser.add_argument("--down", type=float, default=3.0, help="longest a server stays down, s (default 3)")
    parser.add_argument("--kill-jitter", type=float, default=0.5,
                        help="random delay after the chosen visit before a kill or restart, s (default 0.5)")
    parser.add_argument("--divide", type=int, default=1, help="ap_proto --divide (default 1)")
    parser.add_argument("--strategy", default="last_object_table", help="dia_object_index of the SQL backends")
    parser.add_argument("--patch", default="0,6,-20,-14", help="pointing area RA_MIN,RA_MAX,DEC_MIN,DEC_MAX")
    parser.add_argument("--per-visit", type=float, default=1000, help="catalogue sources per visit (default 1000)")
    parser.add_argument("--noise", type=float, default=500, help="ap_proto false_per_visit (default 500)")
    parser.add_argument("--retry-attempts", type=int, default=5, help="ap_proto retry_attempts (default 5)")
    parser.add_argument("--retry-wait", type=float, default=2.0, help="ap_proto retry_wait, s (default 2)")
    parser.add_argument("--catalog", type=Path, default=None, help="catalogue (made if missing)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--keep", type=Path, default=None,
                        help="keep the configs and timing logs in this folder (default: a temporary one)")
    parser.add_argument("--run-dir", type=Path, default=None,
                        help="Cassandra: the run dir of the node to restart (cassandra_nodes --run-dir), node 1 of "
                             "which --cassandra-hosts must name; needed with --restarts on Cassandra, and never the "
                             "shared test node")
    parser.add_argument("--node-stop", choices=(*NODE_STOPS, "random"), default="random",
                        help="Cassandra: how each restart takes the node down, kill -9 or cassandra_nodes stop "
                             "(default random: either, at random)")
    add_backend_options(parser)
    args = parser.parse_args(argv)
    if "cassandra" in args.backends and args.restarts and args.run_dir is None:
        parser.error("--restarts on Cassandra needs --run-dir (the node to restart), or --restarts 0")
    backends = args.backends
    outcomes = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        if args.keep is not None:
            args.keep.mkdir(parents=True, exist_ok=True)
            work = args.keep
        catalog = args.catalog or work / "sources.npy"
        if not catalog.exists():
            generate_catalog(catalog, per_visit=args.per_visit, seed=args.seed)
        for backend in backends:
            with backend_database(backend, DB_NAME, work, args) as url:
                outcome = inject(backend, url, catalog, work, args)
            outcomes.append(outcome)
            print(f"fault_injection: {backend}: {'ok' if outcome.ok else 'FAILED'} ({outcome.visits} visits, "
                  f"{outcome.failures} failures; visits closed by each killed run: {outcome.kill_points}; "
                  f"exit codes {sorted(set(outcome.exit_codes))})", file=sys.stderr, flush=True)
    print(report(outcomes, args))
    return 0 if all(o.ok for o in outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())
