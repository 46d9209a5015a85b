"""Full-width DiaSource, DiaForcedSource and DiaObject frames of one visit.

The column list of each frame is the schema's (``schema/apdb-l1.yaml`` unless
another `l1db.schema_model.TableDef` is passed), in schema order, with these
dtypes:

=========  ================================================================
type       dtype
=========  ================================================================
BOOLEAN    ``bool`` (``boolean``, pandas masked, for a column that is NULL)
SMALLINT   ``int16`` (``Int16`` when NULL)
INT        ``int32`` (``Int32`` when NULL)
BIGINT     ``int64`` (``Int64`` when NULL: ssObjectId, parentDiaSourceId)
FLOAT      ``float32``; NULL = NaN
DOUBLE     ``float64``; NULL = NaN
CHAR       ``str``
VARCHAR    ``str``
=========  ================================================================

Columns the simulation knows (ids, positions, times, band, the fluxes that
DiaObject summaries are computed from, the summaries themselves) get their
real values. Every other column gets a plausible random value, whether or not
it is nullable, so that rows have the width and the variety of real ones;
flags are False. Columns whose meaning requires NULL here (`NULL_COLUMNS`:
no solar-system association, no deblend parent, not withdrawn, validity not
ended) are NULL when the schema allows it.

Every column is generated as a whole array and each frame is built once from
a dict: no per-row Python work.
"""

from __future__ import annotations

import functools
import logging
from typing import Any

import numba
import numpy as np
import pandas as pd

from l1db.schema_model import SchemaDef, TableDef, load_schema
from l1db.sphere import radec_to_xyz, xyz_to_radec
from l1db.tables import packaged_schema_path

__all__ = [
    "BANDS",
    "NULL_COLUMNS",
    "SOURCE_HISTORY_COLUMNS",
    "FORCED_HISTORY_COLUMNS",
    "default_schema",
    "schema_bands",
    "make_dia_sources",
    "make_forced_sources",
    "make_dia_objects",
]

_LOG = logging.getLogger(__name__)

#: The survey's filter bands, in wavelength order.
BANDS = "ugrizy"
#: Nullable columns left NULL: nothing in the simulation gives them a value.
NULL_COLUMNS = frozenset(
    {"ssObjectId", "parentDiaSourceId", "ssObjectReassocTimeMjdTai", "timeWithdrawnMjdTai", "validityEndMjdTai"}
)
#: DiaSource columns `make_dia_objects` reads from the new sources and the history.
SOURCE_HISTORY_COLUMNS = ("diaObjectId", "ra", "dec", "midpointMjdTai", "band", "psfFlux", "psfFluxErr")
#: DiaForcedSource columns `make_dia_objects` reads from the forced-photometry history.
FORCED_HISTORY_COLUMNS = ("diaObjectId", "band", "psfFlux", "psfFluxErr")

#: Delay between a visit and the processing of its sources (timeProcessedMjdTai).
_PROCESSING_DELAY_DAYS = 60.0 / 86400.0
_EXPOSURE_TIME_S = 30.0
_RELIABILITY_VERSION = "v1.0"
_ARCSEC_DEG = 1.0 / 3600.0
# Per-source positional error assumed for DiaObject raErr/decErr (degrees).
_SOURCE_POS_ERR_DEG = 0.1 * _ARCSEC_DEG

_NUMPY_DTYPE = {
    "BOOLEAN": np.dtype(bool),
    "TINYINT": np.dtype(np.int8),
    "SMALLINT": np.dtype(np.int16),
    "INT": np.dtype(np.int32),
    "BIGINT": np.dtype(np.int64),
    "FLOAT": np.dtype(np.float32),
    "DOUBLE": np.dtype(np.float64),
}

