"""What every Dask worker of a `dia_sim.tile_pool.TilePool` needs before its first tile.

Its own module so that `dia_sim.tile_pool` imports Dask only for a pool that
has workers (a one-process run does not pay for the import).
"""

from __future__ import annotations

import signal
import threading
from typing import Any

from distributed.diagnostics.plugin import WorkerPlugin


class WorkerSetup(WorkerPlugin):
    """What every worker of the pool needs before its first tile.

    Dask's statistical profiler samples every thread's stack every 10 ms in
    the worker's process: its CPU time would be counted in every operation's
    ``user`` time (process CPU time), so it is stopped. The local pool's
    worker processes also leave Ctrl-C and SIGTERM (sent to the whole
    process group) to ap_proto, which decides whether the visit finishes.
    """

    name = "l1dbproto-worker-setup"
    idempotent = True

    def __init__(self, ignore_stop_signals: bool) -> None:
        self.ignore_stop_signals = ignore_stop_signals

    def setup(self, worker: Any) -> None:
        for name in ("profile", "profile-cycle"):
            callback = worker.periodic_callbacks.get(name)
            if callback is not None:
                callback.stop()
        # A worker process runs its event loop, and so this, in its main thread; a worker thread never does.
        if self.ignore_stop_signals and threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
