"""ap_proto across hosts: a driver with the Dask scheduler, two worker hosts and a database host.

The hosts are network namespaces on a bridge (`netns_hosts`), each reaching
the others only through their addresses; the database host runs a
PostgreSQL of the test's own. Distribution must change nothing in the data,
and losing a worker host mid-run must lose or duplicate nothing.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa
from ap_runs import ap_proto_command, run_ap_proto, wait_for_visits
from netns_hosts import Hosts, PostgresHost

from dia_sim.catalog import generate_catalog
from dia_sim.cli.log2csv import main as log2csv_main
from dia_sim.log2csv import read_csv
from dia_sim.open_loop import verdict
from l1db.config import normalize_url
from l1db.timing_log import parse_log

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
from _faults import check_database  # noqa: E402
from conftest import catalog_fixture

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
DASK = str(Path(sys.executable).parent / "dask")
PORT = 8786
#: Options of every run here beside `ap_runs.RUN_OPTIONS`: 2 x 2 tiles, short waits between retries.
RUN = ["--divide", "2", "--retry-wait", "0.5"]
#: Columns that hold wall-clock times (none in the published L1 tables nor in the toolkit's).
WALL_CLOCK: dict[str, set[str]] = {}

#: Its hosts and their PostgreSQL are its own: it may run while a test restarts the shared servers (tests/conftest.py).
pytestmark = pytest.mark.own_servers


def _env() -> dict[str, str]:
    # The code under test, on every host (they share this machine's files).
    path = os.environ.get("PYTHONPATH", "")
    return {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{path}" if path else str(ROOT)}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Hosts, PostgresHost, Path]]:
    """The hosts, the database host's PostgreSQL, the scheduler on the driver host, and a catalogue."""
    work = tmp_path_factory.mktemp("distributed")
    catalog = work / "sources.npy"
    generate_catalog(catalog, per_visit=400, sky="south", seed=3)
    hosts = Hosts(["driver", "worker1", "worker2", "db"])
    pg = None
    try:
        pg = PostgresHost(hosts, "db")
        hosts.start("driver", [DASK, "scheduler", "--host", hosts.addresses["driver"], "--port", PORT,
                               "--no-dashboard"], work / "scheduler.log", env=_env())
        yield hosts, pg, catalog
    finally:
        if pg is not None:
            pg.stop()
        hosts.remove()


def _scheduler(hosts: Hosts) -> str:
    return f"tcp://{hosts.addresses['driver']}:{PORT}"


def _start_worker(hosts: Hosts, host: str, log: Path) -> subprocess.Popen:
    # No nanny: killing this one process is losing the host's worker.
    return hosts.start(host, [DASK, "worker", _scheduler(hosts), "--host", hosts.addresses[host], "--nthreads", "1",
                              "--no-nanny", "--no-dashboard", "--name", host], log, env=_env())


@pytest.fixture
def workers(cluster, tmp_path: Path) -> Iterator[dict[str, subprocess.Popen]]:
    """A Dask worker on each worker host, for one test (a lost one is not carried into the next test)."""
    hosts = cluster[0]
    logs = {host: tmp_path / f"{host}.log" for host in ("worker1", "worker2")}
    procs = {host: _start_worker(hosts, host, log) for host, log in logs.items()}
    try:
        # Both registered with the scheduler before a run asks for them (starting is slow on a busy machine).
        deadline = time.monotonic() + 300
        while not all("Registered to:" in log.read_text(errors="replace") for log in logs.values()):
            assert time.monotonic() < deadline and all(p.poll() is None for p in procs.values()), \
                "the Dask workers did not start: " + " | ".join(log.read_text()[-500:] for log in logs.values())
            time.sleep(0.2)
        yield procs
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


def _database(pg: PostgresHost, name: str, work: Path) -> Path:
    url = pg.create_database(name)
    config = work / f"{name}.cfg"
    config.write_text(f"[database]\nurl = {url}\n\n[l1db]\ndia_object_index = last_object_table\n")
    create = subprocess.run([PYTHON, ROOT / "bin" / "create_l1_schema", "-c", config], capture_output=True, text=True,
                            env=_env())
    assert create.returncode == 0, create.stderr
    return config


def _ap_proto(hosts: Hosts, config: Path, log: Path, catalog: Path, n: int, *extra: str) -> list[str]:
    return hosts.command("driver", ap_proto_command(config, catalog, log, "-n", n, *RUN, *extra))