# Plausible ranges (uniform) of random values, by unit; errors by unit too.
_UNIT_RANGE = {
    "nJy": (-2000.0, 20000.0),
    "nJy/d": (-500.0, 500.0),
    "deg": (0.0, 180.0),
    "deg**2": (-1e-11, 1e-11),
    "arcsec": (0.0, 3.0),
    "arcsec**2": (0.1, 3.0),
    "pixel": (0.0, 4000.0),
    "s": (_EXPOSURE_TIME_S, _EXPOSURE_TIME_S),
}
_ERR_RANGE = {
    "nJy": (50.0, 500.0),
    "deg": (1e-6, 1e-5),
    "arcsec": (0.01, 0.3),
    "pixel": (0.01, 0.5),
}
_NAME_RANGE = {
    "psfLnL": (-200.0, 0.0),
    "psfChi2": (0.0, 50.0),
    "trailChi2": (0.0, 50.0),
    "dipoleChi2": (0.0, 50.0),
    "ixy": (-0.5, 0.5),
    "ixyPSF": (-0.5, 0.5),
    "snr": (5.0, 100.0),
    "psfNdata": (20, 400),
    "trailNdata": (20, 400),
    "dipoleNdata": (20, 400),
    "bboxSize": (8, 64),
    "trailAlgorithm": (0, 3),
}
_DEFAULT_FLOAT_RANGE = (0.0, 1.0)
_DEFAULT_INT_RANGE = (1, 100)


@functools.cache
def default_schema() -> SchemaDef:
    """The packaged table definitions (``schema/apdb-l1.yaml``), read once."""
    return load_schema(packaged_schema_path())


def _table(table: TableDef | None, name: str) -> TableDef:
    return default_schema().tables[name] if table is None else table


@functools.cache
def schema_bands(table: TableDef) -> str:
    """Bands (of `BANDS`) that a DiaObject table has ``<band>_psfFluxMean`` columns for."""
    names = set(table.column_names)
    return "".join(b for b in BANDS if f"{b}_psfFluxMean" in names)


def _is_error(name: str) -> bool:
    return name.endswith("Err") or name.endswith("ErrMean")


