"""Real tests of the Cassandra launcher: l1db.cassandra.server and the ``cassandra_nodes`` command.

Nothing is mocked: the node is a real Apache Cassandra 5.0 server (Java 17, the
jars fetched once with Maven; the first run downloads about 70 MB). It runs in
a temporary run dir on 127.0.0.201, so that it does not clash with a node of
the default run dir on 127.0.0.1; it is started as a user whose port was taken
would: refused on 127.0.0.200 (held by the module), then started as advised.
Its node is also the one the fault-injection script kills under a short ap_proto
run (the node is this module's own: the shared test node runs without fsync).
About two minutes in all once the jars are there.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shlex
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from cassandra.cluster import EXEC_PROFILE_DEFAULT, Cluster, ExecutionProfile
from cassandra.policies import WhiteListRoundRobinPolicy

from l1db.cassandra import server

REPO = Path(__file__).resolve().parents[1]
#: Address of the test node: away from 127.0.0.1, where the default run dir's node listens.
ADDRESS = "127.0.0.201"
#: An address whose CQL port the module holds while a node is started on it (refused).
TAKEN = "127.0.0.200"

#: Its nodes are its own: it may run while a test restarts the shared servers (tests/conftest.py).
pytestmark = pytest.mark.own_servers


def cli(*args: str, env: dict[str, str] | None = None, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    """Run ``python -m l1db.cli.cassandra_nodes ARGS`` from the repository root, as a user would."""
    return subprocess.run(
        [sys.executable, "-m", "l1db.cli.cassandra_nodes", *args],
        check=False, cwd=REPO, capture_output=True, text=True, env=env, timeout=timeout,
    )


def one_error_line(proc: subprocess.CompletedProcess[str]) -> str:
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("cassandra_nodes: error: "), lines[0]
    return lines[0]


def dead(pid: int, within: float = 30.0) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if not Path(f"/proc/{pid}").exists() or Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] == "Z":
            return True
        time.sleep(0.2)
    return False


# --------------------------------------------------------- no server needed


def test_help_from_the_source_tree() -> None:
    proc = cli("--help")
    assert proc.returncode == 0, proc.stderr
    for word in ("start", "stop", "status", server.CASSANDRA_VERSION, "127.0.0.i"):
        assert word in proc.stdout
    proc = cli("start", "--help")
    assert proc.returncode == 0
    for option in ("--nodes", "--node", "--heap", "--run-dir", "--base-address"):
        assert option in proc.stdout


def test_status_of_a_run_dir_without_nodes(tmp_path: Path) -> None:
    assert server.status(tmp_path / "nothing") == []
    assert server.hosts(tmp_path / "nothing") == []
    proc = cli("status", "--run-dir", str(tmp_path / "nothing"))
    assert proc.returncode == 3
    assert proc.stdout.strip() == f"no Cassandra nodes in {tmp_path / 'nothing'}"


def test_stop_of_a_run_dir_without_nodes(tmp_path: Path) -> None:
    proc = cli("stop", "--run-dir", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    assert "nothing to stop" in proc.stdout


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["start", "-n", "0"], "number of nodes"),
        (["start", "--heap", "lots"], "heap must be a size"),
        (["start", "--heap", "100M"], "at least 256M"),
        (["start", "--node", "2"], "no cluster yet"),
        (["start", "--base-address", "10.0.0.1"], "loopback"),
        (["start", "--base-address", "localhost"], "not an IPv4 address"),
        (["stop", "--node", "3"], "no node 3"),
    ],
)
def test_bad_input_is_one_line_and_exit_1(tmp_path: Path, args: list[str], words: str) -> None:
    proc = cli(*args, "--run-dir", str(tmp_path / "run"))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert words in one_error_line(proc)
    assert not (tmp_path / "run" / "node1").exists()  # nothing was started


def test_usage_error_is_one_line_and_exit_2() -> None:
    proc = cli("start", "--nodes", "3", "--node", "2")
    assert proc.returncode == 2
    assert len(proc.stderr.splitlines()) == 1, proc.stderr


def test_no_node_starts_without_its_seed(tmp_path: Path) -> None:
    # A 2-node run dir as `start -n 2` records it, with neither node running.
    run = tmp_path / "run"
    run.mkdir()
    info = {"version": server.CASSANDRA_VERSION, "nodes": 2, "base_address": "127.0.0.211", "heap": "512M",
            "cluster_name": "l1dbproto-test"}
    (run / "cluster.json").write_text(json.dumps(info))
    assert server.hosts(run) == ["127.0.0.211", "127.0.0.212"]
    assert [node.running for node in server.status(run)] == [False, False]
    proc = cli("start", "--node", "2", "--run-dir", str(run))
    assert proc.returncode == 1
    assert "node 1 (127.0.0.211), the seed" in one_error_line(proc)
    assert not (run / "node2").exists()


def test_missing_maven_is_one_line(tmp_path: Path) -> None:
    empty_bin = tmp_path / "bin"
    empty_bin.mkdir()
    env = dict(os.environ, PATH=str(empty_bin), **{server.HOME_ENV: str(tmp_path / "home")})
    proc = cli("fetch", env=env)
    assert proc.returncode == 1
    assert "Maven (mvn) is needed" in one_error_line(proc)


# ------------------------------------------------------------ a real node


@dataclasses.dataclass
class StartedRunDir:
    """The module's run dir, and how its node was started: refused on a taken port first, then as advised."""

    path: Path
    refused: subprocess.CompletedProcess[str]
    started: subprocess.CompletedProcess[str]