def _engine(config: Path) -> sa.Engine:
    url = config.read_text().split("url = ", 1)[1].split("\n", 1)[0]
    return sa.create_engine(normalize_url(url), poolclass=sa.pool.NullPool)


def _tables(config: Path) -> dict[str, pd.DataFrame]:
    """Every row of every table, in key order (read from outside, through the bridge)."""
    engine = _engine(config)
    try:
        inspector = sa.inspect(engine)
        out = {}
        for table in inspector.get_table_names():
            keys = inspector.get_pk_constraint(table)["constrained_columns"]
            columns = [c["name"] for c in inspector.get_columns(table) if c["name"] not in WALL_CLOCK.get(table, ())]
            query = (f'SELECT {", ".join(f"{chr(34)}{c}{chr(34)}" for c in columns)} FROM "{table}" '
                     f'ORDER BY {", ".join(f"{chr(34)}{c}{chr(34)}" for c in keys or columns)}')
            with engine.connect() as conn:
                out[table] = pd.read_sql_query(sa.text(query), conn)
        return out
    finally:
        engine.dispose()


def test_a_run_across_hosts_stores_the_rows_of_a_local_run(cluster, workers, tmp_path: Path) -> None:
    hosts, pg, catalog = cluster
    distributed, local = _database(pg, "dist", tmp_path), _database(pg, "local", tmp_path)
    log = tmp_path / "dist.jsonl"
    run = subprocess.run(_ap_proto(hosts, distributed, log, catalog, 4, "--scheduler", _scheduler(hosts),
                                   "--workers", "2"), capture_output=True, text=True, env=_env(), timeout=900)
    assert run.returncode == 0, run.stderr
    run = subprocess.run(_ap_proto(hosts, local, tmp_path / "local.jsonl", catalog, 4, "--workers", "2"),
                         capture_output=True, text=True, env=_env(), timeout=900)
    assert run.returncode == 0, run.stderr
    # The run was distributed: both worker hosts, from the driver's one log.
    parsed = parse_log(log)
    assert parsed.malformed == 0
    pool = parsed.provenance[0]["pool"]
    assert pool["scheduler"] == _scheduler(hosts) and pool["workers"] == 2
    assert pool["hosts"] == sorted([hosts.addresses["worker1"], hosts.addresses["worker2"]])
    visits = parsed.timings[parsed.timings["op"] == "visit"]
    assert sorted(map(tuple, visits[["visit", "tile"]].to_numpy().tolist())) == [
        (v, t) for v in range(1, 5) for t in range(4)]
    # Distribution changes nothing in the data: every row of every table is the same.
    rows = {name: _tables(config) for name, config in (("distributed", distributed), ("local", local))}
    assert set(rows["distributed"]) == set(rows["local"]) and "DiaSource" in rows["local"]
    for table, frame in rows["local"].items():
        pd.testing.assert_frame_equal(rows["distributed"][table], frame, check_exact=True, obj=table)
    assert len(rows["local"]["L1dbVisit"]) == 16 and len(rows["local"]["DiaSource"]) > 0
    src = parsed.timings.query("op == 'src_insert'")["rows"].sum()
    assert src == len(rows["distributed"]["DiaSource"])


def test_a_worker_host_lost_mid_run_loses_and_duplicates_nothing(cluster, workers, tmp_path: Path) -> None:
    hosts, pg, catalog = cluster
    config = _database(pg, "lost", tmp_path)
    log = tmp_path / "lost.jsonl"
    total = 6
    proc = subprocess.Popen(_ap_proto(hosts, config, log, catalog, total, "--scheduler", _scheduler(hosts),
                                      "--workers", "2"), stderr=subprocess.PIPE, text=True, env=_env())
    # Once two visits are in (their 8 tiles' visit records), the first worker host goes away.
    try:
        wait_for_visits(log, 8, 600, proc)
    except BaseException:
        proc.kill()
        raise
    assert workers["worker1"].poll() is None, "the first worker host's worker is not running"
    workers["worker1"].send_signal(signal.SIGKILL)  # `ip netns exec` execs the worker: this is its pid
    _, err = proc.communicate(timeout=900)
    # Either it finished with the remaining worker, or it stopped with one clear line.
    assert proc.returncode in (0, 1), err
    lines = [line for line in err.splitlines() if line.startswith("ap_proto:")]
    assert "Traceback" not in err and lines, err
    if proc.returncode == 1:
        assert len(lines) == 1 and lines[0].startswith("ap_proto: error:"), err
    print(f"after the worker host was lost: exit {proc.returncode}, {lines[-1]}")  # which way it went (-rA)
    # Resume on the remaining worker: it finishes any visit left partial, then goes on.
    engine = _engine(config)
    with engine.connect() as conn:
        stored = pd.read_sql_query(sa.text('SELECT "visitId", tile FROM "L1dbVisit"'), conn)
    engine.dispose()
    complete = int((stored.groupby("visitId").size() == 4).sum())
    more = max(total - complete, 1)
    resume = subprocess.run(_ap_proto(hosts, config, log, catalog, more, "--scheduler", _scheduler(hosts)),
                            capture_output=True, text=True, env=_env(), timeout=900)
    assert resume.returncode == 0, resume.stderr
    expected = complete + more
    tables = _tables(config)
    visits = tables["L1dbVisit"]
    assert sorted(map(tuple, visits[["visitId", "tile"]].to_numpy().tolist())) == [
        (v, t) for v in range(1, expected + 1) for t in range(4)]
    # Nothing lost or stored twice; the rows stored per visit are the rows logged. A tile whose worker died
    # after its commit is not stored again, and its records died with the worker: at most that one tile.
    check = check_database(config, [log])
    assert check.problems == [] and check.visits == expected and len(check.unlogged) <= 1, check
    logged = parse_log(log).timings.query("op == 'visit'").groupby(["visit", "tile"]).size()
    assert (logged == 1).all() and len(visits) - len(logged) <= 1


