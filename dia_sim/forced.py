"""Which DiaObjects get forced photometry in a visit."""

from __future__ import annotations

import logging

import numpy as np

__all__ = ["forced_targets"]

_LOG = logging.getLogger(__name__)


def forced_targets(
    obj_ids: np.ndarray,
    last_detection_mjd: np.ndarray,
    matched_mask: np.ndarray,
    visit_mjd: float,
    cutoff_days: float = 30.0,
) -> np.ndarray:
    """Select the DiaObjects in the field that get a DiaForcedSource.

    An object gets forced photometry when no source of this visit was
    associated with it and its last detection is at most ``cutoff_days``
    before the visit.

    Parameters
    ----------
    obj_ids : `numpy.ndarray`
        diaObjectId of the objects in the field (or tile); only its length is
        used, to check the other arrays against.
    last_detection_mjd : `numpy.ndarray`
        lastDiaSourceMjdTai of each object. NaN (never detected) means no
        forced photometry.
    matched_mask : `numpy.ndarray` of `bool`
        True for objects a source of this visit was associated with.
    visit_mjd : `float`
        Time of the visit, MJD TAI.
    cutoff_days : `float`
        Objects not detected for longer than this get no forced photometry.

    Returns
    -------
    mask : `numpy.ndarray` of `bool`
        True for the objects that get a DiaForcedSource.
    """
    n = len(obj_ids)
    last = np.asarray(last_detection_mjd, dtype=np.float64)
    matched = np.asarray(matched_mask, dtype=bool)
    if last.shape != (n,) or matched.shape != (n,):
        raise ValueError(
            f"forced_targets: {n} objects but {last.shape} last-detection times and {matched.shape} flags"
        )
    if cutoff_days < 0:
        raise ValueError(f"forced photometry cutoff must not be negative, got {cutoff_days}")
    # NaN compares False, so never-detected objects drop out here.
    return ~matched & (visit_mjd - last <= cutoff_days)
