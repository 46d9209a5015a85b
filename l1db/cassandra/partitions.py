"""Spatial and time partitions of the Cassandra layout.

A row's partition is (sky pixel of its position, time partition of its time):
the sky pixel comes from the configured `l1db.pixelization.Pixelization`
(any of lsst-sphgeom's: HTM, Q3C, MQ3C, HEALPix) at a coarse level, the time
partition is the number of whole ``time_partition_days`` since MJD 0. A read
queries every partition that can hold a row of its region and window, and the
client trims the rows to the exact region and window.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from ..pixelization import Pixelization

__all__ = ["Partitioning", "PART_COLUMN", "TIME_PART_COLUMN"]

#: Column holding a row's sky-pixel partition.
PART_COLUMN = "apdb_part"
#: Column holding a row's time partition (DiaObject, DiaSource, DiaForcedSource).
TIME_PART_COLUMN = "apdb_time_part"

# Regions are turned into every pixel they touch: merging ranges would only add
# partitions to query.
_MAX_RANGES = 1_000_000


class Partitioning:
    """Which partitions hold a position and time, and which a region and window touch.

    Parameters
    ----------
    options : mapping
        The ``[cassandra]`` options (``part_pixelization``,
        ``part_pixel_level``, ``time_partition_days``).
    """

    def __init__(self, options: Mapping[str, Any]) -> None:
        self.pixelization = Pixelization(options["part_pixelization"], options["part_pixel_level"], _MAX_RANGES)
        self.days = int(options["time_partition_days"])

    def pixels(self, ra: np.ndarray, dec: np.ndarray) -> np.ndarray:
        """Spatial partition (int64) of each position, degrees."""
        return self.pixelization.pixel_index(ra, dec)

    def time_partitions(self, mjd: np.ndarray) -> np.ndarray:
        """Time partition (int64) of each MJD."""
        return np.floor(np.asarray(mjd, dtype=np.float64) / self.days).astype(np.int64)

    def region_pixels(self, region: Any) -> np.ndarray:
        """Every spatial partition that can hold a position inside ``region``."""
        ranges = self.pixelization.envelope(region)
        if not ranges:
            return np.empty(0, dtype=np.int64)
        return np.concatenate([np.arange(start, end, dtype=np.int64) for start, end in ranges])

    def window_partitions(self, start_mjd: float, end_mjd: float) -> list[int]:
        """Time partitions that hold a time in [start_mjd, end_mjd]."""
        first, last = self.time_partitions(np.array([start_mjd, end_mjd]))
        return list(range(int(first), int(last) + 1))
