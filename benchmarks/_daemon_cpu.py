"""CPU seconds of the long-lived processes of a test run: servers, nodes, test workers (bench_test_suite.sh).

The test suite's own census (tests/cpu_census.py) counts what each test's
process and the children it reaps use; a server started in the background
(a Cassandra node's JVM, PostgreSQL, MariaDB) is nobody's child to reap, so
its CPU shows only in the machine's total. This samples every process's CPU
time from /proc every ``--every`` seconds until stopped (SIGTERM, SIGINT) and
then prints the CPU seconds per kind of process, each process counted at its
last sample: a process that lives less than one interval may be missed, which
is why the per-test census stays the figure for short ones.

    python3 benchmarks/_daemon_cpu.py [--every 2] [--out FILE]
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import sys
import time
from collections import defaultdict
from pathlib import Path

_TICK = os.sysconf("SC_CLK_TCK")

#: (kind, pattern of the command line), the first that matches names the process.
KINDS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("nodetool (JVM)", re.compile(r"java .*org\.apache\.cassandra\.tools\.NodeTool")),
    ("Cassandra node (JVM)", re.compile(r"java .*-Dcassandra")),
    ("other JVM", re.compile(r"(^|/)java ")),
    ("PostgreSQL", re.compile(r"^postgres|/postgres ")),
    ("MariaDB", re.compile(r"mariadbd|mysqld")),
    ("Dask scheduler/worker", re.compile(r"dask[ -](scheduler|worker)|distributed\.cli")),
    ("pytest worker", re.compile(r"pytest|xdist|execnet|exec\(eval\(sys\.stdin")),
    ("chromium", re.compile(r"chrom")),
)


def _sample(seen: dict[tuple[int, int], tuple[float, str]]) -> None:
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_text()
            cmd = Path(entry.path, "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        cpu = (int(fields[11]) + int(fields[12])) / _TICK
        key = (int(entry.name), int(fields[19]))  # pid and start time: a reused pid is another process
        if cmd:
            seen[key] = (cpu, cmd)
        elif key in seen:  # a zombie keeps its last command line
            seen[key] = (cpu, seen[key][1])


def _kind(cmd: str) -> str:
    return next((kind for kind, pattern in KINDS if pattern.search(cmd)), "other")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--every", type=float, default=2.0, help="seconds between samples (default 2)")
    parser.add_argument("--out", type=Path, default=None, help="write the summary here as well as to stdout")
    args = parser.parse_args()
    seen: dict[tuple[int, int], tuple[float, str]] = {}
    _sample(seen)
    at_start = set(seen)
    stop = []
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.append(True))
    while not stop:
        time.sleep(args.every)
        _sample(seen)
    totals: dict[str, float] = defaultdict(float)
    counts: dict[str, int] = defaultdict(int)
    for key, (cpu, cmd) in seen.items():
        kind = _kind(cmd)
        if key in at_start and kind in ("other", "other JVM"):
            continue  # the machine's own processes, running before the suite
        totals[kind] += cpu
        counts[kind] += 1
    lines = ["CPU seconds of the processes seen (each at its last sample; started before the run: whole):"]
    lines += [f"  {kind:24s} {totals[kind]:8.1f} s  ({counts[kind]} processes)"
              for kind in sorted(totals, key=totals.get, reverse=True)]
    text = "\n".join(lines) + "\n"
    sys.stdout.write(text)
    if args.out is not None:
        args.out.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