def test_a_database_restart_is_retried_on_the_workers_and_logged_by_the_driver(cluster, workers,
                                                                              tmp_path: Path) -> None:
    """The database host's server restarts mid-run: the workers retry, their failure records reach the log."""
    hosts, pg, catalog = cluster
    config = _database(pg, "restart", tmp_path)
    log = tmp_path / "restart.jsonl"
    total = 6
    proc = subprocess.Popen(_ap_proto(hosts, config, log, catalog, total, "--scheduler", _scheduler(hosts),
                                      "--workers", "2", "--retry-attempts", "8"),
                            stderr=subprocess.PIPE, text=True, env=_env())
    try:
        wait_for_visits(log, 8, 600, proc)  # two visits of 4 tiles
    except BaseException:
        proc.kill()
        raise
    pg.restart(down=2.0)
    _, err = proc.communicate(timeout=900)
    assert proc.returncode == 0, err
    assert "Traceback" not in err
    parsed = parse_log(log)
    failures = parsed.failures
    assert len(failures) >= 1 and failures["retry"].all() and (failures["wait"] > 0).all(), failures
    # Every tile done once, its failed attempts' reads not added; the database equals the log.
    per_tile = parsed.timings.groupby(["visit", "tile", "op"]).size()
    for op in ("obj_select", "src_select", "store", "visit"):
        assert (per_tile.xs(op, level="op") == 1).all(), op
    check = check_database(config, [log])
    assert check.problems == [] and check.visits == total and check.unlogged == [], check


def test_an_open_loop_run_on_the_scheduler_overlaps_its_visits(cluster, workers, tmp_path: Path) -> None:
    """ap_proto --cadence on the Dask workers: visits released faster than they run wait for the workers behind
    each other; the verdict and the per-visit open-loop columns come from the driver's one log, and the database
    holds every visit's rows once."""
    hosts, pg, catalog = cluster
    config = _database(pg, "open", tmp_path)
    log = tmp_path / "open.jsonl"
    cadence, total = 0.1, 5
    run = subprocess.run(_ap_proto(hosts, config, log, catalog, total, "--scheduler", _scheduler(hosts),
                                   "--workers", "2", "--cadence", str(cadence), "--max-in-flight", "25"),
                         capture_output=True, text=True, env=_env(), timeout=900)
    assert run.returncode == 0, run.stderr
    parsed = parse_log(log)
    assert parsed.malformed == 0 and parsed.behind == []
    (provenance,) = parsed.provenance
    assert provenance["pool"]["scheduler"] == _scheduler(hosts) and provenance["pool"]["workers"] == 2
    assert provenance["config"]["ap_proto"]["cadence"] == cadence
    # The verdict line, from the latency records; the visits overlapped (a visit takes far longer than 0.1 s).
    result = verdict(parsed.latencies, cadence)
    assert result.visits == total and result.max_in_flight >= 2
    assert f"ap_proto: {result.line()}" in run.stderr.splitlines(), run.stderr

    # The per-visit table (log2csv): each visit released a cadence after the one before, its queue wait and
    # latency those of its latency record.
    csv = tmp_path / "open.csv"
    assert log2csv_main([str(log), "-o", str(csv)]) == 0
    table = read_csv(csv).set_index("visit").sort_index()
    latencies = parsed.latencies.set_index("visit").sort_index()
    assert table.index.tolist() == latencies.index.tolist() == list(range(1, total + 1))
    assert (table["complete"] == 1).all()
    assert (table["released"] - table["released"].iloc[0]).tolist() == pytest.approx(
        [cadence * k for k in range(total)], abs=1e-5)
    for column in ("released", "queue_wait", "latency"):
        assert table[column].tolist() == pytest.approx(latencies[column].tolist(), abs=1e-5), column
    assert (table["queue_wait"] >= 0).all() and (table["latency"] > table["queue_wait"]).all()

    # The database holds exactly the visits' rows: every tile once, the rows stored as logged, none twice.
    visits = _tables(config)["L1dbVisit"]
    assert sorted(map(tuple, visits[["visitId", "tile"]].to_numpy().tolist())) == [
        (v, t) for v in range(1, total + 1) for t in range(4)]
    logged = parsed.timings.query("op == 'visit_insert'").groupby(["visit", "tile"]).size()
    assert len(logged) == len(visits) and (logged == 1).all()
    check = check_database(config, [log])
    assert check.problems == [] and check.visits == total and check.unlogged == [], check


