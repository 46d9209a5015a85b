"""Slow, obviously correct reference implementations that the fast code is tested against.

Shared file: each area appends its own functions under a comment header.
"""

import math

import numpy as np

# ---------------------------------------------------------------------------
# dia_sim: association, forced photometry, DiaObject summaries
# ---------------------------------------------------------------------------


def naive_angular_separation(ra1, dec1, ra2, dec2):
    """Angular separation in degrees (Vincenty formula), broadcasting inputs in degrees."""
    ra1, dec1, ra2, dec2 = (np.radians(np.asarray(a, dtype=np.float64)) for a in (ra1, dec1, ra2, dec2))
    dra = ra2 - ra1
    num = np.hypot(
        np.cos(dec2) * np.sin(dra),
        np.cos(dec1) * np.sin(dec2) - np.sin(dec1) * np.cos(dec2) * np.cos(dra),
    )
    den = np.sin(dec1) * np.sin(dec2) + np.cos(dec1) * np.cos(dec2) * np.cos(dra)
    return np.degrees(np.arctan2(num, den))


def naive_associate(src_ra, src_dec, obj_ra, obj_dec, radius_arcsec=1.0):
    """Brute-force O(N*M) twin of `dia_sim.association.associate`.

    Every source gets its nearest object within the radius (ties: lower object
    index); an object chosen by several sources stays with the nearest one (ties:
    lower source index), the others get -1.
    """
    n, m = len(src_ra), len(obj_ra)
    index = np.full(n, -1, dtype=np.int64)
    if n == 0 or m == 0:
        return index
    sep = naive_angular_separation(
        np.asarray(src_ra)[:, None], np.asarray(src_dec)[:, None],
        np.asarray(obj_ra)[None, :], np.asarray(obj_dec)[None, :],
    ) * 3600.0
    dist = np.full(n, np.inf)
    for i in range(n):
        j = int(np.argmin(sep[i]))  # argmin takes the lowest index among equals
        if sep[i, j] <= radius_arcsec:
            index[i], dist[i] = j, sep[i, j]
    for j in set(index[index >= 0].tolist()):
        takers = [i for i in range(n) if index[i] == j]
        keep = min(takers, key=lambda i: (dist[i], i))
        for i in takers:
            if i != keep:
                index[i] = -1
    return index


def naive_forced_targets(last_detection_mjd, matched_mask, visit_mjd, cutoff_days=30.0):
    """Row-by-row twin of `dia_sim.forced.forced_targets`."""
    out = np.zeros(len(matched_mask), dtype=bool)
    for i, (last, matched) in enumerate(zip(last_detection_mjd, matched_mask)):
        out[i] = (not matched) and (not math.isnan(last)) and visit_mjd - last <= cutoff_days
    return out


def naive_object_summaries(sources, bands="ugrizy"):
    """Per-object summaries recomputed object by object from a DiaSource frame.

    Returns ``{diaObjectId: {column: value}}`` for the summary columns that
    `dia_sim.rows.make_dia_objects` computes from DiaSources.
    """
    out = {}
    for oid, grp in sources.groupby("diaObjectId"):
        ra, dec = np.radians(grp["ra"].to_numpy()), np.radians(grp["dec"].to_numpy())
        x = np.mean(np.cos(dec) * np.cos(ra))
        y = np.mean(np.cos(dec) * np.sin(ra))
        z = np.mean(np.sin(dec))
        row = {
            "ra": math.degrees(math.atan2(y, x)) % 360.0,
            "dec": math.degrees(math.atan2(z, math.hypot(x, y))),
            "nDiaSources": len(grp),
            "firstDiaSourceMjdTai": grp["midpointMjdTai"].min(),
            "lastDiaSourceMjdTai": grp["midpointMjdTai"].max(),
        }
        for b in bands:
            g = grp[grp["band"] == b].sort_values("midpointMjdTai", kind="stable")
            f = g["psfFlux"].to_numpy(np.float64)
            e = g["psfFluxErr"].to_numpy(np.float64)
            t = g["midpointMjdTai"].to_numpy(np.float64)
            row[f"{b}_psfFluxNdata"] = len(g)
            if len(g) == 0:
                for c in ("Mean", "MeanErr", "Sigma", "Min", "Max", "MaxSlope", "ErrMean"):
                    row[f"{b}_psfFlux{c}"] = math.nan
                continue
            w = 1.0 / e**2
            row[f"{b}_psfFluxMean"] = np.sum(w * f) / np.sum(w)
            row[f"{b}_psfFluxMeanErr"] = 1.0 / math.sqrt(np.sum(w))
            row[f"{b}_psfFluxSigma"] = np.std(f, ddof=1) if len(g) > 1 else math.nan
            row[f"{b}_psfFluxMin"] = f.min()
            row[f"{b}_psfFluxMax"] = f.max()
            row[f"{b}_psfFluxErrMean"] = e.mean()
            slopes = [(f[k + 1] - f[k]) / (t[k + 1] - t[k]) for k in range(len(f) - 1) if t[k + 1] > t[k]]
            row[f"{b}_psfFluxMaxSlope"] = max(slopes) if slopes else math.nan
        out[oid] = row
    return out


