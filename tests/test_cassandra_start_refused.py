"""cassandra_nodes start refused on a port taken: the advice it gives (``--base-address``) then works.

A node of its own on addresses no other test uses (127.0.0.46, 127.0.0.47),
stopped by the fixture's finalizer. The taken port is held by the test itself
(a listening socket), not by another node.
"""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from l1db.cassandra import server

REPO = Path(__file__).resolve().parent.parent
TAKEN = "127.0.0.46"
FREE = "127.0.0.47"

#: Its node is its own: it may run while a test restarts the shared servers (tests/conftest.py).
pytestmark = pytest.mark.own_servers


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    """Run ``python -m l1db.cli.cassandra_nodes ARGS`` as a user would."""
    return subprocess.run([sys.executable, "-m", "l1db.cli.cassandra_nodes", *args], check=False, cwd=REPO,
                          capture_output=True, text=True, timeout=900)


@pytest.fixture
def run_dir(tmp_path: Path) -> Iterator[Path]:
    """A run dir whose nodes are stopped at the end of the test, whatever happened."""
    path = tmp_path / "run"
    try:
        yield path
    finally:
        server.stop(path)


def test_refused_on_a_taken_port_then_started_as_advised(run_dir: Path) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as holder:
        holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        holder.bind((TAKEN, server.NATIVE_PORT))
        holder.listen()
        proc = _cli("start", "--run-dir", str(run_dir), "--base-address", TAKEN)
    assert proc.returncode == 1, proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and f"{TAKEN}:{server.NATIVE_PORT} is already taken" in lines[0], proc.stderr
    assert "--base-address" in lines[0]
    # The advice: another address, for the same run dir.
    proc = _cli("start", "--run-dir", str(run_dir), "--base-address", FREE)
    assert proc.returncode == 0, proc.stderr
    assert [(node.address, node.cql) for node in server.status(run_dir)] == [(FREE, True)]
    info = server.cluster_info(run_dir)
    assert info is not None and info.base_address == FREE