class _FillPlan:
    """How to fill the columns of a table that the caller does not give.

    Built once per table; `fill` then makes every such column as a whole array
    (all random float32 columns from one random block).
    """

    def __init__(self, table: TableDef):
        self.table = table
        self.null: list[tuple[str, str]] = []
        self.false: list[str] = []
        self.ints: list[tuple[str, np.dtype, int, int]] = []
        self.strings: list[tuple[str, str]] = []
        floats: dict[np.dtype, list[tuple[str, float, float]]] = {np.dtype(np.float32): [], np.dtype(np.float64): []}
        for col in table.columns:
            if col.name in NULL_COLUMNS and col.nullable:
                self.null.append((col.name, col.type))
            elif col.type == "BOOLEAN":
                self.false.append(col.name)
            elif col.type in ("TINYINT", "SMALLINT", "INT", "BIGINT"):
                lo, hi = _NAME_RANGE.get(col.name, _DEFAULT_INT_RANGE)
                self.ints.append((col.name, _NUMPY_DTYPE[col.type], int(lo), int(hi)))
            elif col.type in ("FLOAT", "DOUBLE"):
                if col.name in _NAME_RANGE:
                    lo, hi = _NAME_RANGE[col.name]
                elif _is_error(col.name) and col.unit in _ERR_RANGE:
                    lo, hi = _ERR_RANGE[col.unit]
                else:
                    lo, hi = _UNIT_RANGE.get(col.unit or "", _DEFAULT_FLOAT_RANGE)
                floats[_NUMPY_DTYPE[col.type]].append((col.name, float(lo), float(hi)))
            else:
                # CHAR/VARCHAR/TEXT: a fixed string as long as the column allows.
                self.strings.append((col.name, "x" * min(col.length or 8, 8)))
        self.floats = {
            dtype: (
                [c[0] for c in cols],
                np.array([c[1] for c in cols], dtype=dtype)[:, None],
                np.array([c[2] - c[1] for c in cols], dtype=dtype)[:, None],
            )
            for dtype, cols in floats.items()
        }

    def fill(self, rng: np.random.Generator, n: int, given: dict[str, Any]) -> pd.DataFrame:
        """Frame of ``n`` rows: the ``given`` columns plus generated ones, in table order."""
        data: dict[str, Any] = {}
        for name, type_ in self.null:
            if name in given:
                continue
            if type_ in ("FLOAT", "DOUBLE"):
                data[name] = np.full(n, np.nan, dtype=_NUMPY_DTYPE[type_])
            elif type_ == "BOOLEAN":
                data[name] = pd.arrays.BooleanArray(np.zeros(n, bool), np.ones(n, bool))
            elif type_ in _NUMPY_DTYPE:
                data[name] = pd.arrays.IntegerArray(np.zeros(n, _NUMPY_DTYPE[type_]), np.ones(n, bool))
            else:
                data[name] = np.full(n, None, dtype=object)
        if self.false:
            false = np.zeros(n, dtype=bool)
            for name in self.false:
                if name not in given:
                    data[name] = false
        for name, dtype, lo, hi in self.ints:
            if name not in given:
                data[name] = rng.integers(lo, hi + 1, size=n, dtype=dtype)
        for dtype, (names, low, span) in self.floats.items():
            if not names:
                continue
            block = rng.random((len(names), n), dtype=dtype)
            block *= span
            block += low
            for k, name in enumerate(names):
                if name not in given:
                    data[name] = block[k]
        for name, value in self.strings:
            if name not in given:
                data[name] = np.full(n, value, dtype=object)
        for name, value in given.items():
            data[name] = value if isinstance(value, (np.ndarray, pd.api.extensions.ExtensionArray)) else np.full(
                n, value, dtype=_value_dtype(self.table, name)
            )
        # One constructor call; columns in schema order (a given column the
        # table does not have is dropped).
        # copy=False: the float columns stay views of their random block
        # instead of being stacked again (pandas' copy-on-write keeps them safe).
        return pd.DataFrame({name: data[name] for name in self.table.column_names}, copy=False)


def _value_dtype(table: TableDef, name: str) -> Any:
    type_ = table.column(name).type
    return _NUMPY_DTYPE.get(type_, object)


@functools.cache
def _plan(table: TableDef) -> _FillPlan:
    return _FillPlan(table)


