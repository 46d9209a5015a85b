"""Where the machine's CPU went during a test session: one line at the end of the run.

The suite's wall time on two cores is set by the CPU it needs (BENCHMARKS.md, "The test
suite's wall time"): this line says, for each run of README command (b), how busy the cores
were and how much of it the servers took, so that a slower run can be explained from its
own output. Read from /proc (Linux); elsewhere nothing is printed.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

#: Server processes by their command name (``/proc/PID/comm``), as the census names them.
SERVERS = {"java": "Cassandra JVMs", "postgres": "PostgreSQL", "mariadbd": "MariaDB"}

_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


@dataclass(frozen=True)
class Sample:
    """The machine's busy and idle CPU seconds, and each server process's CPU seconds, at one moment."""

    busy: float
    idle: float
    #: pid -> (census name, CPU seconds of the process and the children it reaped).
    servers: dict[int, tuple[str, float]]


def _process_cpu(pid: int) -> tuple[str, float] | None:
    try:
        comm = Path(f"/proc/{pid}/comm").read_text().strip()
        if comm not in SERVERS:
            return None
        # The fields after the command name, which may hold spaces: utime stime cutime cstime are 14-17.
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return SERVERS[comm], sum(int(x) for x in fields[11:15]) / _TICK


def sample() -> Sample | None:
    """The machine's CPU now, or None where /proc cannot tell."""
    try:
        jiffies = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    except (OSError, ValueError, IndexError):
        return None
    idle = jiffies[3] + jiffies[4]  # idle + iowait
    servers = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (cpu := _process_cpu(int(entry.name))) is not None:
            servers[int(entry.name)] = cpu
    return Sample(busy=(sum(jiffies[:8]) - idle) / _TICK, idle=idle / _TICK, servers=servers)


def census_line(start: Sample, end: Sample) -> str:
    """One line: the cores' busy share between two samples, and the servers' CPU seconds."""
    busy, idle = end.busy - start.busy, end.idle - start.idle
    by_server: dict[str, float] = {}
    for pid, (name, seconds) in end.servers.items():
        before = start.servers.get(pid)
        by_server[name] = by_server.get(name, 0.0) + seconds - (before[1] if before and before[0] == name else 0.0)
    servers = ", ".join(f"{name} {seconds:.0f} s" for name, seconds in sorted(by_server.items()))
    return (f"CPU during the session: {busy:.0f} s busy, {idle:.0f} s idle over {os.cpu_count()} cores "
            f"({busy / max(busy + idle, 1e-9):.0%} busy); servers still running at the end: "
            f"{servers or 'none'} (a process started in the session counts from its start; "
            f"one that ended is not counted)")


def process_cpu() -> float:
    """CPU seconds of this process and of the children it has reaped (subprocess runs), so far."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


#: How many of the costliest tests the summary names.
TOP_TESTS = 25


def cpu_lines(per_test: dict[str, float], top: int = TOP_TESTS) -> list[str]:
    """The costliest tests and test files by client CPU (the test process and the processes it ran).

    Servers' CPU is not in these figures (the census line has it): a test's own processes are
    what a change to the test itself can save.
    """
    if not per_test:
        return []
    by_file: dict[str, float] = {}
    for nodeid, seconds in per_test.items():
        name = nodeid.split("::", 1)[0]
        by_file[name] = by_file.get(name, 0.0) + seconds
    total = sum(per_test.values())
    lines = [f"client CPU of the tests: {total:.0f} s; the {top} costliest tests (setup + call + teardown):"]
    lines += [f"{s:8.1f} s  {n}" for n, s in sorted(per_test.items(), key=lambda kv: -kv[1])[:top]]
    lines.append(f"by test file (the {top} costliest):")
    lines += [f"{s:8.1f} s  {n}" for n, s in sorted(by_file.items(), key=lambda kv: -kv[1])[:top]]
    return lines


def write_per_test(per_test: dict[str, float], path: Path) -> Path:
    """Every test's client CPU seconds, costliest first, as ``seconds<TAB>test id`` lines in ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = sorted(per_test.items(), key=lambda kv: -kv[1])
    path.write_text("".join(f"{s:.2f}\t{n.replace(chr(10), ' ')}\n" for n, s in rows))
    return path
