"""A 3-node Cassandra cluster (replication factor 3, QUORUM) that loses nodes while ap_proto runs.

Real nodes: the cluster of docs/cassandra.md's "3-node Cassandra cluster" block, started
by that block's first line (``cassandra_nodes start -n 3 --base-address
127.0.0.11 --run-dir run/cassandra-3node``) in a scratch dir like the one
tests/test_readme.py runs blocks in, on 127.0.0.11 .. 127.0.0.13 (never the
shared node on 127.0.0.1). One cluster start serves the module: the tests
below use it, and the last one runs the documentation block itself (its directive
``runs-in`` names this file), whose ``cassandra_nodes start`` finds the nodes
up and whose last line stops them. The module's fixture stops whatever is
left, whatever happened. Each test makes its own keyspace.

- One node killed (``kill -9``) mid-run: QUORUM (2 of 3) still holds, so the
  run goes on (a request that was in flight on the dead node is retried) and
  ends with exit 0; the node is started again and rejoins: a resumed run at
  consistency ALL, which needs every replica, works. The database holds
  exactly the rows the timing logs say were stored.
- Two nodes killed mid-run: no quorum; once its retries are spent ap_proto
  stops with one error line and exit 1. The nodes come back, the run
  resumes, and the database again holds exactly what the logs say.
- The documentation block runs as written on the cluster (all its nodes started
  again if a test left one down) and stops it.

Small catalogue and few visits, short client timeouts (`CLIENT_TIMEOUT`), and the
README block's run as written: 3 min 39 s alone on a 2-core machine (2026-12-07:
the cluster start 32 s, one node lost 57 s, two nodes lost 65 s, the README block
65 s), much of it nodes starting; the suite's longest path on one xdist worker.
"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from ap_runs import ap_proto_command, visits_logged, wait_for_visits
from conftest import catalog_fixture, write_config
from readme_blocks import ROOT, block_env, block_under, copy_scratch, run_block

from l1db import open_l1db
from l1db.cassandra import server
from l1db.cli.create_l1_schema import main as create
from l1db.timing_log import parse_logs

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
from _faults import check_database, kill_node  # noqa: E402

#: docs/cassandra.md's block that starts the cluster, runs ap_proto on it, stops it (run here: see the docstring).
README_BLOCK = block_under("3_node_Cassandra_cluster")
#: Its first line, which starts the cluster (in the README scratch dir).
START_LINE = README_BLOCK.code.splitlines()[0]
#: Node 1's address (the README block's); nodes 2 and 3 follow. Away from the shared node (127.0.0.1) and
#: test_cassandra_server's.
BASE_ADDRESS = "127.0.0.11"
HOSTS = [server.node_address(BASE_ADDRESS, i) for i in (1, 2, 3)]

#: Its nodes are its own: it may run while a test restarts the shared servers (tests/conftest.py).
pytestmark = pytest.mark.own_servers


def nodes_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "l1db.cli.cassandra_nodes", *args], check=False, cwd=ROOT,
                          capture_output=True, text=True, timeout=900)


@pytest.fixture(scope="module")
def readme_scratch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The scratch dir of the README block (copies of cfg/, schema/, ...); the cluster's run dir is in it."""
    return copy_scratch(tmp_path_factory.mktemp("readme-3node"))


@pytest.fixture(scope="module")
def cluster(readme_scratch: Path) -> Iterator[Path]:
    """Run dir of the 3-node cluster started by the README block's first line; stopped afterwards even on failure.

    The README block's last line stops it when the module runs whole; the
    cluster is thrown away (its data removed, its logs kept), so the tests'
    keyspaces are not dropped one by one.
    """
    argv = shlex.split(START_LINE, comments=True)
    assert argv[:2] == ["cassandra_nodes", "start"] and argv[argv.index("--base-address") + 1] == BASE_ADDRESS, \
        START_LINE
    path = readme_scratch / argv[argv.index("--run-dir") + 1]
    try:
        proc = subprocess.run(["bash", "-euo", "pipefail", "-c", START_LINE], check=False, cwd=readme_scratch,
                              env=block_env(), capture_output=True, text=True, timeout=900)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert f"3 of 3 nodes up ({', '.join(HOSTS)}" in proc.stdout
        yield path
    finally:
        server.stop(path, timeout=30)
        for data in path.glob("node*/data"):
            shutil.rmtree(data, ignore_errors=True)