@pytest.fixture(scope="module")
def started(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StartedRunDir]:
    """A run dir with one node started by ``cassandra_nodes start``, as a user whose port was taken would.

    The first start, on `TAKEN` (whose CQL port this fixture holds with a
    listening socket), is refused with its advice (``--base-address``); the
    second, on `ADDRESS`, for the same run dir, starts the node, which the
    module's tests share. One node for both (a start costs about 20 CPU-s).
    Stopped afterwards.
    """
    path = tmp_path_factory.mktemp("cassandra-run")
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as holder:
            holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            holder.bind((TAKEN, server.NATIVE_PORT))
            holder.listen()
            refused = cli("start", "--run-dir", str(path), "--base-address", TAKEN)
        begun = time.monotonic()
        proc = cli("start", "--run-dir", str(path), "--base-address", ADDRESS)
        print(f"one node started in {time.monotonic() - begun:.1f} s")
        yield StartedRunDir(path, refused, proc)
    finally:
        server.stop(path, timeout=30)


@pytest.fixture
def run_dir(started: StartedRunDir) -> Path:
    """The module's run dir (`started`) with its node up, whatever the test before did.

    A test may kill or stop the node: it is started again here, before the
    next test, so that every test starts from a running node and the tests
    pass in any order. (Not after a test: the last one's stop would cost a
    start only for the module's end to stop it again.)
    """
    assert started.started.returncode == 0, started.started.stdout + started.started.stderr
    assert server.ensure_running(started.path) == [ADDRESS]
    return started.path


def test_refused_on_a_taken_port_then_started_as_advised(started: StartedRunDir, run_dir: Path) -> None:
    refused = started.refused
    assert refused.returncode == 1, refused.stderr
    assert f"{TAKEN}:{server.NATIVE_PORT} is already taken" in one_error_line(refused)
    assert "--base-address" in refused.stderr
    # The advice: another address, for the same run dir.
    proc = started.started
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"node 1 ({ADDRESS}) is up: Cassandra {server.CASSANDRA_VERSION}" in proc.stdout
    assert f"logs in {started.path / 'node1' / 'logs'}" in proc.stdout
    info = server.cluster_info(started.path)
    assert info is not None and info.base_address == ADDRESS
    assert [(node.address, node.cql) for node in server.status(run_dir)] == [(ADDRESS, True)]


def node_pid(run_dir: Path) -> int:
    (node,) = server.status(run_dir, check_cql=False)
    assert node.pid is not None
    return node.pid


def test_cql_answers(run_dir: Path) -> None:
    profile = ExecutionProfile(load_balancing_policy=WhiteListRoundRobinPolicy([ADDRESS]))
    cluster = Cluster([ADDRESS], protocol_version=5, execution_profiles={EXEC_PROFILE_DEFAULT: profile})
    try:
        session = cluster.connect()
        assert session.execute("SELECT release_version FROM system.local").one()[0] == server.CASSANDRA_VERSION
        session.execute(
            "CREATE KEYSPACE l1dbtest WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}"
        )
        session.execute("CREATE TABLE l1dbtest.t (k int PRIMARY KEY, v text)")
        session.execute("INSERT INTO l1dbtest.t (k, v) VALUES (1, 'one')")
        assert session.execute("SELECT v FROM l1dbtest.t WHERE k = 1").one()[0] == "one"
        session.execute("DROP KEYSPACE l1dbtest")
    finally:
        cluster.shutdown()
    # auto_snapshot is off: a dropped keyspace leaves no snapshot behind.
    assert not list((run_dir / "node1" / "data").rglob("snapshots"))


