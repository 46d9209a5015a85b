"""Honest first visits: after ap_proto's warm-up, no visit compiles a numba kernel.

Each run is a fresh interpreter (``tests/kernels_in_visits.py``): it runs
ap_proto for a few overlapping visits and compares every toolkit numba
dispatcher's compiled signatures before and after each visit, so a kernel
added later and not warmed up fails here, whatever module it is in. The
options are chosen per backend to take the paths that pick kernels: binary
COPY with the upsert on PostgreSQL, LOAD DATA on MariaDB, HEALPix and the
nightly table on SQLite, MQ3C partitions on Cassandra.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from ap_runs import ap_proto_args
from conftest import catalog_fixture, create_test_database, write_config

from l1db.cli.create_l1_schema import main as create_l1_schema
from l1db.timing_log import parse_log

REPO = Path(__file__).parents[1]
CHECKER = Path(__file__).parent / "kernels_in_visits.py"
VISITS = 6

#: Options per backend, and kernels its visits must have run (so the check is not vacuous).
CASES = {
    "sqlite": ({"pixelization": "healpix", "dia_object_nightly": 1}, set()),
    "postgresql": (
        {"dia_object_index": "last_object_table", "object_last_replace": 1},
        {"l1db._htm_kernel.htm_index", "l1db.sql.bulk_insert._pack_copy_rows",
         "l1db.sql.bulk_read._count_rows", "l1db.sql.bulk_read._unpack_rows"},
    ),
    "mysql": ({"dia_object_index": "last_object_table"},
              {"l1db._htm_kernel.htm_index", "l1db.sql.bulk_insert._pack_tsv_rows"}),
    "cassandra": ({"part_pixelization": "mq3c", "part_pixel_level": 8},
                  {"l1db._q3c_kernel._index_loop", "l1db.cassandra.wire._fill_rows"}),
}
#: Kernels of the simulation, which every visit runs.
SIMULATION = {"dia_sim.association._nearest_kernel", "dia_sim.association._cell_keys", "dia_sim.rows._index_of"}


sources = catalog_fixture(400)


def _check(config: Path, sources: Path, log: Path, *extra: str) -> dict:
    """Run the checker on ``config`` in a new interpreter; its JSON report."""
    assert create_l1_schema(["-c", str(config)]) == 0
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
    argv = [sys.executable, str(CHECKER), *extra, *ap_proto_args(config, sources, log, "-n", VISITS)]
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["code"] == 0
    return report


def test_no_kernel_compiles_inside_a_visit(backend: str, tmp_path: Path, sources: Path) -> None:
    options, kernels = CASES[backend]
    url, drop = create_test_database(backend, tmp_path)
    try:
        config = write_config(tmp_path / "l1db.cfg", url, **options)
        report = _check(config, sources, tmp_path / "run.jsonl")
    finally:
        drop()
    assert report["compiled_in_visits"] == {}, (
        f"compiled inside a visit, after warm-up (warm them up in the simulator or the backend's "
        f"L1db.warm_up): {report['compiled_in_visits']}"
    )
    # Not vacuous: the visits ran these kernels, read objects and history, and stored.
    assert SIMULATION | kernels <= set(report["compiled"])
    rows = parse_log(tmp_path / "run.jsonl").timings.groupby("op")["rows"].max()
    assert rows["obj_select"] > 0 and rows["src_select"] > 0 and rows["src_insert"] > 0


def test_the_check_sees_kernels_compiled_in_visits(tmp_path: Path, sources: Path) -> None:
    """Without the warm-ups the same run compiles the kernels inside its first visits."""
    url, drop = create_test_database("sqlite", tmp_path)
    try:
        report = _check(write_config(tmp_path / "l1db.cfg", url), sources, tmp_path / "run.jsonl",
                        "--skip-warm-up")
    finally:
        drop()
    assert SIMULATION | {"l1db._htm_kernel.htm_index"} <= set(report["compiled_in_visits"])
