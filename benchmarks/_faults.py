"""Faults for the reliability tests: server restarts, and the check of a database against its timing logs.

Used by ``fault_injection.py`` and by the tests that restart the servers
(``tests/test_db_restart.py``). Run from the repository root; this folder is
then first on ``sys.path``.

Restarting a server affects everyone who uses it: the restarts here are
short (the server is back within seconds) and are only made by the scripts
and tests that need them. A Cassandra node is restarted only in the run dir
given (never the shared test node: its fsync is off, and a ``kill -9`` would
lose its schema changes).
"""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from l1db.backends import CASSANDRA, SQL
from l1db.config import load_config
from l1db.scratch import read_table
from l1db.tables import load_definitions
from l1db.timing_log import parse_logs

__all__ = ["RESTARTABLE", "restart_server", "server_is_up", "kill_node", "Check", "check_database"]

#: Backends whose server `restart_server` can restart.
RESTARTABLE = ("postgresql", "mysql", "cassandra")
#: How a Cassandra node is taken down: ``kill -9`` of its JVM, or ``cassandra_nodes stop`` (SIGTERM).
NODE_STOPS = ("kill", "stop")

#: PostgreSQL cluster of this machine (Debian's pg_ctlcluster names it by version and name).
PG_CLUSTER = ("15", "main")
#: How the MariaDB server of this machine is started (and started again).
MARIADB_START = ["start-stop-daemon", "--start", "--background", "--exec", "/usr/sbin/mariadbd", "--",
                 "--user=mysql"]
MARIADB_PID_FILE = Path("/run/mysqld/mysqld.pid")


def server_is_up(backend: str) -> bool:
    """Whether the local server of ``backend`` accepts connections."""
    if backend == "postgresql":
        command = ["pg_isready", "-q", "-h", "127.0.0.1", "-p", "5432"]
    elif backend == "mysql":
        command = ["mariadb-admin", "--silent", "ping"]
    else:
        raise ValueError(f"cannot check the server of {backend}")
    return subprocess.run(command, capture_output=True).returncode == 0