def _random_fluxes(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Difference-image fluxes and errors (nJy): errors 50-500, S/N mostly above 5."""
    err = rng.uniform(50.0, 500.0, size=n).astype(np.float32)
    flux = (err * rng.normal(0.0, 20.0, size=n)).astype(np.float32)
    return flux, err


def make_dia_sources(
    rng: np.random.Generator,
    ra: np.ndarray,
    dec: np.ndarray,
    dia_object_ids: np.ndarray,
    source_ids: np.ndarray,
    visit: int,
    detector: int,
    visit_mjd: float,
    band: str,
    table: TableDef | None = None,
) -> pd.DataFrame:
    """Build the DiaSource rows of one visit (every column of the table).

    Parameters
    ----------
    rng : `numpy.random.Generator`
        Random numbers for the measured quantities.
    ra, dec : `numpy.ndarray`
        Positions, degrees.
    dia_object_ids : `numpy.ndarray`
        diaObjectId of the object each source belongs to.
    source_ids : `numpy.ndarray`
        diaSourceId of each source (see `dia_sim.ids.make_ids`).
    visit : `int`
        Visit id.
    detector : `int`
        Detector (tile) number.
    visit_mjd : `float`
        Mid-visit time, MJD TAI.
    band : `str`
        Filter band, one character.
    table : `l1db.schema_model.TableDef`, optional
        DiaSource definition; default: the packaged schema's.

    Returns
    -------
    sources : `pandas.DataFrame`
        One row per source, the table's columns in order (dtypes: module doc).
    """
    table = _table(table, "DiaSource")
    ra = np.asarray(ra, dtype=np.float64)
    dec = np.asarray(dec, dtype=np.float64)
    n = ra.size
    if not (dec.size == n == len(dia_object_ids) == len(source_ids)):
        raise ValueError("make_dia_sources: ra, dec, dia_object_ids and source_ids differ in length")
    flux, err = _random_fluxes(rng, n)
    given = {
        "diaSourceId": np.asarray(source_ids, dtype=np.int64),
        "visit": np.int64(visit),
        "detector": np.int16(detector),
        "diaObjectId": np.asarray(dia_object_ids, dtype=np.int64),
        "midpointMjdTai": float(visit_mjd),
        "timeProcessedMjdTai": float(visit_mjd) + _PROCESSING_DELAY_DAYS,
        "ra": ra,
        "dec": dec,
        "trailRa": ra,
        "trailDec": dec,
        "psfFlux": flux,
        "psfFluxErr": err,
        "snr": np.abs(flux) / err,
        "isNegative": flux < 0,
        "exposureTime": np.float32(_EXPOSURE_TIME_S),
        "band": np.full(n, band, dtype=object),
        "reliabilityVersion": np.full(n, _RELIABILITY_VERSION, dtype=object),
    }
    names = set(table.column_names)
    return _plan(table).fill(rng, n, {k: v for k, v in given.items() if k in names})


def make_forced_sources(
    rng: np.random.Generator,
    objects: pd.DataFrame,
    visit: int,
    detector: int,
    visit_mjd: float,
    band: str,
    ids: np.ndarray,
    table: TableDef | None = None,
) -> pd.DataFrame:
    """Build the DiaForcedSource rows of one visit (every column of the table).

    Parameters
    ----------
    rng : `numpy.random.Generator`
        Random numbers for the fluxes.
    objects : `pandas.DataFrame`
        The DiaObjects measured, with columns ``diaObjectId``, ``ra``, ``dec``.
    visit, detector : `int`
        Visit id and detector (tile) number.
    visit_mjd : `float`
        Mid-visit time, MJD TAI.
    band : `str`
        Filter band.
    ids : `numpy.ndarray`
        diaForcedSourceId of each row (see `dia_sim.ids.make_ids`).
    table : `l1db.schema_model.TableDef`, optional
        DiaForcedSource definition; default: the packaged schema's.

    Returns
    -------
    forced : `pandas.DataFrame`
        One row per object, the table's columns in order.
    """
    table = _table(table, "DiaForcedSource")
    n = len(objects)
    if len(ids) != n:
        raise ValueError(f"make_forced_sources: {n} objects but {len(ids)} ids")
    flux, err = _random_fluxes(rng, n)
    given = {
        "diaForcedSourceId": np.asarray(ids, dtype=np.int64),
        "diaObjectId": objects["diaObjectId"].to_numpy(dtype=np.int64),
        "ra": objects["ra"].to_numpy(dtype=np.float64),
        "dec": objects["dec"].to_numpy(dtype=np.float64),
        "visit": np.int64(visit),
        "detector": np.int16(detector),
        "psfFlux": flux,
        "psfFluxErr": err,
        "midpointMjdTai": float(visit_mjd),
        "timeProcessedMjdTai": float(visit_mjd) + _PROCESSING_DELAY_DAYS,
        "band": np.full(n, band, dtype=object),
    }
    names = set(table.column_names)
    return _plan(table).fill(rng, n, {k: v for k, v in given.items() if k in names})


# --- DiaObject summaries -----------------------------------------------------

_BAND_LUT = np.full(256, -1, dtype=np.int64)
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def _band_index(band: np.ndarray, bands: str) -> np.ndarray:
    """Index into ``bands`` of each band value (-1 for other values or NULL)."""
    if band.size == 0:
        return np.zeros(0, dtype=np.int64)
    try:
        # One-character strings joined into one bytes buffer: no per-row step.
        text = "".join(band).encode("ascii")
        if len(text) != band.size:
            raise ValueError("band values are not single characters")
        codes = np.frombuffer(text, dtype=np.uint8)
    except (TypeError, ValueError, UnicodeEncodeError):
        codes = pd.Series(band).fillna("?").to_numpy(dtype="S1").view(np.uint8)
    lut = _BAND_LUT.copy()
    for k, b in enumerate(bands):
        lut[ord(b)] = k
    return lut[codes]


@numba.njit(cache=True, nogil=True)
def _index_of(keys, query):
    # Position of each query value in the unique int64 ``keys``, -1 if absent:
    # an open-addressing hash table (Fibonacci hashing, linear probing), which
    # beats a binary search per unsorted query by an order of magnitude.
    bits = 1
    while (1 << bits) < 2 * keys.size:
        bits += 1
    mask = (1 << bits) - 1
    shift = np.uint64(64 - bits)
    slots = np.full(1 << bits, -1, dtype=np.int64)
    for i in range(keys.size):
        h = np.int64((np.uint64(keys[i]) * _GOLDEN) >> shift)
        while slots[h] >= 0:
            h = (h + 1) & mask
        slots[h] = i
    out = np.empty(query.size, dtype=np.int64)
    for j in range(query.size):
        q = query[j]
        h = np.int64((np.uint64(q) * _GOLDEN) >> shift)
        pos = -1
        while slots[h] >= 0:
            if keys[slots[h]] == q:
                pos = slots[h]
                break
            h = (h + 1) & mask
        out[j] = pos
    return out


def _float_values(series: pd.Series) -> np.ndarray:
    """Values of a numeric column as a numpy float array, NULL as NaN (no copy if numpy)."""
    if isinstance(series.dtype, np.dtype) and series.dtype.kind == "f":
        return series.to_numpy()
    return series.to_numpy(dtype=np.float64, na_value=np.nan)


def _gather(frames: list[pd.DataFrame | None], ids: np.ndarray, columns: tuple[str, ...]) -> dict[str, np.ndarray]:
    """Rows of ``frames`` whose diaObjectId is in the unique ``ids``.

    Returns the ``columns`` other than diaObjectId (float64, NULL as NaN;
    ``band`` as an object array) and ``g``, the index into ``ids`` of each
    row.
    """
    out: dict[str, list[np.ndarray]] = {c: [] for c in (*columns, "g")}
    for frame in frames:
        if frame is None or len(frame) == 0:
            continue
        query = frame["diaObjectId"].to_numpy(dtype=np.int64).view()
        # Read-only whether or not pandas copied: one kernel signature, the one warm_up compiles.
        query.flags.writeable = False
        pos = _index_of(ids, query)
        keep = np.flatnonzero(pos >= 0)
        out["g"].append(pos[keep])
        for c in columns:
            if c == "diaObjectId":
                continue
            if c == "band":
                out[c].append(frame[c].to_numpy(dtype=object)[keep])
            else:
                out[c].append(_float_values(frame[c])[keep].astype(np.float64, copy=False))
    empty = {"band": np.zeros(0, dtype=object), "g": np.zeros(0, dtype=np.int64)}
    return {
        c: np.concatenate(v) if v else empty.get(c, np.zeros(0))
        for c, v in out.items() if c != "diaObjectId"
    }


def _weighted_means(key: np.ndarray, flux: np.ndarray, err: np.ndarray, size: int):
    """Inverse-variance weighted mean and its error per key (NaN where no data)."""
    w = 1.0 / (err * err)
    sw = np.bincount(key, weights=w, minlength=size)
    swf = np.bincount(key, weights=w * flux, minlength=size)
    with np.errstate(invalid="ignore", divide="ignore"):
        return swf / sw, np.where(sw > 0, 1.0 / np.sqrt(sw), np.nan)


def make_dia_objects(
    new_sources: pd.DataFrame,
    history_sources: pd.DataFrame | None,
    old_objects: pd.DataFrame | None,
    visit_mjd: float,
    forced_history: pd.DataFrame | None = None,
    rng: np.random.Generator | None = None,
    table: TableDef | None = None,
) -> pd.DataFrame:
    """Build the new version of every DiaObject that got a source in this visit.

    Summary columns are recomputed from the object's DiaSources: those read
    from the database (``history_sources``) plus the new ones. The history is
    the window the database was asked for (12 months by default), so
    nDiaSources and the flux statistics describe that window, as in the real
    pipeline.

    ============================  =============================================
    column                        value
    ============================  =============================================
    ra, dec                       mean of the sources' unit vectors
    raErr, decErr                 0.1 arcsec / sqrt(nDiaSources)
    nDiaSources                   number of sources
    firstDiaSourceMjdTai          earliest source time; the old version's value
                                  if earlier (it may predate the window)
    lastDiaSourceMjdTai           latest source time
    <b>_psfFluxMean, ...MeanErr   inverse-variance weighted mean of psfFlux in
                                  band b, and its error
    <b>_psfFluxSigma              standard deviation (ddof = 1; NaN if < 2)
    <b>_psfFluxNdata              number of sources in band b (0 if none)
    <b>_psfFluxMin, ...Max        extremes of psfFlux in band b
    <b>_psfFluxErrMean            mean psfFluxErr in band b
    <b>_psfFluxMaxSlope           largest (flux change / time change) between
                                  consecutive sources in band b, time order
                                  (NaN if none; pairs at equal times, which one
                                  source per visit excludes, are skipped)
    <b>_fpFluxMean, ...MeanErr    weighted mean of the forced-photometry
                                  psfFlux in band b (``forced_history``);
                                  random if no forced history is given
    validityStartMjdTai           the visit time
    validityEndMjdTai             NULL
    ============================  =============================================

    Band statistics with no data are NaN. Other columns: random plausible
    values (module doc).

    Parameters
    ----------
    new_sources : `pandas.DataFrame`
        DiaSources of this visit with `SOURCE_HISTORY_COLUMNS`; their
        diaObjectIds name the objects to build (new objects included).
    history_sources : `pandas.DataFrame` or `None`
        DiaSources read from the database with `SOURCE_HISTORY_COLUMNS`; rows
        of other objects are ignored.
    old_objects : `pandas.DataFrame` or `None`
        Latest stored versions (``diaObjectId`` and, if present,
        ``firstDiaSourceMjdTai``).
    visit_mjd : `float`
        Time of the visit, MJD TAI.
    forced_history : `pandas.DataFrame`, optional
        DiaForcedSources read from the database with `FORCED_HISTORY_COLUMNS`.
    rng : `numpy.random.Generator`, optional
        Random numbers for the columns not computed; default: a fresh one.
    table : `l1db.schema_model.TableDef`, optional
        DiaObject definition; default: the packaged schema's.

    Returns
    -------
    objects : `pandas.DataFrame`
        One row per distinct diaObjectId of ``new_sources``, sorted by
        diaObjectId, the table's columns in order.
    """
    table = _table(table, "DiaObject")
    rng = np.random.default_rng() if rng is None else rng
    bands = schema_bands(table)
    nb = len(bands)
    ids = np.unique(new_sources["diaObjectId"].to_numpy(dtype=np.int64))
    n = ids.size

    src = _gather([history_sources, new_sources], ids, SOURCE_HISTORY_COLUMNS)
    g = src["g"]
    count = np.bincount(g, minlength=n)

    xyz = radec_to_xyz(src["ra"], src["dec"])
    mean_ra, mean_dec = xyz_to_radec(np.stack([np.bincount(g, weights=xyz[:, k], minlength=n) for k in range(3)],
                                              axis=-1))

    t = src["midpointMjdTai"]
    first = np.full(n, np.inf)
    np.minimum.at(first, g, t)
    last = np.full(n, -np.inf)
    np.maximum.at(last, g, t)
    if old_objects is not None and len(old_objects) and "firstDiaSourceMjdTai" in old_objects:
        old = _gather([old_objects], ids, ("firstDiaSourceMjdTai",))
        np.fmin.at(first, old["g"], old["firstDiaSourceMjdTai"])

    given: dict[str, Any] = {
        "diaObjectId": ids,
        "validityStartMjdTai": float(visit_mjd),
        "ra": mean_ra,
        "dec": mean_dec,
        "raErr": (_SOURCE_POS_ERR_DEG / np.sqrt(count)).astype(np.float32),
        "decErr": (_SOURCE_POS_ERR_DEG / np.sqrt(count)).astype(np.float32),
        "nDiaSources": count.astype(np.int32),
        "firstDiaSourceMjdTai": first,
        "lastDiaSourceMjdTai": last,
    }

    # Per (object, band) statistics on key = object * nb + band.
    b = _band_index(src["band"], bands)
    inband = b >= 0
    key = g[inband] * nb + b[inband]
    f, e, tb = src["psfFlux"][inband], src["psfFluxErr"][inband], t[inband]
    size = n * nb
    ndata = np.bincount(key, minlength=size)
    wmean, wmean_err = _weighted_means(key, f, e, size)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.bincount(key, weights=f, minlength=size) / ndata
        dev2 = np.bincount(key, weights=(f - mean[key]) ** 2, minlength=size)
        sigma = np.where(ndata > 1, np.sqrt(dev2 / (ndata - 1)), np.nan)
        err_mean = np.bincount(key, weights=e, minlength=size) / ndata
    fmin = np.full(size, np.inf)
    np.minimum.at(fmin, key, f)
    fmax = np.full(size, -np.inf)
    np.maximum.at(fmax, key, f)
    empty = ndata == 0
    fmin[empty] = np.nan
    fmax[empty] = np.nan

    # Slopes between consecutive sources need time order within (object, band):
    # one integer sort on key and time quantised to 1 ms (2**40 ms = 34 years).
    slope_max = np.full(size, -np.inf)
    if key.size > 1:
        tq = np.round((tb - tb.min()) * 86_400_000.0).astype(np.int64)
        order = np.argsort((key << 40) | tq)
        ks, ts, fs = key[order], tb[order], f[order]
        dt = np.diff(ts)
        pair = (ks[1:] == ks[:-1]) & (dt > 0)
        with np.errstate(invalid="ignore", divide="ignore"):
            np.maximum.at(slope_max, ks[1:][pair], np.diff(fs)[pair] / dt[pair])
    slope_max[~np.isfinite(slope_max)] = np.nan

    stats = {
        "psfFluxMean": wmean,
        "psfFluxMeanErr": wmean_err,
        "psfFluxSigma": sigma,
        "psfFluxMin": fmin,
        "psfFluxMax": fmax,
        "psfFluxErrMean": err_mean,
        "psfFluxMaxSlope": slope_max,
    }
    if forced_history is not None:
        fsrc = _gather([forced_history], ids, FORCED_HISTORY_COLUMNS)
        fb = _band_index(fsrc["band"], bands)
        ok = fb >= 0
        stats["fpFluxMean"], stats["fpFluxMeanErr"] = _weighted_means(
            fsrc["g"][ok] * nb + fb[ok], fsrc["psfFlux"][ok], fsrc["psfFluxErr"][ok], size
        )
    names = set(table.column_names)
    ndata = ndata.reshape(n, nb).astype(np.int32)
    stats = {k: v.reshape(n, nb).astype(np.float32) for k, v in stats.items()}
    for k, band in enumerate(bands):
        given[f"{band}_psfFluxNdata"] = np.ascontiguousarray(ndata[:, k])
        for stat, values in stats.items():
            given[f"{band}_{stat}"] = np.ascontiguousarray(values[:, k])
    return _plan(table).fill(rng, n, {k: v for k, v in given.items() if k in names})
