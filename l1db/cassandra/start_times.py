"""How long the local nodes of a run dir took to start, as their own logs say.

Each node of a run dir (`l1db.cassandra.server`) logs to
``RUN_DIR/nodeN/logs/system.log``; a start begins with the line
``Configuration location: ...`` and ends with ``Startup complete``, each with
its time (the ISO 8601 date of the shipped ``logback.xml``). The time between
the two in a node's last complete start is what a client must outlast when
that node restarts (the JVM's own launch before its first line, about a
second, is not in it). ``ap_proto`` lets its retry budget follow it
(`l1db.api.L1db.restart_seconds`).
"""

from __future__ import annotations

import datetime
import os
import re
from pathlib import Path

from . import server

__all__ = ["last_start_seconds", "node_start_seconds"]

_TIME = re.compile(r"(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3})")
_BEGIN = "Configuration location:"
_END = "Startup complete"


def _time(line: str) -> datetime.datetime | None:
    found = _TIME.search(line)
    return datetime.datetime.strptime(found.group(1), "%Y-%m-%d %H:%M:%S,%f") if found else None


def node_start_seconds(log: str | os.PathLike[str]) -> float | None:
    """Seconds of the last complete start in a node's ``system.log``, or `None` if it logged none."""
    began: datetime.datetime | None = None
    seconds = None
    try:
        with open(log, errors="replace") as lines:
            for line in lines:
                if _BEGIN in line:
                    began = _time(line)
                elif _END in line and began is not None:
                    ended = _time(line)
                    if ended is not None:
                        seconds = (ended - began).total_seconds()
                    began = None
    except OSError:
        return None
    return seconds


def last_start_seconds(run_dir: str | os.PathLike[str] | None = None) -> float | None:
    """The longest last start among the nodes of ``run_dir`` (default `server.default_run_dir`), in seconds.

    `None` if the run dir has no node, or none logged a complete start.
    """
    folder = Path(run_dir) if run_dir is not None else server.default_run_dir()
    info = server.cluster_info(folder)
    if info is None:
        return None
    times = [node_start_seconds(folder / f"node{i}" / "logs" / "system.log") for i in range(1, info.nodes + 1)]
    known = [t for t in times if t is not None]
    return max(known) if known else None