def test_status_of_a_running_node(run_dir: Path) -> None:
    (node,) = server.status(run_dir)
    assert (node.index, node.address, node.release_version) == (1, ADDRESS, server.CASSANDRA_VERSION)
    assert node.running and node.cql and node.rss_mib and node.rss_mib > 100
    assert (node.log_dir / "system.log").stat().st_size > 0
    assert server.hosts(run_dir) == [ADDRESS]
    # nodetool's way in: the node's JMX port, recorded in its folder, answers on 127.0.0.1.
    port = server.jmx_port(node.node_dir)
    assert port is not None
    socket.create_connection(("127.0.0.1", port), timeout=10).close()
    # How long its start took, recorded for the retry budget (l1db.cassandra.start_times).
    took = server.start_seconds(node.node_dir)
    assert took is not None and 0 < took < server.START_TIMEOUT
    proc = cli("status", "--run-dir", str(run_dir))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"node 1  {ADDRESS}" in proc.stdout
    for words in (f"pid {node.pid}", " up ", f"CQL {server.CASSANDRA_VERSION}", f"logs {node.log_dir}"):
        assert words in proc.stdout
    # The JVM options it was started with beyond the shipped ones (scripts/test.sh: C1 only) are named.
    extra = server.extra_jvm_options()
    assert node.extra_jvm_options == shlex.join(extra)
    assert all(option in server._cmdline(node.pid) for option in extra)
    assert ("not a node to measure" in proc.stdout) == bool(extra)


def test_extra_jvm_options_that_cannot_be_split(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(server.JVM_OPTIONS_ENV, "-Dx='unclosed")
    with pytest.raises(server.CassandraError, match=f"{server.JVM_OPTIONS_ENV} cannot be split"):
        server.extra_jvm_options()
    monkeypatch.setenv(server.JVM_OPTIONS_ENV, "-XX:TieredStopAtLevel=1  -Da=b")
    assert server.extra_jvm_options() == ["-XX:TieredStopAtLevel=1", "-Da=b"]


def test_start_again_is_idempotent(run_dir: Path) -> None:
    pid = node_pid(run_dir)
    started = time.monotonic()
    proc = cli("start", "--run-dir", str(run_dir))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"node 1 ({ADDRESS}) is already running (pid {pid})" in proc.stdout
    assert time.monotonic() - started < 30
    assert server.ensure_running(run_dir) == [ADDRESS]
    assert node_pid(run_dir) == pid


def test_address_taken_by_another_run_dir(run_dir: Path, tmp_path: Path) -> None:
    proc = cli("start", "--run-dir", str(tmp_path / "other"), "--base-address", ADDRESS)
    assert proc.returncode == 1
    assert f"{ADDRESS}:9042 is already taken" in one_error_line(proc)


def test_kill_9_then_start_the_node_again(run_dir: Path) -> None:
    pid = node_pid(run_dir)
    os.kill(pid, signal.SIGKILL)
    assert dead(pid)
    proc = cli("status", "--run-dir", str(run_dir))
    assert proc.returncode == 3
    assert " down " in proc.stdout
    proc = cli("start", "--node", "1", "--run-dir", str(run_dir))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"node 1 ({ADDRESS}) is up" in proc.stdout
    assert node_pid(run_dir) != pid
    assert server.cql_release_version(ADDRESS) == server.CASSANDRA_VERSION


def test_stop(run_dir: Path) -> None:
    pid = node_pid(run_dir)
    proc = cli("stop", "--run-dir", str(run_dir))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"node 1 stopped (pid {pid}" in proc.stdout
    assert dead(pid, within=5)
    assert not (run_dir / "node1" / "cassandra.pid").exists()
    (node,) = server.status(run_dir)
    assert not node.running and not node.cql
    assert cli("status", "--run-dir", str(run_dir)).returncode == 3
    assert "not running" in cli("stop", "--run-dir", str(run_dir)).stdout


def test_a_node_restart_under_ap_proto_is_ridden_through(run_dir: Path, tmp_path: Path,
                                                          capsys: pytest.CaptureFixture) -> None:
    """The fault-injection script, shortened, on this module's node: a run during which the node is killed
    (kill -9) and started again rides through it (exit 0), its failures are recorded and retried, and the
    database equals its log. (Kills of ap_proto on Cassandra: tests/test_open_loop.py.)"""
    sys.path.insert(0, str(REPO / "benchmarks"))
    import fault_injection

    code = fault_injection.main([
        "--backends", "cassandra", "--cassandra-hosts", ADDRESS, "--run-dir", str(run_dir), "--node-stop", "kill",
        "--kills", "0", "--restarts", "1", "--visits", "5", "--down", "1", "--per-visit", "400", "--noise", "100",
        "--retry-wait", "0.5", "--keep", str(tmp_path),
    ])
    out = capsys.readouterr().out
    assert code == 0, out
    (row,) = [[c.strip() for c in line.split("|")[1:-1]] for line in out.splitlines() if line.startswith("| cassandra")]
    assert row[2] == "0" and row[9] == "all passed", row
    assert row[3].startswith("1 (") and row[3].endswith(", 1 by kill -9"), row  # one restart, by kill -9
    assert int(row[4]) >= 1 and int(row[1]) == 5, row  # failures recorded; every visit stored once
    assert node_pid(run_dir) is not None
