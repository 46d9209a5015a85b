"""The detections of one visit: catalogue variables, noise and transients.

Positions are in degrees. A *field* is any object with the interface of
`dia_sim.field.FieldTile`: ``contains(ra, dec) -> bool array``,
``sample_uniform(rng, n) -> (ra, dec)`` and ``area_fraction`` (the share of
the full field of view it covers, which scales the per-visit rates of noise
and transients so that tiles together give the rates of one field).
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd

from l1db.sphere import radec_to_xyz, xyz_to_radec

__all__ = ["KIND_CATALOG", "KIND_NOISE", "KIND_TRANSIENT", "simulate_detections", "scatter_positions"]

_LOG = logging.getLogger(__name__)

#: Values of the ``kind`` column.
KIND_CATALOG = 0
KIND_NOISE = 1
KIND_TRANSIENT = 2

_ARCSEC = np.pi / (180.0 * 3600.0)


def scatter_positions(
    rng: np.random.Generator, ra: np.ndarray, dec: np.ndarray, sigma_arcsec: float
) -> tuple[np.ndarray, np.ndarray]:
    """Offset positions by an isotropic gaussian of ``sigma_arcsec`` per axis.

    A 3-d gaussian step added to the unit vector and renormalised is, to first
    order in the (tiny) step, a 2-d gaussian in the tangent plane: no special
    case at the poles or across RA = 0.

    Parameters
    ----------
    rng : `numpy.random.Generator`
        Random numbers.
    ra, dec : `numpy.ndarray`
        Positions, degrees.
    sigma_arcsec : `float`
        Standard deviation of the offset along each tangent-plane axis.

    Returns
    -------
    ra, dec : `numpy.ndarray`
        Scattered positions, degrees, ra in [0, 360).
    """
    ra = np.asarray(ra, dtype=np.float64)
    dec = np.asarray(dec, dtype=np.float64)
    if sigma_arcsec <= 0 or ra.size == 0:
        return ra.copy(), dec.copy()
    xyz = radec_to_xyz(ra, dec)
    # Drawn as (3, n), axis by axis, as the seeded runs always have.
    xyz += rng.normal(scale=sigma_arcsec * _ARCSEC, size=(3, ra.size)).T
    xyz /= np.sqrt(np.einsum("ij,ij->i", xyz, xyz))[:, None]
    return xyz_to_radec(xyz)


def simulate_detections(
    rng: np.random.Generator,
    field: Any,
    cat_ra: np.ndarray,
    cat_dec: np.ndarray,
    detection_fraction: float = 1.0,
    false_per_visit: float = 5050.0,
    transients_per_visit: float = 100.0,
    scatter_arcsec: float = 0.1,
) -> pd.DataFrame:
    """Simulate the detections of one visit (or one tile of a visit).

    Parameters
    ----------
    rng : `numpy.random.Generator`
        Random numbers.
    field : `dia_sim.field.FieldTile` or alike
        The field (or tile) observed.
    cat_ra, cat_dec : `numpy.ndarray`
        Catalogue variable sources already selected inside ``field``, degrees.
    detection_fraction : `float`
        Probability that a catalogue source is detected, in [0, 1].
    false_per_visit : `float`
        Mean number of noise detections in a full field of view.
    transients_per_visit : `float`
        Mean number of real transients in a full field of view.
    scatter_arcsec : `float`
        Gaussian positional scatter (per axis) of detected catalogue sources.

    Returns
    -------
    detections : `pandas.DataFrame`
        Columns ``ra``, ``dec`` (float64, degrees) and ``kind`` (int8:
        `KIND_CATALOG`, `KIND_NOISE`, `KIND_TRANSIENT`), in that order of kinds.

    Notes
    -----
    A catalogue source whose scattered position falls outside ``field`` keeps
    its catalogue position instead: every detected source stays inside its
    tile (so tiles never detect the same source twice) and none is dropped.
    The bias is negligible: with 0.1 arcsec of scatter only sources within a
    fraction of an arcsec of the edge are concerned.
    """
    if not 0.0 <= detection_fraction <= 1.0:
        raise ValueError(f"detection_fraction {detection_fraction} outside [0, 1]")
    if false_per_visit < 0 or transients_per_visit < 0 or scatter_arcsec < 0:
        raise ValueError("rates and scatter must not be negative")
    cat_ra = np.asarray(cat_ra, dtype=np.float64)
    cat_dec = np.asarray(cat_dec, dtype=np.float64)
    if cat_ra.shape != cat_dec.shape or cat_ra.ndim != 1:
        raise ValueError("cat_ra and cat_dec must be 1-d arrays of the same length")

    if detection_fraction < 1.0:
        seen = rng.random(cat_ra.size) < detection_fraction
        cat_ra, cat_dec = cat_ra[seen], cat_dec[seen]
    ra, dec = scatter_positions(rng, cat_ra, cat_dec, scatter_arcsec)
    if ra.size and scatter_arcsec > 0:
        out = ~np.asarray(field.contains(ra, dec), dtype=bool)
        ra[out], dec[out] = cat_ra[out], cat_dec[out]

    n_noise = rng.poisson(false_per_visit * field.area_fraction)
    n_trans = rng.poisson(transients_per_visit * field.area_fraction)
    noise_ra, noise_dec = field.sample_uniform(rng, n_noise)
    trans_ra, trans_dec = field.sample_uniform(rng, n_trans)

    kind = np.empty(ra.size + n_noise + n_trans, dtype=np.int8)
    kind[: ra.size] = KIND_CATALOG
    kind[ra.size : ra.size + n_noise] = KIND_NOISE
    kind[ra.size + n_noise :] = KIND_TRANSIENT
    return pd.DataFrame(
        {
            "ra": np.concatenate((ra, np.asarray(noise_ra, np.float64), np.asarray(trans_ra, np.float64))),
            "dec": np.concatenate((dec, np.asarray(noise_dec, np.float64), np.asarray(trans_dec, np.float64))),
            "kind": kind,
        }
    )