# -- the pool on one machine ---------------------------------------------------------


small_catalog = catalog_fixture(400, name="small_catalog")


def test_many_tiles_run_in_a_bounded_pool(small_catalog: Path, tmp_path: Path) -> None:
    """9 tiles a visit in 2 worker processes; one log written by the driver, every tile once, all stored."""
    from conftest import write_config

    from l1db.cli.create_l1_schema import main as create
    from l1db.scratch import read_table

    config = write_config(tmp_path / "l1db.cfg", f"sqlite:///{tmp_path}/l1db.sqlite3")
    assert create(["-c", str(config)]) == 0
    log = tmp_path / "t.jsonl"
    assert run_ap_proto(config, small_catalog, log, "-n", "2", "--retry-wait", "0.5", "--divide", "3",
                        "--workers", "2") == 0
    parsed = parse_log(log)
    assert len(parsed.provenance) == 1 and parsed.malformed == 0
    assert parsed.provenance[0]["pool"]["workers"] == 2 and parsed.provenance[0]["pool"]["scheduler"] == "local"
    per_tile = parsed.timings[parsed.timings["op"] == "visit"].groupby(["visit", "tile"]).size()
    assert per_tile.to_dict() == {(v, t): 1 for v in (1, 2) for t in range(9)}
    stored = read_table(config, "L1dbVisit", ["visitId", "tile"])
    assert len(stored) == 18
    sources = read_table(config, "DiaSource", ["diaSourceId"])
    assert parsed.timings.query("op == 'src_insert'")["rows"].sum() == len(sources) > 0


def test_a_worker_keeps_its_catalogue_and_connection_for_every_tile(small_catalog: Path, tmp_path: Path) -> None:
    from conftest import write_config

    from dia_sim.options import RunOptions
    from dia_sim.tile_task import TileJob, _processor, release_worker_state
    from l1db.config import load_config

    config = load_config(write_config(tmp_path / "l1db.cfg", f"sqlite:///{tmp_path}/l1db.sqlite3"))
    job = TileJob("run-a", config, str(small_catalog), RunOptions(num_visits=1))
    first = _processor(job)
    assert _processor(job) is first
    other = _processor(TileJob("run-b", config, str(small_catalog), RunOptions(num_visits=1)))
    assert other is not first and other.catalog is first.catalog  # a new run: a new connection, the same catalogue
    release_worker_state("run-b")
    assert _processor(job) is not first


@pytest.mark.parametrize(("address", "words"), [("localhost:8786", "bad scheduler address"),
                                                ("tcp://127.0.0.1:1", "cannot reach the Dask scheduler")])
def test_a_bad_or_unreachable_scheduler_is_one_line(address: str, words: str, small_catalog: Path, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture) -> None:
    from conftest import write_config

    from dia_sim.cli.ap_proto import main
    from l1db.cli.create_l1_schema import main as create

    config = write_config(tmp_path / "l1db.cfg", f"sqlite:///{tmp_path}/l1db.sqlite3")
    assert create(["-c", str(config)]) == 0
    capsys.readouterr()
    log = tmp_path / "t.jsonl"
    assert main(["-c", str(config), "-l", str(log), "--scheduler", address, "--no-progress", str(small_catalog)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and words in err and "Traceback" not in err, err
    assert not log.exists()  # refused before anything was written
