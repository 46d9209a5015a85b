"""Small vector helpers for points on the unit sphere (private to dia_sim).

All angles at the interfaces are degrees (RA, Dec); unit vectors are
``(..., 3)`` float64 arrays in the ICRS-like frame x = (RA 0, Dec 0),
z = north pole.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "cap_solid_angle",
    "radec_to_xyz", "xyz_to_radec", "tangent_basis", "orthonormal_basis", "sample_cap"]


def cap_solid_angle(radius_rad: float) -> float:
    """Solid angle (sr) of a cap of the given angular radius.

    ``2 pi (1 - cos r)`` written as ``4 pi sin^2(r / 2)`` to avoid the
    cancellation that costs ~1e-13 relative precision at a field's radius.
    """
    return 4.0 * np.pi * np.sin(0.5 * radius_rad) ** 2


def radec_to_xyz(ra: np.ndarray, dec: np.ndarray) -> np.ndarray:
    """Unit vectors, shape ``(n, 3)``, of RA/Dec in degrees."""
    ra_r = np.radians(np.asarray(ra, dtype=np.float64))
    dec_r = np.radians(np.asarray(dec, dtype=np.float64))
    cos_dec = np.cos(dec_r)
    return np.stack([cos_dec * np.cos(ra_r), cos_dec * np.sin(ra_r), np.sin(dec_r)], axis=-1)


def xyz_to_radec(xyz: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """RA in [0, 360) and Dec in [-90, 90] degrees of (not necessarily unit) vectors."""
    x, y, z = xyz[..., 0], xyz[..., 1], xyz[..., 2]
    ra = np.degrees(np.arctan2(y, x)) % 360.0
    # A tiny negative angle gives exactly 360.0 after the modulo; fold it back.
    ra = np.where(ra >= 360.0, 0.0, ra)
    dec = np.degrees(np.arctan2(z, np.hypot(x, y)))
    return ra, dec


def tangent_basis(ra: float, dec: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Centre, east and north unit vectors of the tangent plane at (ra, dec).

    East points to increasing RA and north to increasing Dec; at a pole the
    RA of the pointing fixes the orientation, so the basis stays well defined.
    """
    a, d = np.radians(ra), np.radians(dec)
    center = np.array([np.cos(d) * np.cos(a), np.cos(d) * np.sin(a), np.sin(d)])
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
