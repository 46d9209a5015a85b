"""Several hosts on the test machine: Linux network namespaces on a bridge, made and removed by the tests.

Each host is a network namespace with one veth link to a bridge of its own
subnet (10.77.N.0/24, N picked at random so that concurrent test runs do not
meet), its own address and its own loopback: a process in it reaches the
others only through their addresses. The test process itself (the root
namespace) gets the subnet's last address, to check the databases from
outside. Needs root (``ip netns``); anything that cannot be made fails with
one clear message, never a skip.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from collections.abc import Sequence
from pathlib import Path

import pytest


def _pg_bin() -> Path:
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=lambda p: int(p.parent.name))
    return versions[-1] if versions else Path("/usr/lib/postgresql/15/bin")


#: The PostgreSQL server binaries a database host runs: Debian's newest (scripts/test.sh installs it).
PG_BIN = Path(os.environ["L1DB_TEST_PG_BIN"]) if os.environ.get("L1DB_TEST_PG_BIN") else _pg_bin()


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True)


class Hosts:
    """Hosts named ``names`` on one bridge; `remove` takes everything away, processes included.

    Raises
    ------
    pytest.fail.Exception
        If the namespaces, the bridge or the links cannot be made (not root,
        no ``ip``), with the command's own message.
    """

    def __init__(self, names: Sequence[str]) -> None:
        tag = uuid.uuid4().hex[:6]
        self.subnet = random.randrange(1, 250)
        self.bridge = f"l1br{tag}"
        self.namespaces = {name: f"l1db-{tag}-{name}" for name in names}
        self.addresses = {name: f"10.77.{self.subnet}.{i + 1}" for i, name in enumerate(names)}
        #: The root namespace's address on the bridge (the test's own, to check from outside).
        self.outside = f"10.77.{self.subnet}.254"
        self._procs: list[subprocess.Popen] = []
        try:
            _ip("link", "add", self.bridge, "type", "bridge")
            _ip("addr", "add", f"{self.outside}/24", "dev", self.bridge)
            _ip("link", "set", self.bridge, "up")
            for i, (name, ns) in enumerate(self.namespaces.items()):
                veth = f"l1v{tag}{i}"
                _ip("netns", "add", ns)
                _ip("link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns)
                _ip("link", "set", veth, "master", self.bridge, "up")
                _ip("-n", ns, "addr", "add", f"{self.addresses[name]}/24", "dev", "eth0")
                _ip("-n", ns, "link", "set", "eth0", "up")
                _ip("-n", ns, "link", "set", "lo", "up")
        except (OSError, subprocess.CalledProcessError) as exc:
            detail = getattr(exc, "stderr", None) or exc
            self.remove()
            pytest.fail(f"cannot make network namespaces for the multi-host tests (root and iproute2's `ip` "
                        f"are needed): {' '.join(str(detail).split())}", pytrace=False)

    def command(self, host: str, argv: Sequence[str]) -> list[str]:
        """``argv`` run on ``host`` (in its namespace)."""
        return ["ip", "netns", "exec", self.namespaces[host], *map(str, argv)]

    def start(self, host: str, argv: Sequence[str], log: Path, **kwargs) -> subprocess.Popen:
        """Start ``argv`` on ``host`` in its own process group, output to ``log``; stopped by `remove`."""
        with open(log, "ab") as out:
            proc = subprocess.Popen(self.command(host, argv), stdout=out, stderr=subprocess.STDOUT,
                                    start_new_session=True, **kwargs)
        self._procs.append(proc)
        return proc

    def run(self, host: str, argv: Sequence[str], **kwargs) -> subprocess.CompletedProcess:
        """Run ``argv`` on ``host`` to its end; stdout and stderr captured as text."""
        return subprocess.run(self.command(host, argv), capture_output=True, text=True, **kwargs)

    def remove(self) -> None:
        """Kill every process on the hosts, delete the namespaces, the links and the bridge."""
        for proc in self._procs:
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                proc.wait()
        for ns in self.namespaces.values():
            pids = subprocess.run(["ip", "netns", "pids", ns], capture_output=True, text=True).stdout.split()
            for pid in pids:
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except (ProcessLookupError, ValueError):
                    pass
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)
        # The veths went with their namespaces; the bridge is the root namespace's.
        subprocess.run(["ip", "link", "del", self.bridge], capture_output=True)


class PostgresHost:
    """A PostgreSQL server of the test's own on ``host``, in a temporary directory, listening on its address only.

    Never the shared server: its own data directory, socket directory and
    address. `stop` stops it and removes the directory.
    """

    def __init__(self, hosts: Hosts, host: str, port: int = 5432) -> None:
        import pwd

        self.hosts = hosts
        self.address = hosts.addresses[host]
        self.port = port
        self.dir = Path(tempfile.mkdtemp(prefix="l1db-pg-"))
        user = pwd.getpwnam("postgres")
        os.chown(self.dir, user.pw_uid, user.pw_gid)
        data = self.dir / "data"
        as_postgres = ["runuser", "-u", "postgres", "--"]
        init = subprocess.run([*as_postgres, str(PG_BIN / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust",
                               "-E", "UTF8", "--no-sync"], capture_output=True, text=True)
        if init.returncode != 0:
            self.stop()
            pytest.fail(f"initdb of the database host failed: {' '.join(init.stderr.split())}", pytrace=False)
        with open(data / "pg_hba.conf", "a") as hba:
            hba.write(f"host all all 10.77.{hosts.subnet}.0/24 trust\n")
        self.host = host
        self._argv = [*as_postgres, PG_BIN / "postgres", "-D", data, "-p", port,
                      "-c", f"listen_addresses={self.address}", "-c", f"unix_socket_directories={self.dir}",
                      "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off"]
        self.admin_url = f"postgresql+psycopg2://postgres@{self.address}:{port}/postgres"
        self._start()

    def _start(self) -> None:
        self.proc = self.hosts.start(self.host, self._argv, self.dir / "postgres.log")
        deadline = time.monotonic() + 60
        while True:
            ready = self.hosts.run(self.host, [PG_BIN / "pg_isready", "-q", "-h", self.address, "-p", self.port])
            if ready.returncode == 0:
                return
            if self.proc.poll() is not None or time.monotonic() > deadline:
                log = (self.dir / "postgres.log").read_text(errors="replace")[-2000:]
                self.stop()
                pytest.fail(f"the database host's PostgreSQL did not start: {log}", pytrace=False)
            time.sleep(0.3)

    def restart(self, down: float) -> None:
        """Stop the server (fast shutdown: every connection is cut), wait ``down`` seconds, start it again."""
        os.killpg(self.proc.pid, signal.SIGINT)
        self.proc.wait(timeout=60)
        time.sleep(down)
        self._start()

    def create_database(self, name: str) -> str:
        """Create database ``name``; return its URL."""
        import sqlalchemy

        engine = sqlalchemy.create_engine(self.admin_url, isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
        engine.dispose()
        return f"postgresql://postgres@{self.address}:{self.port}/{name}"

    def stop(self) -> None:
        """Stop the server (fast shutdown) and remove its directory."""
        proc = getattr(self, "proc", None)
        if proc is not None and proc.poll() is None:
            os.killpg(proc.pid, signal.SIGINT)  # PostgreSQL's fast shutdown (runuser passes it on)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)
