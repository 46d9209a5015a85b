"""How long the local nodes of a run dir took to start, as `l1db.cassandra.server` measured it.

`server.start` records each node's last start (from the JVM's launch to CQL
answering) in ``RUN_DIR/nodeN/start.seconds`` (`server.start_seconds`). The
longest is what a client must outlast when a node restarts: ``ap_proto`` lets
its retry budget follow it (`l1db.api.L1db.restart_seconds`).
"""

from __future__ import annotations

import os
from pathlib import Path

from . import server

__all__ = ["last_start_seconds"]


def last_start_seconds(run_dir: str | os.PathLike[str] | None = None) -> float | None:
    """The longest last start among the nodes of ``run_dir`` (default `server.default_run_dir`), in seconds.

    `None` if the run dir has no node, or none was started by `server.start` since it records them.
    """
    folder = Path(run_dir) if run_dir is not None else server.default_run_dir()
    info = server.cluster_info(folder)
    if info is None:
        return None
    times = [server.start_seconds(folder / f"node{i}") for i in range(1, info.nodes + 1)]
    known = [t for t in times if t is not None]
    return max(known) if known else None
