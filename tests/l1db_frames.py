"""Random full-width rows of the L1 tables, for the L1db tests.

Every column of the published schema is filled (nullable ones NULL now and
then), with the dtypes `l1db.frames.check_frame` produces, so that a frame
read back can be compared with what was stored.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from l1db.schema_model import TableDef

BANDS = np.array(list("ugrizy"))


def _column(rng: np.random.Generator, tdef: TableDef, name: str, n: int, null_fraction: float) -> pd.Series:
    col = tdef.column(name)
    match col.type:
        case "BOOLEAN":
            values = pd.array(rng.random(n) < 0.5, dtype="boolean")
        case "TINYINT" | "SMALLINT":
            values = pd.array(rng.integers(0, 200, n), dtype="Int16")
        case "INT":
            values = pd.array(rng.integers(0, 1_000_000, n), dtype="Int32")
        case "BIGINT":
            values = pd.array(rng.integers(0, 2**40, n), dtype="Int64")
        case "FLOAT":
            values = rng.normal(0.0, 100.0, n).astype(np.float32)
        case "DOUBLE":
            values = rng.normal(0.0, 1000.0, n)
        case "CHAR" | "VARCHAR":
            values = np.array(["".join(rng.choice(BANDS, size=col.length)) for _ in range(n)], dtype=object)
        case _:
            raise AssertionError(col.type)
    series = pd.Series(values)
    if col.nullable and null_fraction:
        series[rng.random(n) < null_fraction] = None
    return series


def random_rows(
    rng: np.random.Generator,
    tdef: TableDef,
    n: int,
    null_fraction: float = 0.1,
    **fixed: object,
) -> pd.DataFrame:
    """``n`` random rows of ``tdef``; ``fixed`` gives columns their values."""
    data = {}
    for name in tdef.column_names:
        data[name] = fixed[name] if name in fixed else _column(rng, tdef, name, n, null_fraction)
    return pd.DataFrame(data)


def random_visit(
    rng: np.random.Generator,
    definitions: dict[str, TableDef],
    ra: np.ndarray,
    dec: np.ndarray,
    object_ids: np.ndarray,
    visit: int,
    visit_mjd: float,
    first_source_id: int = 0,
    n_forced: int | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Objects at (ra, dec) with one DiaSource each and some DiaForcedSources."""
    n = len(ra)
    defs = definitions
    objects = random_rows(rng, defs["DiaObject"], n, diaObjectId=object_ids, ra=ra, dec=dec)
    sources = random_rows(
        rng, defs["DiaSource"], n,
        diaSourceId=np.arange(first_source_id, first_source_id + n, dtype=np.int64),
        diaObjectId=object_ids, ra=ra, dec=dec, visit=np.full(n, visit, dtype=np.int64),
        midpointMjdTai=np.full(n, visit_mjd),
    )
    nf = n if n_forced is None else n_forced
    forced = random_rows(
        rng, defs["DiaForcedSource"], nf,
        diaForcedSourceId=np.arange(first_source_id, first_source_id + nf, dtype=np.int64),
        diaObjectId=object_ids[:nf], ra=ra[:nf], dec=dec[:nf], visit=np.full(nf, visit, dtype=np.int64),
        detector=np.zeros(nf, dtype=np.int16), midpointMjdTai=np.full(nf, visit_mjd),
    )
    return objects, sources, forced


def random_sky_points(rng: np.random.Generator, n: int, centers: list[tuple[float, float]], radius_deg: float):
    """Points spread in circles around ``centers`` (so regions there are busy)."""
    per = np.array_split(np.arange(n), len(centers))
    ras, decs = [], []
    for (ra0, dec0), idx in zip(centers, per):
        # Uniform in a spherical cap around (ra0, dec0): rotate cap points from the pole.
        m = len(idx)
        cos_r = np.cos(np.radians(radius_deg))
        z = rng.uniform(cos_r, 1.0, m)
        phi = rng.uniform(0, 2 * np.pi, m)
        s = np.sqrt(1 - z**2)
        v = np.stack([s * np.cos(phi), s * np.sin(phi), z])
        theta = np.radians(90.0 - dec0)
        ry = np.array([[np.cos(theta), 0, np.sin(theta)], [0, 1, 0], [-np.sin(theta), 0, np.cos(theta)]])
        a = np.radians(ra0)
        rz = np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]])
        x, y, zz = rz @ ry @ v
        ras.append(np.degrees(np.arctan2(y, x)) % 360.0)
        decs.append(np.degrees(np.arcsin(np.clip(zz, -1, 1))))
    return np.concatenate(ras), np.concatenate(decs)
