"""What a visit is and what a tile of it gave: the small types the driver and the workers share.

The driver (`dia_sim.ap_loop.ApLoop`) plans each visit (`plan_visit`: its
pointing and band, drawn from a generator seeded by (seed, visit), so a
visit is the same in a first run, after a resume or in a retry) and sends
the plan with every tile's task; the worker
(`dia_sim.tile_processor.TileProcessor`) processes a tile of it and returns
its counts (`TileResult`).
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

import numpy as np

from l1db.constants import to_mjd_tai

from .options import RunOptions
from .pointing import random_pointings
from .rows import BANDS

if TYPE_CHECKING:
    from astropy.time import Time

__all__ = ["VisitPlan", "TileResult", "plan_visit"]


@dataclasses.dataclass(frozen=True)
class VisitPlan:
    """What one visit is: its ID, time, pointing, band and the tiles to process."""

    visit_id: int
    mjd: float
    ra: float
    dec: float
    band: str
    tiles: tuple[int, ...]
    #: Its store may come after a later visit's (an open-loop run, or a visit left behind by one):
    #: `l1db.api.L1db.store`'s ``out_of_order``.
    out_of_order: bool = False


@dataclasses.dataclass(frozen=True)
class TileResult:
    """Counts of one processed tile."""

    visit_id: int
    tile: int
    objects_read: int
    sources: int
    new_objects: int
    forced: int


def plan_visit(visit_id: int, time: Time | float, options: RunOptions,
               tiles: tuple[int, ...] | None = None, out_of_order: bool = False) -> VisitPlan:
    """Pointing and band of a visit, drawn from a generator seeded by (seed, visit).

    ``time`` is the visit's time, a `Time` or an MJD (TAI); ``out_of_order``
    as `VisitPlan.out_of_order`.
    """
    rng = np.random.default_rng([options.seed, visit_id])
    ra, dec = random_pointings(rng, 1, options.sky, options.pointing_area, options.fov)
    band = BANDS[int(rng.integers(len(BANDS)))]
    if tiles is None:
        tiles = tuple(range(options.n_tiles))
    mjd = to_mjd_tai(time)
    return VisitPlan(visit_id, mjd, float(ra[0]), float(dec[0]), band, tiles, out_of_order)
