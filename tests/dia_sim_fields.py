"""Stand-in fields for the dia_sim tests: a circle with the `FieldTile` interface.

Keeps the simulation tests independent of `dia_sim.field`; it has the
attributes the simulation uses: ``region``, ``contains``, ``sample_uniform``,
``area_fraction``, ``center_ra``, ``center_dec``, ``fov_deg``.
"""

from __future__ import annotations

import numpy as np
from lsst import sphgeom


class CircleField:
    """The whole circular field of view (``area_fraction`` = 1, or as given)."""

    def __init__(self, center_ra: float, center_dec: float, fov_deg: float = 3.5, area_fraction: float = 1.0):
        self.center_ra, self.center_dec, self.fov_deg = center_ra, center_dec, fov_deg
        self.area_fraction = area_fraction
        center = sphgeom.UnitVector3d(sphgeom.LonLat.fromDegrees(center_ra, center_dec))
        self.region = sphgeom.Circle(center, sphgeom.Angle.fromDegrees(fov_deg / 2.0))
        self._center = np.array([center.x(), center.y(), center.z()])
        self._cos_r = np.cos(np.radians(fov_deg / 2.0))

    def contains(self, ra: np.ndarray, dec: np.ndarray) -> np.ndarray:
        ra_r, dec_r = np.radians(ra), np.radians(dec)
        xyz = np.stack([np.cos(dec_r) * np.cos(ra_r), np.cos(dec_r) * np.sin(ra_r), np.sin(dec_r)], axis=-1)
        return xyz @ self._center >= self._cos_r

    def sample_uniform(self, rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
        # Uniform in the cap around the pole, then rotated onto the centre.
        z = rng.uniform(self._cos_r, 1.0, n)
        phi = rng.uniform(0.0, 2.0 * np.pi, n)
        s = np.sqrt(1.0 - z * z)
        local = np.stack([s * np.cos(phi), s * np.sin(phi), z], axis=-1)
        c = self._center
        helper = np.array([1.0, 0.0, 0.0]) if abs(c[2]) > 0.9 else np.array([0.0, 0.0, 1.0])
        e1 = np.cross(helper, c)
        e1 /= np.linalg.norm(e1)
        e2 = np.cross(c, e1)
        xyz = local[:, :1] * e1 + local[:, 1:2] * e2 + local[:, 2:] * c
        ra = np.degrees(np.arctan2(xyz[:, 1], xyz[:, 0])) % 360.0
        dec = np.degrees(np.arcsin(np.clip(xyz[:, 2], -1.0, 1.0)))
        return ra, dec
