"""Benchmark: DiaObject region reads through the pixel index against table scans.

On each backend in one run (an SQLite file in a temporary directory; PostgreSQL
and MariaDB databases ``l1db_bench_region`` created here and dropped afterwards,
also on failure) and for each DiaObject strategy (``baseline``,
``last_object_table``; HTM level 20, at most 64 ranges):

1. fill: ``--objects`` DiaObjects uniform over a sky patch (default 35 x 35
   degrees, ~8,000 objects per 3.5-degree field), full-width rows from
   `dia_sim.rows.make_dia_objects`, stored with `L1db.store` in batches of
   spatially grouped objects (5-degree cells in random order, like the visits
   that create them); then ``--revisits`` random fields store a new version of
   every object in them, so that baseline's validity filter matters (and
   DiaObjectLast sees delete + insert). Then the backend's ANALYZE.
2. for ``--fields`` random 3.5-degree fields inside the patch, alternating,
   ``--repeats`` times each:

   - ``region``: `L1db.getDiaObjects` (OR of pixel-range BETWEENs on the
     pixelId index, then the exact client trim with sphgeom);
   - ``box scan``: the same columns of the same table with the same
     latest-version filter and a ra/dec bounding-box predicate in SQL, then an
     exact angular-distance selection with numpy. No index covers ra/dec, so
     the server scans the whole table but ships only about the field: this is
     the "no spatial index" baseline the ratio is given against;
   - ``full scan`` (first ``--full-scan-fields`` fields, once each): every
     latest row to the client, then the numpy selection (what a client without
     any server-side predicate pays).

   Both scans read through `l1db.sql.bulk_read.read_frame`, as `L1db.getDiaObjects`
   does, so only the query differs. Every result is checked to hold exactly
   the same diaObjectIds. ``driver fetch only``: the region statement through
   ``conn.execute(...).fetchall()``, the floor of a read through the driver's rows.
3. EXPLAIN of the region query and the box scan, printed after the table.

Timings are wall-clock seconds of the whole call (query, fetch, frame
building, trim). Prints a Markdown section for BENCHMARKS.md::

    .venv/bin/python benchmarks/bench_region_read.py [--objects 1000000] [--fields 20] [--repeats 3]
"""

from __future__ import annotations

import argparse
import datetime
import logging
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import lsst.sphgeom as sph
import numpy as np
import pandas as pd
import sqlalchemy as sa
from _common import timed
from astropy.time import Time

from dia_sim.rows import BANDS, make_dia_objects
from l1db import AP_OBJECT_COLUMNS, L1db, open_l1db
from l1db.config import L1dbConfig
from l1db.scratch import Servers, server_database
from l1db.sphere import radec_to_xyz
from l1db.sql.bulk_read import read_frame
from l1db.sql.database import server_version

_LOG = logging.getLogger(__name__)

# Not "l1db_bench_read": benchmarks/bench_read.py drops that one (WITH FORCE).
DB_NAME = "l1db_bench_region"
BACKENDS = ("sqlite", "postgresql", "mysql")
STRATEGIES = ("baseline", "last_object_table")
FIELD_RADIUS_DEG = 1.75
CELL_DEG = 5.0
START_MJD = 61000.0


# -- sky ---------------------------------------------------------------------------


def within(ra: np.ndarray, dec: np.ndarray, ra0: float, dec0: float, radius_deg: float) -> np.ndarray:
    """Exact angular-distance selection: mask of the positions within the radius."""
    return radec_to_xyz(ra, dec) @ radec_to_xyz(ra0, dec0) >= np.cos(np.radians(radius_deg))


