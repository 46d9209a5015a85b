"""ap_proto runs of the tests: the command line, in process or as a subprocess, and waiting for its visits.

Every test that runs ap_proto on the small pointing patch builds its command
here, so that the patch and the low-density options are stated once. A test
that watches a running ap_proto (to kill it, to restart a server under it)
waits with `wait_for_visits`, which reads the timing log with its one parser
(`l1db.timing_log.parse_log`) and fails the test when the visits do not come.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from l1db.timing_log import parse_log

__all__ = ["PATCH", "RUN_OPTIONS", "AP_PROTO", "ap_proto_args", "ap_proto_command", "run_ap_proto",
           "visits_logged", "wait_for_visits"]

#: Pointings of the tests' runs: a small patch of the southern sky (RA 0..6, Dec -20..-14), so that fields overlap
#: and the history reads have work to do.
PATCH = "0,6,-20,-14"
#: Options of every test run: the patch, a small population of false detections and transients, no progress bar.
RUN_OPTIONS: tuple[str, ...] = ("--pointing-area", PATCH, "--false-per-visit", "100", "--transients-per-visit", "10",
                                "--no-progress")
#: The ap_proto program of the source tree (run by this interpreter: no install needed).
AP_PROTO = Path(__file__).resolve().parent.parent / "bin" / "ap_proto"


def ap_proto_args(config: Path, sources: Path, log: Path, *extra: object) -> list[str]:
    """ap_proto's arguments: ``-c config -l log``, `RUN_OPTIONS`, ``extra`` (later options win), the catalogue."""
    return ["-c", str(config), "-l", str(log), *RUN_OPTIONS, *map(str, extra), str(sources)]


def ap_proto_command(config: Path, sources: Path, log: Path, *extra: object) -> list[str]:
    """The command line of an ap_proto subprocess with `ap_proto_args`."""
    return [sys.executable, str(AP_PROTO), *ap_proto_args(config, sources, log, *extra)]


def run_ap_proto(config: Path, sources: Path, log: Path, *extra: object) -> int:
    """Run ap_proto in this process (``main(argv)``) with `ap_proto_args`; return its exit code."""
    from dia_sim.cli.ap_proto import main

    return main(ap_proto_args(config, sources, log, *extra))


def visits_logged(log: Path) -> int:
    """The ``visit`` timing records in ``log`` (one per visit, or per tile of a tiled visit); 0 if no log yet."""
    if not log.exists():
        return 0
    timings = parse_log(log).timings
    return int((timings["op"] == "visit").sum())


def wait_for_visits(log: Path, n: int, timeout: float, proc: subprocess.Popen | None = None,
                    interval: float = 0.05) -> int:
    """Wait until ``log`` holds ``n`` visit records (`visits_logged`); return how many it holds then.

    Fails the test (``pytest.fail``) if ``timeout`` seconds pass first, or if
    ``proc`` (the run writing the log, when given) ends first.
    """
    deadline = time.monotonic() + timeout
    seen, done = -1, 0
    while True:
        # The log is parsed again only when it has grown: a poll is then one stat call, not a
        # pandas parse, and the waiting costs the busy machine no CPU.
        size = log.stat().st_size if log.exists() else 0
        if size != seen:
            seen, done = size, visits_logged(log)
        if done >= n:
            return done
        if proc is not None and proc.poll() is not None:
            pytest.fail(f"ap_proto ended (exit {proc.returncode}) with {done} of {n} visits logged in {log}")
        if time.monotonic() >= deadline:
            pytest.fail(f"{done} of {n} visits logged in {log} within {timeout:g} s")
        time.sleep(interval)
