"""The retry budget follows a local Cassandra node's measured start (its run dir), and only ever grows."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from ap_runs import run_ap_proto
from conftest import catalog_fixture

from dia_sim.retries import RESTART_MARGIN, fitted_retry_wait, retry_budget
from l1db import open_l1db
from l1db.cassandra import server
from l1db.cassandra.start_times import last_start_seconds
from l1db.cli.create_l1_schema import main as create_schema
from l1db.timing_log import parse_log

sources = catalog_fixture(200, seed=9)

def test_fitted_retry_wait() -> None:
    assert retry_budget(5, 2.0) == 62.0
    assert fitted_retry_wait(5, 2.0, None) == 2.0  # nothing known
    assert fitted_retry_wait(5, 2.0, 20.0) == 2.0  # 62 s outlasts 2 x 20 s
    assert fitted_retry_wait(0, 2.0, 600.0) == 2.0  # no retries asked for: none made up
    wait = fitted_retry_wait(5, 2.0, 65.0)
    assert wait == 4.2 and retry_budget(5, wait) >= RESTART_MARGIN * 65.0 > retry_budget(5, wait - 0.1)
    assert fitted_retry_wait(3, 30.0, 65.0) == 30.0  # never lowered


def test_start_seconds_of_a_node(tmp_path: Path) -> None:
    assert server.start_seconds(tmp_path) is None  # never started
    for bad in ("", "soon", "nan", "-3"):
        (tmp_path / "start.seconds").write_text(bad)
        assert server.start_seconds(tmp_path) is None, bad
    (tmp_path / "start.seconds").write_text("21.250\n")
    assert server.start_seconds(tmp_path) == 21.25


def test_last_start_seconds_of_a_run_dir(tmp_path: Path) -> None:
    assert last_start_seconds(tmp_path) is None  # no cluster.json: no nodes
    run_dir = Path(os.environ.get(server.RUN_DIR_ENV) or server.default_run_dir())
    if server.cluster_info(run_dir) is None:
        pytest.skip(f"no local Cassandra run dir at {run_dir}")
    seconds = last_start_seconds(run_dir)
    # The test node, started by server.start: it recorded its start, shorter than the start timeout.
    assert seconds is not None and 0 < seconds < server.START_TIMEOUT
    assert seconds == max(server.start_seconds(node) or 0.0 for node in run_dir.glob("node*"))


def test_ap_proto_raises_retry_wait_to_outlast_the_node_start(make_cassandra_config, sources: Path,
                                                              tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    config = make_cassandra_config()
    with open_l1db(config) as db:
        restart = db.restart_seconds()
    if restart is None:
        pytest.skip("the test cluster's nodes are not those of the run dir")
    assert create_schema(["-c", str(config)]) == 0
    log = tmp_path / "timing.jsonl"
    # 0.01 s doubled 5 times: 0.31 s, far below any node's start.
    assert run_ap_proto(config, sources, log, "-n", "1", "--retry-wait", "0.01", "--retry-attempts", "5") == 0
    used = parse_log(log).provenance[0]["config"]["ap_proto"]["retry_wait"]
    assert used == fitted_retry_wait(5, 0.01, restart) > 0.01
    assert retry_budget(5, used) >= RESTART_MARGIN * restart
    assert "retry_wait raised from 0.01" in caplog.text
