"""Imported once by the server process the local pool's workers fork from: the tile's modules, warmed up.

`dia_sim.tile_pool` names this module in the pool's forkserver preload list. Importing
it imports what a tile's work needs and loads the simulation's numba kernels
(`dia_sim.visit_sim.VisitSimulator.warm_up`: numba's cache, whose first load also
initialises numba's compiler, about two seconds of CPU), so that every worker forked
afterwards starts with them instead of paying for them again. Nothing else imports it.
"""

from __future__ import annotations

from . import dask_worker_setup, tile_task  # noqa: F401 - imported for the workers forked after
from .visit_sim import VisitSimulator

VisitSimulator().warm_up()
