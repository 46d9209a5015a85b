"""The sky pixelizations a config may name, the levels each allows and the default levels.

Apart from `l1db.pixelization` so that the config (which validates these
choices) and the reports can be read without loading what computes pixels:
numba and its kernels, SQLAlchemy. Imports nothing from the package.
"""

from __future__ import annotations

import lsst.sphgeom

__all__ = ["PIXELIZATION_KINDS", "LEVEL_LIMITS", "DEFAULT_PIXEL_LEVELS"]

PIXELIZATION_KINDS = ("htm", "healpix", "q3c", "mq3c")
"""Accepted values of `l1db.pixelization.Pixelization`'s ``kind``."""

# Modified-Q3C indices are (face + 10) * 4**level + ..., which at sphgeom's
# MAX_LEVEL 30 reach 2**64: only levels up to 29 fit an int64 (a BIGINT column).
LEVEL_LIMITS = {
    "htm": (1, lsst.sphgeom.HtmPixelization.MAX_LEVEL),
    "healpix": (0, 29),
    "q3c": (1, lsst.sphgeom.Q3cPixelization.MAX_LEVEL),
    "mq3c": (1, lsst.sphgeom.Mq3cPixelization.MAX_LEVEL - 1),
}
"""Lowest and highest level (HEALPix: order) of each kind, both included."""

#: The pixelId level used when the config's ``pixel_level`` is 0, per pixelization of the SQL backends.
DEFAULT_PIXEL_LEVELS = {"htm": 20, "healpix": 16}