def _wait(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(0.1)


def restart_server(backend: str, down: float = 0.0, timeout: float = 60.0, *, run_dir: Path | None = None,
                   how: str = "stop") -> float:
    """Stop the local server of ``backend`` (its clients' connections die), wait ``down`` seconds, start it.

    PostgreSQL: ``pg_ctlcluster stop`` (fast mode: sessions are terminated
    with AdminShutdown) and ``start``. MariaDB: SIGTERM to the mariadbd process
    (by its pid), then started as it was (`MARIADB_START`). Cassandra: node 1
    of ``run_dir`` (`l1db.cassandra.server`), ``how`` = ``"kill"`` (``kill -9``)
    or ``"stop"`` (``cassandra_nodes stop``), then ``cassandra_nodes start
    --node 1``, which waits until CQL answers (its own time-out, not
    ``timeout``). Returns when the server accepts connections again.

    Returns
    -------
    seconds : `float`
        How long the server was unavailable.
    """
    start = time.monotonic()
    if backend == "postgresql":
        subprocess.run(["pg_ctlcluster", *PG_CLUSTER, "stop", "-m", "fast"], check=True, capture_output=True)
        time.sleep(down)
        subprocess.run(["pg_ctlcluster", *PG_CLUSTER, "start"], check=True, capture_output=True)
    elif backend == "mysql":
        pid = int(MARIADB_PID_FILE.read_text().split()[0])
        os.kill(pid, signal.SIGTERM)
        _wait(lambda: not Path(f"/proc/{pid}").exists(), timeout, f"mariadbd (pid {pid}) to stop")
        time.sleep(down)
        subprocess.run(MARIADB_START, check=True, capture_output=True)
    elif backend == "cassandra":
        _restart_node(run_dir, down, how, timeout)
        return time.monotonic() - start
    else:
        raise ValueError(f"cannot restart the server of {backend}; restartable: {', '.join(RESTARTABLE)}")
    _wait(lambda: server_is_up(backend), timeout, f"the {backend} server to accept connections")
    return time.monotonic() - start


def kill_node(run_dir: Path, index: int, timeout: float = 60.0) -> int:
    """``kill -9`` node ``index`` (from 1) of ``run_dir`` and wait until it is gone (its ports free); its pid."""
    from l1db.cassandra import server

    pid = server.status(run_dir, check_cql=False)[index - 1].pid
    if pid is None:
        raise RuntimeError(f"node {index} of {run_dir} is not running")
    os.kill(pid, signal.SIGKILL)
    # status() reaps the JVM if this process started it (a zombie still has its /proc entry).
    _wait(lambda: not server.status(run_dir, check_cql=False)[index - 1].running, timeout,
          f"node {index} (pid {pid}) to die")
    return pid


def _restart_node(run_dir: Path | None, down: float, how: str, timeout: float) -> None:
    """Take node 1 of ``run_dir`` down (``how``, `NODE_STOPS`), wait ``down`` s, start it again."""
    from l1db.cassandra import server

    if run_dir is None:
        raise ValueError("a Cassandra restart needs the nodes' run dir")
    if how not in NODE_STOPS:
        raise ValueError(f"how: one of {', '.join(NODE_STOPS)}, not {how!r}")
    node = server.status(run_dir, check_cql=False)[0]
    if node.pid is None:
        raise RuntimeError(f"node 1 of {run_dir} is not running")
    if how == "kill":
        kill_node(run_dir, node.index, timeout)
    else:
        server.stop(run_dir, node=node.index, report=lambda line: None)
    time.sleep(down)
    server.start(run_dir, node=node.index, report=lambda line: None)


@dataclasses.dataclass
class Check:
    """Outcome of `check_database`.

    Attributes
    ----------
    visits : `int`
        Visits stored.
    problems : `list` [`str`]
        Everything that does not hold; empty for a consistent database.
    unlogged : `list` [`int`]
        Visits stored with a tile whose store is not in the log: a process
        killed in the instant between a store's commit and the writing of
        its records (allowed: at most one per kill). Left out of the
        per-visit comparison.
    failures : `int`
        Failure records in the logs.
    """

    visits: int = 0
    problems: list[str] = dataclasses.field(default_factory=list)
    unlogged: list[int] = dataclasses.field(default_factory=list)
    failures: int = 0


def _duplicates(frame: pd.DataFrame, key: Sequence[str]) -> int:
    return int(frame.duplicated(subset=list(key)).sum())


def check_database(config_path: str | os.PathLike, logs: Iterable[str | os.PathLike]) -> Check:
    """Check a database against the timing logs of the runs that filled it.

    Checks that the stored visits are contiguous and each holds all its
    tiles; that no key is stored twice; that the rows stored per visit
    (DiaSource, DiaForcedSource, DiaObject versions) equal what the logs say
    was stored; and that the latest-version table (``DiaObjectLast``, or the
    open versions of DiaObject) holds exactly the newest version of every
    object.
    """
    config = load_config(config_path)
    parsed = parse_logs(list(logs))
    timings = parsed.timings
    result = Check(failures=len(parsed.failures))
    problems = result.problems
    definitions = load_definitions(config).tables

    visits = read_table(config, "L1dbVisit", ["visitId", "tile", "visitTimeMjdTai", "nTiles"])
    ids = np.sort(visits["visitId"].unique())
    result.visits = len(ids)
    if len(ids) and not np.array_equal(ids, np.arange(ids[0], ids[0] + len(ids))):
        missing = sorted(set(range(int(ids[0]), int(ids[-1]) + 1)) - set(ids.tolist()))
        problems.append(f"visits not contiguous: {len(missing)} missing between {ids[0]} and {ids[-1]}: "
                        f"{missing[:10]}")
    if _duplicates(visits, ["visitId", "tile"]):
        problems.append("L1dbVisit: a (visitId, tile) stored twice")
    tiles = visits.groupby("visitId").agg(n=("tile", "nunique"), want=("nTiles", "max"))
    partial = tiles.index[tiles["n"] != tiles["want"]].tolist()
    if partial:
        problems.append(f"visits with tiles missing: {partial[:10]}")

    # Rows stored per visit against the rows logged as stored: the visits' own records, not the daily
    # job's (its merge moves the versions the visits stored in DiaObjectNightly: counted as theirs).
    def logged(*ops: str) -> pd.Series:
        rows = timings[timings["op"].isin(ops) & ~timings["daily"]]
        return rows.groupby("visit")["rows"].sum().astype("int64")

    # A visit whose every stored tile logged its store (visit_insert) is compared; the others were
    # killed between a commit and the writing of its records.
    logged_tiles = timings[timings["op"] == "visit_insert"].groupby("visit").size()
    stored_tiles = visits.groupby("visitId").size()
    result.unlogged = [int(v) for v in ids if logged_tiles.get(v, 0) < stored_tiles[v]]
    time_to_visit = dict(zip(visits["visitTimeMjdTai"], visits["visitId"]))
    objects = read_table(config, "DiaObject", ["diaObjectId", "validityStartMjdTai"])
    object_visits = objects["validityStartMjdTai"].map(time_to_visit)
    if object_visits.isna().any():
        problems.append(f"DiaObject: {int(object_visits.isna().sum())} versions of no stored visit")
    nightly = pd.DataFrame(columns=["diaObjectId", "validityStartMjdTai"])
    if config.backend == SQL and config.dia_object_nightly:
        nightly = read_table(config, "DiaObjectNightly", ["diaObjectId", "validityStartMjdTai"])
    all_versions = pd.concat([objects, nightly], ignore_index=True)
    stored = {
        "DiaSource": read_table(config, "DiaSource", list(definitions["DiaSource"].primary_key) + ["visit"]),
        "DiaForcedSource": read_table(config, "DiaForcedSource",
                                        list(dict.fromkeys([*definitions["DiaForcedSource"].primary_key, "visit"]))),
    }
    for name, frame in stored.items():
        if _duplicates(frame, definitions[name].primary_key):
            problems.append(f"{name}: a primary key stored twice")
    if _duplicates(all_versions, ["diaObjectId", "validityStartMjdTai"]):
        problems.append("DiaObject: a (diaObjectId, validityStartMjdTai) stored twice")
    per_visit = {
        "DiaSource": (stored["DiaSource"].groupby("visit").size(), logged("src_insert")),
        "DiaForcedSource": (stored["DiaForcedSource"].groupby("visit").size(), logged("fsrc_insert")),
        "DiaObject": (all_versions["validityStartMjdTai"].map(time_to_visit).dropna().astype("int64")
                      .value_counts(), logged("obj_insert", "obj_nightly_insert")),
    }
    for name, (in_db, in_log) in per_visit.items():
        in_db = in_db[~in_db.index.isin(result.unlogged)]
        in_log = in_log[~in_log.index.isin(result.unlogged)]
        both = pd.concat([in_db.rename("db"), in_log.rename("log")], axis=1).fillna(0).astype("int64")
        differ = both[both["db"] != both["log"]]
        if len(differ):
            problems.append(f"{name}: rows per visit differ from the log for {len(differ)} visits, e.g. "
                            + ", ".join(f"visit {v}: {r.db} stored, {r.log} logged"
                                        for v, r in differ.head(5).iterrows()))

    # The latest-version table holds the newest version of every object.
    newest = all_versions.groupby("diaObjectId")["validityStartMjdTai"].max()
    if config.backend == CASSANDRA or config.dia_object_index == "last_object_table":
        last = read_table(config, "DiaObjectLast", ["diaObjectId", "validityStartMjdTai"])
        if config.backend == SQL and config.dia_object_nightly:
            newest = objects.groupby("diaObjectId")["validityStartMjdTai"].max()  # the nightly ones wait
        latest = last.set_index("diaObjectId")["validityStartMjdTai"]
        label = "DiaObjectLast"
    else:
        versions = read_table(config, "DiaObject", ["diaObjectId", "validityStartMjdTai", "validityEndMjdTai"])
        open_ = versions[versions["validityEndMjdTai"].isna()]
        if open_["diaObjectId"].duplicated().any():
            problems.append("DiaObject: an object with two open versions")
        latest = open_.drop_duplicates("diaObjectId").set_index("diaObjectId")["validityStartMjdTai"]
        newest = objects.groupby("diaObjectId")["validityStartMjdTai"].max()
        label = "open DiaObject versions"
    if latest.index.duplicated().any():
        problems.append(f"{label}: an object twice")
    compare = pd.concat([newest.rename("newest"), latest[~latest.index.duplicated()].rename("latest")], axis=1)
    wrong = compare[compare["newest"] != compare["latest"]]
    if len(wrong):
        problems.append(f"{label}: {len(wrong)} objects whose latest version is not the newest stored, e.g. "
                        f"{wrong.index[:5].tolist()}")
    return result
