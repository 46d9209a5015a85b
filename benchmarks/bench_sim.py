"""Benchmark: the DIA simulation of one full-density visit, without the database.

One field of 3.5 degrees holds 10,000 catalogue variables; a visit detects
them plus Poisson(5050) noise and Poisson(100) transients (~15,000
DiaSources). The DiaObjects "read" from the database are the 10,000 catalogue
positions plus random ones up to 10,000 / 20,000 / 40,000 objects, each with a
DiaSource history of 10 rows and a DiaForcedSource history of 10 rows (built
before the clock starts, with the columns the AP loop reads).

Timed per visit: ``detect`` + ``associate`` + ``build_rows`` of
`dia_sim.visit_sim.VisitSimulator` (the full-width DiaSource, DiaForcedSource
and DiaObject frames included), after a warm-up that compiles the numba
kernel. The same visit is also run with the association done by
`numpy_associate` below, a pure-numpy twin of the numba kernel (same cube
grid, candidates expanded with searchsorted/repeat); its result is checked
equal. The grouping steps (DiaObject summaries) are numpy in both.

Prints medians of ``--repeats`` runs as Markdown tables.

Usage::

    .venv/bin/python benchmarks/bench_sim.py --repeats 9
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import time

import numpy as np
import pandas as pd

from dia_sim.field import FieldTile
from dia_sim.rows import BANDS, FORCED_HISTORY_COLUMNS, SOURCE_HISTORY_COLUMNS
from dia_sim.survey import FOV_DEG
from dia_sim.visit_sim import AssociationResult, SimConfig, VisitSimulator
from l1db.sphere import radec_to_xyz

_LOG = logging.getLogger(__name__)

_ARCSEC = np.pi / (180.0 * 3600.0)
_AXIS_CELLS = 1 << 21


def numpy_associate(src_ra, src_dec, obj_ra, obj_dec, radius_arcsec=1.0) -> np.ndarray:
    """Pure-numpy twin of `dia_sim.association.associate` (same rule, same grid)."""
    n, m = len(src_ra), len(obj_ra)
    index = np.full(n, -1, dtype=np.int64)
    if n == 0 or m == 0:
        return index
    chord = 2.0 * np.sin(min(radius_arcsec * _ARCSEC, np.pi) / 2.0)
    inv_cell = 1.0 / max(chord * (1.0 + 1e-9), 2.0 / (_AXIS_CELLS - 2))

    def key(c):
        return (c[:, 0] << 42) | (c[:, 1] << 21) | c[:, 2]

    ov, sv = radec_to_xyz(obj_ra, obj_dec), radec_to_xyz(src_ra, src_dec)
    ocell = ((ov + 1.0) * inv_cell).astype(np.int64)
    scell = ((sv + 1.0) * inv_cell).astype(np.int64)
    okey = key(ocell)
    order = np.argsort(okey)
    okeys = okey[order]
    top = _AXIS_CELLS - 1
    cand_src, cand_obj = [], []
    for dx in (-1, 0, 1):
        for dy in (-1, 0, 1):
            c = scell + np.array([dx, dy, 0])
            valid = (c[:, 0] >= 0) & (c[:, 0] <= top) & (c[:, 1] >= 0) & (c[:, 1] <= top)
            c = np.clip(c, 0, top)
            lo_c, hi_c = c.copy(), c.copy()
            lo_c[:, 2] = np.maximum(c[:, 2] - 1, 0)
            hi_c[:, 2] = np.minimum(c[:, 2] + 1, top)
            lo = np.searchsorted(okeys, key(lo_c), "left")
            hi = np.searchsorted(okeys, key(hi_c), "right")
            cnt = np.where(valid, hi - lo, 0)
            total = int(cnt.sum())
            if total == 0:
                continue
            src = np.repeat(np.arange(n), cnt)
            first = np.repeat(lo - (np.cumsum(cnt) - cnt), cnt)
            cand_src.append(src)
            cand_obj.append(order[first + np.arange(total)])
    if not cand_src:
        return index
    cs, co = np.concatenate(cand_src), np.concatenate(cand_obj)
    d2 = np.sum((sv[cs] - ov[co]) ** 2, axis=1)
    ok = d2 <= chord * chord
    cs, co, d2 = cs[ok], co[ok], d2[ok]
    # Nearest object per source (ties: lower object index) ...
    srt = np.lexsort((co, d2, cs))
    cs, co, d2 = cs[srt], co[srt], d2[srt]
    head = np.r_[True, cs[1:] != cs[:-1]]
    cs, co, d2 = cs[head], co[head], d2[head]
    # ... then the nearest source per object (ties: lower source index).
    srt = np.lexsort((cs, d2, co))
    cs, co = cs[srt], co[srt]
    head = np.r_[True, co[1:] != co[:-1]]
    index[cs[head]] = co[head]
    return index


class NumpySimulator(VisitSimulator):
    """`VisitSimulator` with the association done by `numpy_associate`."""

    def associate(self, detections: pd.DataFrame, objects: pd.DataFrame) -> AssociationResult:
        index = numpy_associate(
            detections["ra"].to_numpy(), detections["dec"].to_numpy(),
            objects["ra"].to_numpy(), objects["dec"].to_numpy(), self.config.match_radius_arcsec,
        )
        matched = np.zeros(len(objects), dtype=bool)
        matched[index[index >= 0]] = True
        return AssociationResult(object_index=index, matched_objects=matched)


def make_inputs(rng: np.random.Generator, field: FieldTile, n_catalog: int, n_objects: int, n_hist: int, t0: float):
    """Catalogue in the field, DiaObjects with lastDiaSourceMjdTai, source and forced histories."""
    cat_ra, cat_dec = field.sample_uniform(rng, n_catalog)
    extra_ra, extra_dec = field.sample_uniform(rng, max(n_objects - n_catalog, 0))
    ra = np.concatenate([cat_ra, extra_ra])[:n_objects]
    dec = np.concatenate([cat_dec, extra_dec])[:n_objects]
    ids = np.arange(1, n_objects + 1, dtype=np.int64) * 7
    last = t0 - rng.uniform(0.5, 60.0, n_objects)
    objects = pd.DataFrame({
        "diaObjectId": ids, "ra": ra, "dec": dec,
        "lastDiaSourceMjdTai": last, "firstDiaSourceMjdTai": last - 300.0,
    })
    k = n_objects * n_hist
    oid = np.repeat(ids, n_hist)
    bands = np.array(list(BANDS), dtype=object)
    src_hist = pd.DataFrame({
        "diaObjectId": oid,
        "ra": np.repeat(ra, n_hist) + rng.normal(0, 3e-5, k),
        "dec": np.repeat(dec, n_hist) + rng.normal(0, 3e-5, k),
        "midpointMjdTai": np.repeat(last, n_hist) - rng.uniform(0, 300, k),
        "band": bands[rng.integers(0, len(bands), k)],
        "psfFlux": rng.normal(1000, 300, k).astype(np.float32),
        "psfFluxErr": rng.uniform(50, 500, k).astype(np.float32),
    })[list(SOURCE_HISTORY_COLUMNS)]
    fsrc_hist = pd.DataFrame({
        "diaObjectId": oid,
        "band": bands[rng.integers(0, len(bands), k)],
        "psfFlux": rng.normal(0, 300, k).astype(np.float32),
        "psfFluxErr": rng.uniform(50, 500, k).astype(np.float32),
    })[list(FORCED_HISTORY_COLUMNS)]
    return cat_ra, cat_dec, objects, src_hist, fsrc_hist


def run_visit(sim, rng, field, inputs, t0):
    """One visit; returns (seconds per step, frames)."""
    cat_ra, cat_dec, objects, src_hist, fsrc_hist = inputs
    times = {}
    start = time.perf_counter()
    det = sim.detect(rng, field, cat_ra, cat_dec)
    t1 = time.perf_counter()
    assoc = sim.associate(det, objects)
    t2 = time.perf_counter()
    frames = sim.build_rows(rng, 100, 0, t0, "r", det, assoc, objects, src_hist, fsrc_hist)
    t3 = time.perf_counter()
    times.update(detect=t1 - start, associate=t2 - t1, build_rows=t3 - t2, total=t3 - start)
    return times, assoc, frames


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=9, help="visits timed per case (median reported)")
    parser.add_argument("--objects", default="10000,20000,40000", help="DiaObjects in the field, comma-separated")
    parser.add_argument("--history", type=int, default=10, help="history rows per object (each table)")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    if args.repeats < 1:
        print("bench_sim: --repeats must be >= 1", file=sys.stderr)
        return 2

    rng = np.random.default_rng(args.seed)
    field = FieldTile(45.0, -30.0, FOV_DEG)
    t0 = 61000.0
    config = SimConfig()
    sims = {"numba": VisitSimulator(config), "numpy": NumpySimulator(config)}
    sims["numba"].warm_up()

    rows = []
    for n_obj in (int(x) for x in args.objects.split(",")):
        inputs = make_inputs(rng, field, 10_000, n_obj, args.history, t0)
        # Warm-up visit, and the check that both associations agree.
        _, a_numba, frames = run_visit(sims["numba"], np.random.default_rng(0), field, inputs, t0)
        _, a_numpy, _ = run_visit(sims["numpy"], np.random.default_rng(0), field, inputs, t0)
        if not np.array_equal(a_numba.object_index, a_numpy.object_index):
            print("bench_sim: numpy and numba associations differ", file=sys.stderr)
            return 1
        samples = {name: [] for name in sims}
        for _ in range(args.repeats):
            for name, sim in sims.items():  # alternate, so drifts hit both alike
                times, _, _ = run_visit(sim, rng, field, inputs, t0)
                samples[name].append(times)
        for name, runs in samples.items():
            med = {k: statistics.median(r[k] for r in runs) * 1e3 for k in runs[0]}
            rows.append((n_obj, name, med, a_numba.n_matched, len(frames[1]), len(frames[2]), len(frames[0])))

    print(f"Median of {args.repeats} visits, ms; history {args.history} rows per object and table.\n")
    print("| objects | association | detect | associate | build_rows | total | matched | DiaSource | DiaForcedSource "
          "| DiaObject |")
    print("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for n_obj, name, med, matched, n_src, n_fsrc, n_objs in rows:
        print(f"| {n_obj} | {name} | {med['detect']:.1f} | {med['associate']:.1f} | {med['build_rows']:.1f} "
              f"| {med['total']:.1f} | {matched} | {n_src} | {n_fsrc} | {n_objs} |")
    return 0


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING)
    sys.exit(main())
