"""Imported once by the server process the local pool's workers fork from: the tile's modules, warmed up.

`dia_sim.tile_pool` names this module in the pool's forkserver preload list. Importing
it imports what a tile's work needs and loads the simulation's numba kernels
(`dia_sim.visit_sim.VisitSimulator.warm_up`: numba's cache, whose first load also
initialises numba's compiler, about two seconds of CPU), so that every worker forked
afterwards starts with them instead of paying for them again. Nothing else imports it.

The server also leaves Ctrl-C and SIGTERM to ap_proto, as the workers do
(`dia_sim.dask_worker_setup`), and its workers inherit that from their start: a signal
to the process group would otherwise end the server, and with it the only process that
reports the workers' exits to their nannies; a worker still storing a tile would then
outlive ap_proto's pool and commit a tile that no record accounts for.
"""

from __future__ import annotations

import signal

from . import dask_worker_setup, tile_task  # noqa: F401 - imported for the workers forked after
from .visit_sim import VisitSimulator

signal.signal(signal.SIGINT, signal.SIG_IGN)
signal.signal(signal.SIGTERM, signal.SIG_IGN)
VisitSimulator().warm_up()