def random_in_patch(rng: np.random.Generator, n: int, patch: tuple[float, float, float, float],
                    margin: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Uniform positions on the sphere within the patch shrunk by ``margin`` degrees."""
    ra_min, ra_max, dec_min, dec_max = patch
    ra = rng.uniform(ra_min + margin, ra_max - margin, n)
    z = rng.uniform(np.sin(np.radians(dec_min + margin)), np.sin(np.radians(dec_max - margin)), n)
    return ra, np.degrees(np.arcsin(z))


def field(ra: float, dec: float) -> sph.Circle:
    """The 3.5-degree field centred on (ra, dec)."""
    return sph.Circle(sph.UnitVector3d(sph.LonLat.fromDegrees(ra, dec)), sph.Angle.fromDegrees(FIELD_RADIUS_DEG))


# -- fill ----------------------------------------------------------------------------


def object_rows(rng: np.random.Generator, ids: np.ndarray, ra: np.ndarray, dec: np.ndarray,
                mjd: float) -> pd.DataFrame:
    """Full-width DiaObject rows for objects with one source each at this visit."""
    n = len(ids)
    sources = pd.DataFrame({
        "diaObjectId": ids,
        "ra": ra,
        "dec": dec,
        "midpointMjdTai": np.full(n, mjd),
        "band": np.array(list(BANDS), dtype=object)[rng.integers(0, len(BANDS), n)],
        "psfFlux": rng.normal(0.0, 5000.0, n).astype(np.float32),
        "psfFluxErr": rng.uniform(50.0, 500.0, n).astype(np.float32),
    })
    objects = make_dia_objects(sources, None, None, mjd, rng=rng)
    # The mean of one unit vector may differ from the input by an ulp: keep the input.
    order = np.argsort(ids)
    objects["ra"] = ra[order]
    objects["dec"] = dec[order]
    return objects


def fill_batches(rng: np.random.Generator, ra: np.ndarray, dec: np.ndarray,
                 batch: int) -> Iterator[np.ndarray]:
    """Indices of the objects in store batches: 5-degree cells in random order."""
    cell = np.floor(ra / CELL_DEG).astype(np.int64) * 1000 + np.floor((dec + 90.0) / CELL_DEG).astype(np.int64)
    cells = np.unique(cell)
    rank = np.empty(cells.max() + 1, dtype=np.int64)
    rank[cells] = rng.permutation(len(cells))
    order = np.argsort(rank[cell], kind="stable")
    for start in range(0, len(order), batch):
        yield order[start : start + batch]


def fill(db: L1db, args: argparse.Namespace, seed: int) -> dict[str, float]:
    """Fill DiaObject (and DiaObjectLast) through `L1db.store`; return counts and times."""
    rng = np.random.default_rng(seed)
    ra, dec = random_in_patch(rng, args.objects, args.patch)
    batches = list(fill_batches(rng, ra, dec, args.batch))
    # IDs numbered as objects are created, batch by batch (visit by visit in the
    # pipeline). InnoDB clusters DiaObject by its key, so this order decides the
    # locality of a field's rows there (--random-ids: the worst case).
    ids = np.empty(args.objects, dtype=np.int64)
    ids[np.concatenate(batches)] = np.arange(1, args.objects + 1)
    if args.random_ids:
        ids = rng.permutation(ids)
    mjd = START_MJD
    start = time.perf_counter()
    for sel in batches:
        db.store(datetime_of(mjd), object_rows(rng, ids[sel], ra[sel], dec[sel], mjd))
        mjd += 40.0 / 86400.0
    first = time.perf_counter() - start
    versions = 0
    start = time.perf_counter()
    for ra0, dec0 in zip(*random_in_patch(rng, args.revisits, args.patch)):
        sel = np.flatnonzero(within(ra, dec, ra0, dec0, FIELD_RADIUS_DEG))
        mjd += 1.0
        for part in np.array_split(sel, max(1, len(sel) // args.batch + 1)):
            db.store(datetime_of(mjd), object_rows(rng, ids[part], ra[part], dec[part], mjd))
        versions += len(sel)
    second = time.perf_counter() - start
    start = time.perf_counter()
    analyze(db)
    return {"fill_s": first, "versions": versions, "version_s": second, "analyze_s": time.perf_counter() - start}


def datetime_of(mjd: float) -> Time:
    """Visit time of an MJD (TAI)."""
    return Time(mjd, format="mjd", scale="tai")


def analyze(db: L1db) -> None:
    """Refresh the planner statistics, as autovacuum or a DBA would."""
    names = [t for t in ("DiaObject", "DiaObjectLast") if t in db.schema.tables]
    with db.engine.begin() as conn:
        quote = conn.dialect.identifier_preparer.quote
        for name in names:
            if conn.dialect.name == "mysql":
                conn.exec_driver_sql(f"ANALYZE TABLE {quote(name)}").all()
            else:
                conn.exec_driver_sql(f"ANALYZE {quote(name)}")


# -- reads -------------------------------------------------------------------------------


class Reader:
    """The three ways of reading the latest DiaObjects of one field."""

    def __init__(self, db: L1db) -> None:
        self.db = db
        self.table = db.schema.object_read_table
        self.columns = [self.table.c[name] for name in AP_OBJECT_COLUMNS]
        latest = self.table.c.validityEndMjdTai.is_(None) if self.table.name == "DiaObject" else sa.true()
        self.latest = latest

    def region(self, ra0: float, dec0: float) -> np.ndarray:
        return self.db.getDiaObjects(field(ra0, dec0))["diaObjectId"].to_numpy()

    def box_statement(self, ra0: float, dec0: float) -> sa.Select:
        c = self.table.c
        r = FIELD_RADIUS_DEG
        half_ra = float(r / np.cos(np.radians(min(abs(dec0) + r, 89.0))))
        return sa.select(*self.columns).where(
            self.latest,
            c.dec.between(dec0 - r, dec0 + r),
            c.ra.between(ra0 - half_ra, ra0 + half_ra),  # fields never cross RA 0 here
        )

    def _select(self, stmt: sa.Select, ra0: float, dec0: float) -> np.ndarray:
        # The read path getDiaObjects uses, so that only the query differs.
        with self.db.engine.connect() as conn:
            frame = read_frame(conn, stmt)
        inside = within(frame["ra"].to_numpy(dtype=np.float64), frame["dec"].to_numpy(dtype=np.float64),
                        ra0, dec0, FIELD_RADIUS_DEG)
        return frame["diaObjectId"].to_numpy(dtype=np.int64)[inside]

    def box_scan(self, ra0: float, dec0: float) -> np.ndarray:
        return self._select(self.box_statement(ra0, dec0), ra0, dec0)

    def full_scan(self, ra0: float, dec0: float) -> np.ndarray:
        return self._select(sa.select(*self.columns).where(self.latest), ra0, dec0)

    def region_statement(self, ra0: float, dec0: float) -> sa.Select:
        """The statement `L1db.getDiaObjects` runs (for EXPLAIN)."""
        pix = self.db.pixelization
        where = pix.pixel_ranges_clause(self.table.c.pixelId, pix.envelope(field(ra0, dec0)))
        return sa.select(*self.columns).where(where, self.latest)

    def region_sql(self, ra0: float, dec0: float) -> int:
        """Only the server round trip of the region read: envelope, execute, fetch."""
        with self.db.engine.connect() as conn:
            return len(conn.execute(self.region_statement(ra0, dec0)).fetchall())

    def explain(self, stmt: sa.Select) -> str:
        with self.db.engine.connect() as conn:
            sql = str(stmt.compile(conn, compile_kwargs={"literal_binds": True}))
            prefix = "EXPLAIN QUERY PLAN " if conn.dialect.name == "sqlite" else "EXPLAIN "
            rows = conn.exec_driver_sql(prefix + sql).all()
        return "\n".join(" | ".join(str(v) for v in row) for row in rows)


def summarize_plan(plan: str, width: int = 140) -> str:
    """A plan short enough to read: long lines cut, repeated steps counted.

    SQLite's MULTI-INDEX OR and PostgreSQL's BitmapOr list one index search
    per pixel range; consecutive steps that differ only in their numbers are
    shown once with a count (PostgreSQL's per-range Index Cond lines dropped).
    """
    lines: list[str] = []
    keys: list[str] = []
    counts: list[int] = []
    for line in plan.splitlines():
        fields = line.split(" | ")
        if len(fields) == 4 and fields[0].isdigit():  # SQLite: id | parent | notused | detail
            line = fields[3]
            if line.startswith("INDEX "):
                continue
        if line.strip().startswith("Index Cond:"):
            continue
        key = re.sub(r"'[^']*'|\d+(\.\d+)?", "?", line)
        line = line if len(line) <= width else line[:width] + " ..."
        if keys and keys[-1] == key:
            counts[-1] += 1
        else:
            lines.append(line)
            keys.append(key)
            counts.append(1)
    return "\n".join(f"{line}  (x{n})" if n > 1 else line for line, n in zip(lines, counts))


def measure(db: L1db, args: argparse.Namespace, seed: int) -> dict[str, object]:
    """Time the three reads over random fields; check that they agree."""
    reader = Reader(db)
    rng = np.random.default_rng(seed + 1000)
    ras, decs = random_in_patch(rng, args.fields + 1, args.patch, margin=FIELD_RADIUS_DEG + 0.5)
    centres = list(zip(ras.tolist(), decs.tolist()))
    warm = centres.pop()
    reader.region(*warm)
    reader.box_scan(*warm)
    samples: dict[str, list[float]] = {"region": [], "region_first": [], "region_sql": [], "box": [], "full": []}
    per_field_ratio = []
    counts = []
    for k, (ra0, dec0) in enumerate(centres):
        region_t, box_t = [], []
        for repeat in range(args.repeats):
            t, region_ids = timed(lambda: reader.region(ra0, dec0))
            region_t.append(t)
            if repeat == 0:
                # First read of this field: its rows are not in the server's own cache
                # yet (what a visit sees; matters where the OS cache is bypassed).
                samples["region_first"].append(t)
            t, box_ids = timed(lambda: reader.box_scan(ra0, dec0))
            box_t.append(t)
            check_same(region_ids, box_ids, "box scan", ra0, dec0)
            start = time.perf_counter()
            reader.region_sql(ra0, dec0)
            samples["region_sql"].append(time.perf_counter() - start)
        if k < args.full_scan_fields:
            t, full_ids = timed(lambda: reader.full_scan(ra0, dec0))
            samples["full"].append(t)
            check_same(region_ids, full_ids, "full scan", ra0, dec0)
        samples["region"] += region_t
        samples["box"] += box_t
        per_field_ratio.append(statistics.median(box_t) / statistics.median(region_t))
        counts.append(len(region_ids))
    plans = {
        "region": reader.explain(reader.region_statement(*centres[0])),
        "box scan": reader.explain(reader.box_statement(*centres[0])),
    }
    return {"samples": samples, "ratios": per_field_ratio, "counts": counts, "plans": plans,
            "table": reader.table.name}


def check_same(expected: np.ndarray, got: np.ndarray, what: str, ra0: float, dec0: float) -> None:
    if len(np.unique(expected)) != len(expected):
        raise RuntimeError(f"region read returned duplicate diaObjectIds at ({ra0:.3f}, {dec0:.3f})")
    if not np.array_equal(np.sort(expected), np.sort(got)):
        raise RuntimeError(
            f"{what} and region read differ at ({ra0:.3f}, {dec0:.3f}): "
            f"{len(np.setdiff1d(expected, got))} only in region, {len(np.setdiff1d(got, expected))} only in {what}"
        )


# -- databases -------------------------------------------------------------------------


def run_strategy(url: str, strategy: str, args: argparse.Namespace) -> dict[str, object]:
    config = L1dbConfig(url=url, dia_object_index=strategy, pixelization="htm", pixel_level=20,
                        pixel_max_ranges=64)
    db = open_l1db(config)
    try:
        db.makeSchema(drop=True)
        result = fill(db, args, args.seed)
        counts = db.tableRowCount()
        result["rows"] = counts["DiaObject"]
        result["last_rows"] = counts.get("DiaObjectLast", 0)
        _LOG.info("%s %s filled: %s", url.split(":")[0], strategy, result)
        result.update(measure(db, args, args.seed))
        with db.engine.connect() as conn:
            result["server"] = server_version(conn)
        return result
    finally:
        db.close()


def run_backend(backend: str, args: argparse.Namespace, tmp: Path) -> dict[str, dict[str, object]]:
    results = {}
    if backend == "sqlite":
        for strategy in args.strategies:
            path = tmp / f"{strategy}.sqlite3"
            results[strategy] = run_strategy(f"sqlite:///{path}", strategy, args)
            path.unlink()
        return results
    admin = args.pg_admin_url if backend == "postgresql" else args.mysql_admin_url
    try:
        for strategy in args.strategies:
            url = server_database(admin, DB_NAME, create=True)
            results[strategy] = run_strategy(url, strategy, args)
    finally:
        server_database(admin, DB_NAME, create=False)
    return results


# -- report ------------------------------------------------------------------------------


def code_version() -> str:
    """Commit of the working tree, marked when l1db/ has uncommitted changes."""
    root = Path(__file__).resolve().parent.parent
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True,
                              text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "l1db"], cwd=root, capture_output=True,
                               text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + (" (l1db/ with uncommitted changes)" if dirty else "")


def report(results: dict[str, dict[str, dict[str, object]]], args: argparse.Namespace,
           load: tuple[tuple[float, ...], tuple[float, ...]], argv: list[str]) -> str:
    ms = lambda values: f"{1000 * statistics.median(values):.1f}"  # noqa: E731
    lines = [
        "## Region reads",
        "",
        f"`.venv/bin/python benchmarks/bench_region_read.py {' '.join(argv)}`".replace(" `", "`"),
        f"(2 cores, 24 GiB; {datetime.date.today().isoformat()}; Python {platform.python_version()}; "
        f"1-minute load average {load[0][0]:.1f} at the start, {load[1][0]:.1f} at the end; "
        f"code {args.code_version}).",
        "",
        f"Fill: {args.objects:,} DiaObjects over RA {args.patch[0]:g}..{args.patch[1]:g}, "
        f"Dec {args.patch[2]:g}..{args.patch[3]:g} deg, stored with `L1db.store` in batches of "
        f"{args.batch:,}, then {args.revisits} random fields storing a new version of each of their objects. "
        f"HTM level 20, at most 64 ranges. {args.fields} random fields inside the patch, "
        f"{args.repeats} alternating repeats each; full scans on the first {args.full_scan_fields} fields. "
        "Medians, ms.",
        "",
        "| backend | strategy | rows read table / DiaObject | objects per field | fill + versions (s) "
        "| region | region, first read of a field | driver fetch only | box scan | box scan / region "
        "| full scan | full scan / region |",
        "|---|---|---|---:|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for _backend, by_strategy in results.items():
        for strategy, r in by_strategy.items():
            s = r["samples"]
            region = statistics.median(s["region"])
            rows = f"{r['last_rows']:,} / {r['rows']:,}" if r["last_rows"] else f"{r['rows']:,} / {r['rows']:,}"
            full = f"{ms(s['full'])}" if s["full"] else "-"
            full_ratio = f"{statistics.median(s['full']) / region:.0f}x" if s["full"] else "-"
            lines.append(
                f"| {r['server']} | {strategy} | {rows} | {statistics.median(r['counts']):,.0f} "
                f"| {r['fill_s']:.0f} + {r['version_s']:.0f} ({r['versions']:,} versions) "
                f"| {ms(s['region'])} | {ms(s['region_first'])} | {ms(s['region_sql'])} | {ms(s['box'])} "
                f"| {statistics.median(s['box']) / region:.1f}x "
                f"(per field {min(r['ratios']):.1f}-{max(r['ratios']):.1f}) | {full} | {full_ratio} |"
            )
    lines += ["", "Query plans (first field):", ""]
    for backend, by_strategy in results.items():
        for strategy, r in by_strategy.items():
            for what, plan in r["plans"].items():
                short = summarize_plan(plan)
                lines += [f"- {backend} {strategy} {what} ({r['table']}):", "", "```", short, "```", ""]
    return "\n".join(lines)


def _patch(text: str) -> tuple[float, float, float, float]:
    values = tuple(float(v) for v in text.split(","))
    if len(values) != 4 or not (0 <= values[0] < values[1] <= 360 and -90 <= values[2] < values[3] <= 90):
        raise argparse.ArgumentTypeError("expected RA_MIN,RA_MAX,DEC_MIN,DEC_MAX in degrees, 0 <= RA < 360")
    return values  # type: ignore[return-value]


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit code."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backends", default=",".join(BACKENDS), help="comma-separated backends (default: all)")
    parser.add_argument("--strategies", default=",".join(STRATEGIES),
                        help="comma-separated dia_object_index values (default: baseline,last_object_table)")
    parser.add_argument("--objects", type=int, default=1_000_000, help="DiaObjects in the patch (default 1e6)")
    parser.add_argument("--patch", type=_patch, default=(20.0, 55.0, -17.5, 17.5),
                        help="RA_MIN,RA_MAX,DEC_MIN,DEC_MAX of the patch, degrees (default 20,55,-17.5,17.5)")
    parser.add_argument("--batch", type=int, default=25_000, help="objects per L1db.store call (default 25000)")
    parser.add_argument("--revisits", type=int, default=30,
                        help="fields whose objects get a new version after the fill (default 30)")
    parser.add_argument("--fields", type=int, default=20, help="random fields timed (default 20)")
    parser.add_argument("--repeats", type=int, default=3, help="alternating repeats per field (default 3)")
    parser.add_argument("--full-scan-fields", type=int, default=5,
                        help="fields also timed with a full-table scan (default 5)")
    parser.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    parser.add_argument("--pg-admin-url", default=Servers.pg_admin_url, help="PostgreSQL admin URL")
    parser.add_argument("--mysql-admin-url", default=Servers.mysql_admin_url, help="MySQL/MariaDB admin URL")
    parser.add_argument("--random-ids", action="store_true",
                        help="number objects in random order instead of batch by batch (worst case for "
                             "tables clustered by diaObjectId, i.e. InnoDB)")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress")
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    argv = sys.argv[1:] if argv is None else argv
    args.backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    args.strategies = [s.strip() for s in args.strategies.split(",") if s.strip()]
    bad = (set(args.backends) - set(BACKENDS)) | (set(args.strategies) - set(STRATEGIES))
    if bad or min(args.objects, args.batch, args.fields, args.repeats) < 1:
        print(f"bench_region_read: bad --backends/--strategies {sorted(bad)} or a count below 1", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(asctime)s %(name)s %(message)s")
    load_start = os.getloadavg()
    args.code_version = code_version()
    results = {}
    with tempfile.TemporaryDirectory(prefix="l1db_bench_read_") as tmp:
        for backend in args.backends:
            results[backend] = run_backend(backend, args, Path(tmp))
            # Partial results, in case a later backend fails.
            _LOG.info("%s done:\n%s", backend, report(results, args, (load_start, os.getloadavg()), argv))
    print(report(results, args, (load_start, os.getloadavg()), argv))
    return 0


if __name__ == "__main__":
    sys.exit(main())