sources = catalog_fixture(400)


@pytest.fixture
def keyspace(cluster: Path) -> str:
    """A fresh keyspace name on the cluster, every node of which is up (started again if a test left one down)."""
    if not all(node.cql for node in server.status(cluster)):
        proc = nodes_cli("start", "--run-dir", str(cluster))
        assert proc.returncode == 0, proc.stdout + proc.stderr
    return f"l1dbtest_{uuid.uuid4().hex[:12]}"


# The client's request timeouts are short here (the defaults: read_timeout 120 s, write_timeout 60 s).
# A request caught by a kill waits on the server's timeouts, not on the failure detector: a read at
# QUORUM whose replicas disagree waits for its read repair up to the nodes' write_request_timeout
# (60 s, cassandra.yaml), and one that had a replica on a killed node got no answer before the
# client's read_timeout (BENCHMARKS.md, "1 node against a 3-node cluster"). Each such wait cost the
# module a minute or two on one xdist worker, the suite's longest path. With CLIENT_TIMEOUT the
# request fails on the client (OperationTimedOut, a failure record) and the tile is retried, as
# after any failure; a visit here takes 1-3 s, so the margin stays wide on a busy machine.
CLIENT_TIMEOUT = 15


def cluster_config(tmp_path: Path, keyspace: str, consistency: str = "QUORUM", **options: object) -> Path:
    return write_config(tmp_path / f"{keyspace}-{consistency}.cfg", f"cassandra://{','.join(HOSTS)}/{keyspace}",
                        replication_factor=3, read_consistency=consistency, write_consistency=consistency,
                        read_timeout=CLIENT_TIMEOUT, write_timeout=CLIENT_TIMEOUT, row_count_every=0, **options)


def start_node(cluster: Path, index: int) -> None:
    proc = nodes_cli("start", "--node", str(index), "--run-dir", str(cluster))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"node {index} ({HOSTS[index - 1]}) is up" in proc.stdout


def check_database_equals_logs(config: Path, logs: list[Path], visits: int) -> None:
    """Visits 1..visits stored whole, no key twice, each visit's rows what the logs say (`_faults.check_database`)."""
    check = check_database(config, logs)
    assert check.problems == [] and check.unlogged == [] and check.visits == visits
    db = open_l1db(config)
    try:
        assert db.lastVisit()[0] == visits
    finally:
        db.close()


def test_driver_errors_logged_in_one_line(caplog: pytest.LogCaptureFixture) -> None:
    """The driver's background threads log a node's connection errors with tracebacks: they come out as one line."""
    import logging

    import l1db.cassandra.session  # noqa: F401 - installs the filter

    try:
        raise ConnectionRefusedError(111, "Connection refused")
    except ConnectionRefusedError:
        with caplog.at_level(logging.WARNING, logger="cassandra.cluster"):
            logging.getLogger("cassandra.cluster").warning("[control connection] Error connecting to %s:",
                                                           "127.0.0.22:9042", exc_info=True)
    (record,) = caplog.records
    assert record.exc_info is None and "Traceback" not in caplog.text
    assert record.getMessage() == ("[control connection] Error connecting to 127.0.0.22:9042: "
                                   "ConnectionRefusedError: [Errno 111] Connection refused")


