"""Caps and tangent planes on the unit sphere (private to dia_sim).

All angles at the interfaces are degrees (RA, Dec); unit vectors are
``(..., 3)`` float64 arrays in the frame of `l1db.sphere`, which owns the
RA/Dec <-> unit vector conversions.
"""

from __future__ import annotations

import numpy as np

from l1db.sphere import radec_to_xyz

__all__ = ["cap_solid_angle", "tangent_basis", "orthonormal_basis", "sample_cap"]


def cap_solid_angle(radius_rad: float) -> float:
    """Solid angle (sr) of a cap of the given angular radius.

    ``2 pi (1 - cos r)`` written as ``4 pi sin^2(r / 2)`` to avoid the
    cancellation that costs ~1e-13 relative precision at a field's radius.
    """
    return 4.0 * np.pi * np.sin(0.5 * radius_rad) ** 2


def tangent_basis(ra: float, dec: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Centre, east and north unit vectors of the tangent plane at (ra, dec).

    East points to increasing RA and north to increasing Dec; at a pole the
    RA of the pointing fixes the orientation, so the basis stays well defined.
    """
    a, d = np.radians(ra), np.radians(dec)
    center = radec_to_xyz(ra, dec)
    east = np.array([-np.sin(a), np.cos(a), 0.0])
    north = np.array([-np.sin(d) * np.cos(a), -np.sin(d) * np.sin(a), np.cos(d)])
    return center, east, north


def orthonormal_basis(center: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Two unit vectors completing ``center`` to an orthonormal basis."""
    center = center / np.linalg.norm(center)
    helper = np.array([0.0, 0.0, 1.0]) if abs(center[2]) < 0.9 else np.array([1.0, 0.0, 0.0])
    u = np.cross(helper, center)
    u /= np.linalg.norm(u)
    return u, np.cross(center, u)


def sample_cap(rng: np.random.Generator, center: np.ndarray, radius_rad: float, n: int) -> np.ndarray:
    """``n`` unit vectors uniform on the sphere inside a cap (circle) of a given radius."""
    u, v = orthonormal_basis(center)
    # Solid angle is uniform in cos(theta): draw that, and the azimuth uniformly.
    cos_t = 1.0 - rng.random(n) * (2.0 * np.sin(0.5 * radius_rad) ** 2)
    sin_t = np.sqrt(np.maximum(0.0, 1.0 - cos_t * cos_t))
    phi = rng.random(n) * (2.0 * np.pi)
    c = center / np.linalg.norm(center)
    return (
        cos_t[:, None] * c
        + (sin_t * np.cos(phi))[:, None] * u
        + (sin_t * np.sin(phi))[:, None] * v
    )