# ---------------------------------------------------------------------------
# l1db.pixelization: pixel indices, region membership, pixel ranges
# ---------------------------------------------------------------------------


def naive_in_circle(ra, dec, center_ra, center_dec, radius_deg):
    """Points within ``radius_deg`` of the centre (all degrees): brute-force angular distance."""
    return naive_angular_separation(ra, dec, center_ra, center_dec) <= radius_deg


def naive_htm_index(ra, dec, level):
    """HTM index of each point, one lsst-sphgeom call per point."""
    import lsst.sphgeom

    pixelization = lsst.sphgeom.HtmPixelization(level)
    return np.array(
        [
            pixelization.index(lsst.sphgeom.UnitVector3d(lsst.sphgeom.LonLat.fromDegrees(float(a), float(d))))
            for a, d in zip(ra, dec)
        ],
        dtype=np.int64,
    )


def naive_q3c_index(ra, dec, level, modified=False):
    """Q3C (``modified``: modified-Q3C) index of each point, one lsst-sphgeom call per point."""
    import lsst.sphgeom

    cls = lsst.sphgeom.Mq3cPixelization if modified else lsst.sphgeom.Q3cPixelization
    pixelization = cls(level)
    return np.array(
        [
            pixelization.index(lsst.sphgeom.UnitVector3d(lsst.sphgeom.LonLat.fromDegrees(float(a), float(d))))
            for a, d in zip(ra, dec)
        ],
        dtype=np.int64,
    )


def naive_region_contains(region, ra, dec):
    """``region.contains`` of each point, one lsst-sphgeom call per point."""
    import lsst.sphgeom

    return np.array(
        [
            region.contains(lsst.sphgeom.UnitVector3d(lsst.sphgeom.LonLat.fromDegrees(float(a), float(d))))
            for a, d in zip(ra, dec)
        ],
        dtype=bool,
    )


def naive_in_ranges(index, ranges):
    """Whether each pixel index lies in one of the half-open ``(begin, end)`` ranges."""
    index = np.asarray(index, dtype=np.int64)
    inside = np.zeros(index.shape, dtype=bool)
    for begin, end in ranges:
        inside |= (index >= begin) & (index < end)
    return inside


# ---------------------------------------------------------------------------
# dia_sim.field: tiles of a field of view (gnomonic squares)
# ---------------------------------------------------------------------------


def _naive_gnomonic(ra, dec, center_ra, center_dec, fov_deg):
    """``(xi, eta)`` of each point, or `None` outside the field, from the textbook formulas.

    Uses the spherical-trigonometry form of the projection (no unit vectors) and
    one point at a time, so it shares no code path with `dia_sim.field`.
    """
    a0, d0 = math.radians(center_ra), math.radians(center_dec)
    radius = math.radians(fov_deg) / 2.0
    for a, d in zip(np.radians(ra), np.radians(dec)):
        cos_c = math.sin(d0) * math.sin(d) + math.cos(d0) * math.cos(d) * math.cos(a - a0)
        if math.acos(max(-1.0, min(1.0, cos_c))) > radius:
            yield None
            continue
        xi = math.cos(d) * math.sin(a - a0) / cos_c
        eta = (math.cos(d0) * math.sin(d) - math.sin(d0) * math.cos(d) * math.cos(a - a0)) / cos_c
        yield xi, eta


def naive_field_tile(ra, dec, center_ra, center_dec, fov_deg, n_divide):
    """Tile number of each point (-1 outside the field) of an N x N division."""
    half = math.tan(math.radians(fov_deg) / 2.0)
    side = 2.0 * half / n_divide
    tiles = []
    for point in _naive_gnomonic(ra, dec, center_ra, center_dec, fov_deg):
        if point is None:
            tiles.append(-1)
            continue
        xi, eta = point
        ix = min(n_divide - 1, max(0, math.floor((xi + half) / side)))
        iy = min(n_divide - 1, max(0, math.floor((eta + half) / side)))
        tiles.append(iy * n_divide + ix)
    return np.array(tiles, dtype=np.int64)


#: LSSTCam's science rafts in detector-number order: Rab is row a (north), column b (east).
NAIVE_RAFTS = [f"R{a}{b}" for a in range(5) for b in range(5) if not (a in (0, 4) and b in (0, 4))]


def naive_camera_detector(ra, dec, center_ra, center_dec, fov_deg):
    """Detector of each point (-1 outside the field, -2 in a missing corner raft) by the raft and sensor names.

    A detector's side is the field radius in the tangent plane over 4.5 sqrt(2);
    the grid of 15 x 15 detectors is centred on the pointing; the detector is
    ``9 * (index of the raft's name) + 3 * sensor row + sensor column``.
    """
    side = math.tan(math.radians(fov_deg) / 2.0) / (4.5 * math.sqrt(2.0))
    detectors = []
    for point in _naive_gnomonic(ra, dec, center_ra, center_dec, fov_deg):
        if point is None:
            detectors.append(-1)
            continue
        col, row = (math.floor(v / side + 7.5) for v in point)
        raft = f"R{row // 3}{col // 3}"
        detectors.append(9 * NAIVE_RAFTS.index(raft) + 3 * (row % 3) + col % 3 if raft in NAIVE_RAFTS else -2)
    return np.array(detectors, dtype=np.int64)