def test_one_node_lost_and_back_loses_and_duplicates_nothing(cluster: Path, keyspace: str, sources: Path,
                                                             tmp_path: Path) -> None:
    config = cluster_config(tmp_path, keyspace, retry_attempts=5, retry_wait=1)
    assert create(["-c", str(config)]) == 0
    log = tmp_path / "quorum.jsonl"
    total = 8
    with open(tmp_path / "stderr", "w") as err:
        proc = subprocess.Popen(ap_proto_command(config, sources, log, "-n", total), stderr=err, text=True)
    try:
        at_kill = wait_for_visits(log, 2, 300, proc)
        kill_node(cluster, 3)
        # Visits are stored with one replica of three gone.
        wait_for_visits(log, at_kill + 2, 300, proc)
        start_node(cluster, 3)
        assert proc.wait(timeout=600) == 0, (tmp_path / "stderr").read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
    assert "Traceback" not in (tmp_path / "stderr").read_text()
    failures = parse_logs([log]).failures
    assert failures.empty or failures["retry"].all()  # a request caught on the dead node was retried
    # Node 3 is back in the ring: visits at consistency ALL need its answers.
    assert set(server.cql_peers(HOSTS[0])) >= {HOSTS[1], HOSTS[2]}
    all_config = cluster_config(tmp_path, keyspace, "ALL", retry_attempts=5, retry_wait=1)
    all_log = tmp_path / "all.jsonl"
    proc = subprocess.run(ap_proto_command(all_config, sources, all_log, "-n", 2), capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr
    check_database_equals_logs(all_config, [log, all_log], total + 2)


def test_two_nodes_lost_stop_the_run_which_resumes_when_they_are_back(cluster: Path, keyspace: str,
                                                                      sources: Path, tmp_path: Path) -> None:
    config = cluster_config(tmp_path, keyspace, retry_attempts=2, retry_wait=1)
    assert create(["-c", str(config)]) == 0
    log = tmp_path / "quorum.jsonl"
    # Room for the visits that end while the nodes are being killed (at most one or two): the run
    # stops well before its last visit, and the resume has a few visits to store.
    total = 8
    with open(tmp_path / "stderr", "w") as stderr:
        proc = subprocess.Popen(ap_proto_command(config, sources, log, "-n", total), stderr=stderr, text=True)
    try:
        wait_for_visits(log, 2, 300, proc)
        kill_node(cluster, 2)
        kill_node(cluster, 3)
        proc.wait(timeout=600)
    finally:
        if proc.poll() is None:
            proc.kill()
    err = (tmp_path / "stderr").read_text()
    assert proc.returncode == 1, err
    assert "Traceback" not in err
    # One line of ours; the rest is the driver's logged warnings (hosts marked down, reconnects).
    ours = [line for line in err.splitlines()
            if not re.match(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+ WARNING ", line)
            and not re.match(r"ap_proto: visit \d+ done", line)]
    assert len(ours) == 1 and ours[0].startswith("ap_proto: error: visit "), err
    assert "giving up (run again to resume)" in ours[0]
    failures = parse_logs([log]).failures
    assert not failures.empty and not failures["retry"].iloc[-1]
    done = visits_logged(log)
    assert 2 <= done < total
    # The nodes return; the same command resumes after the last stored visit.
    start_node(cluster, 2)
    start_node(cluster, 3)
    db = open_l1db(config)
    try:
        resume_at = db.lastVisit()[0] + 1
    finally:
        db.close()
    proc = subprocess.run(ap_proto_command(config, sources, log, "-n", total - resume_at + 1), capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    check_database_equals_logs(config, [log], total)


def test_readme_block_runs_on_the_cluster_and_stops_it(cluster: Path, readme_scratch: Path) -> None:
    """README's 3-node block, as written, last: its start finds the nodes up (or starts those a test left down)."""
    assert README_BLOCK.runs_in == Path(__file__).resolve().relative_to(ROOT).as_posix()
    run_block(README_BLOCK, readme_scratch)
    assert [node.pid for node in server.status(cluster, check_cql=False)] == [None, None, None]
