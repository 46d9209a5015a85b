"""nodetool for the local nodes of a run dir (`l1db.cassandra.server`).

nodetool is ``org.apache.cassandra.tools.NodeTool`` of the same cassandra-all
jars the nodes run from, run on the same Java 17 with the ``--add-opens`` the
Cassandra classes need; it reaches a node through the JMX port the launcher
gave it (``RUN_DIR/nodeN/jmx.port``, on 127.0.0.1 only).

A JVM costs about 1.5 s of CPU to start, and a state's save or restore runs a
command per node and table: `NodeToolSession` runs them one after another in
one JVM (``conf/NodeToolSession.java``), and `Node.nodetool` one alone.
"""

from __future__ import annotations

import base64
import os
import select
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO

from ..state import StateError, run_tool, tool_failure, tool_version
from . import server

__all__ = ["Node", "NodeToolSession", "cluster_nodes", "nodetool_version"]

_MAIN_CLASS = "org.apache.cassandra.tools.NodeTool"
#: A short-lived client JVM: small heap, quick start (no G1, no C2).
_CLIENT_OPTIONS = ["-Xmx256m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1"]
#: Seconds for one nodetool command (a flush or an import of a large table takes a while).
_TIMEOUT = 3600.0


@dataclass(frozen=True)
class Node:
    """One running node of a run dir, as nodetool sees it.

    Attributes
    ----------
    index : `int`
        Node number (1-based).
    address : `str`
        Its CQL and listen address.
    node_dir : `pathlib.Path`
        Its folder in the run dir.
    jmx_port : `int`
        Its JMX port on 127.0.0.1.
    """

    index: int
    address: str
    node_dir: Path
    jmx_port: int

    @property
    def data_dir(self) -> Path:
        """Folder of the node's keyspaces (``cassandra.storagedir``/data)."""
        return self.node_dir / "data" / "data"

    def nodetool(self, *args: str, what: str) -> str:
        """Run ``nodetool ARGS`` against this node; return its output.

        Raises
        ------
        StateError
            If Java or the jars are missing, or the command fails (``what`` and
            nodetool's error line).
        """
        return run_tool([*_java_command(), *self._target(), *args], self._what(what), timeout=_TIMEOUT)

    def _target(self) -> list[str]:
        return ["-h", "127.0.0.1", "-p", str(self.jmx_port)]

    def _what(self, what: str) -> str:
        return f"{what} (nodetool on node {self.index}, {self.address})"


class NodeToolSession:
    """nodetool commands run one after another in one JVM, for any nodes; a context manager.

    The JVM (``conf/NodeToolSession.java``, compiled as it starts: Java's
    single-file source launch) starts with the first command and ends with the
    session. Where it cannot run (no compiler in the Java found), or a
    command's arguments hold a tab or a line break (its protocol's
    separators), each command runs in a JVM of its own, as `Node.nodetool`.
    """

    def __init__(self) -> None:
        self._proc: subprocess.Popen[str] | None = None
        self._stderr: IO[str] | None = None
        self._unusable = False

    def __enter__(self) -> NodeToolSession:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None

    def run(self, node: Node, *args: str, what: str) -> str:
        """Run ``nodetool ARGS`` against ``node``; return its output.

        Raises
        ------
        StateError
            If the command fails: ``what``, the node, and nodetool's error line.
        """
        if self._unusable or any("\t" in a or "\n" in a for a in args) or not self._started():
            return node.nodetool(*args, what=what)
        assert self._proc is not None and self._proc.stdin is not None
        try:
            self._proc.stdin.write("\t".join([*node._target(), *args]) + "\n")
            self._proc.stdin.flush()
            answer = self._answer(_TIMEOUT)
        except OSError:
            answer = ""
        if not answer:  # the JVM ended (or hangs) under this command
            self.close()
            raise StateError(f"{node._what(what)} failed: the nodetool JVM ended ({self._tail()})")
        status, out, err = (base64.b64decode(part).decode(errors="replace") if i else part
                            for i, part in enumerate(answer.rstrip("\n").split("\t")))
        if int(status) != 0:
            raise tool_failure(node._what(what), err or out, int(status))
        return out

    def close(self) -> None:
        """End the JVM (it ends when its input does); its error output is kept until the session ends."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        try:
            assert proc.stdin is not None
            proc.stdin.close()
            proc.wait(timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            proc.kill()
            proc.wait()

    def _started(self) -> bool:
        if self._proc is not None:
            return True
        command = _java_command()
        command[command.index(_MAIN_CLASS)] = str(server.CONF_DIR / "NodeToolSession.java")
        if self._stderr is None:
            self._stderr = tempfile.TemporaryFile("w+")  # noqa: SIM115 - the session's, closed at its end
        try:
            self._proc = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                          stderr=self._stderr, text=True)
        except OSError:
            self._unusable = True
            return False
        if self._answer(120.0) != "ready\n":
            # Not a JDK (no compiler), or a JVM that cannot start: one JVM per command instead.
            self.close()
            self._unusable = True
            return False
        return True

    def _answer(self, timeout: float) -> str:
        """The JVM's next line, or "" if it ends or says nothing for ``timeout`` seconds."""
        assert self._proc is not None and self._proc.stdout is not None
        ready, _, _ = select.select([self._proc.stdout], [], [], timeout)
        return self._proc.stdout.readline() if ready else ""

    def _tail(self) -> str:
        if self._stderr is None:
            return "no output"
        self._stderr.seek(0)
        lines = [line.strip() for line in self._stderr.read().splitlines() if line.strip()]
        return lines[-1][:300] if lines else "no output"


def _java_command() -> list[str]:
    try:
        java = server.find_java()
        lib = server.ensure_jars()
    except server.CassandraError as exc:
        raise StateError(str(exc)) from None
    # Only the module openings of the server's options: the rest tunes a long-lived server.
    opens = server.jvm_options()
    pairs = [[opens[i], opens[i + 1]] for i in range(len(opens) - 1) if opens[i].startswith("--add-")]
    return [java, *_CLIENT_OPTIONS, *(a for pair in pairs for a in pair),
            f"-Dlogback.configurationFile={server.CONF_DIR / 'logback.xml'}",
            f"-Dcassandra.logdir={os.devnull}", "-cp", f"{lib}/*", _MAIN_CLASS]


def nodetool_version() -> str:
    """What nodetool says of its version (``nodetool version`` needs a node; this names the jars)."""
    java = _java_command()[0]
    return f"nodetool of cassandra-all {server.CASSANDRA_VERSION} on {tool_version([java, '-version'])}"


def cluster_nodes(run_dir: str | os.PathLike[str] | None, hosts: tuple[str, ...]) -> list[Node]:
    """Every node of the run dir whose cluster serves ``hosts``, each running with a JMX port.

    Parameters
    ----------
    run_dir : path-like or `None`
        Run dir of the nodes (`server.default_run_dir` when `None`).
    hosts : `tuple` [`str`]
        Contact points of the database URL: each must be a node of the run dir.

    Raises
    ------
    StateError
        If the run dir holds no cluster, a host is not one of its nodes, or a
        node is down or was started without JMX.
    """
    run_dir = server.default_run_dir() if run_dir is None else Path(run_dir).expanduser().resolve()
    try:
        info = server.cluster_info(run_dir)
    except server.CassandraError as exc:  # a damaged run dir: said in one line, as a state's error
        raise StateError(str(exc)) from None
    if info is None:
        raise StateError(f"{run_dir} holds no Cassandra nodes: give --run-dir the run dir of the database's "
                         "nodes (as for cassandra_nodes); nodetool works on this toolkit's local nodes only")
    stranger = [h for h in hosts if h not in info.addresses]
    if stranger:
        raise StateError(f"{', '.join(stranger)} is not a node of the cluster in {run_dir} "
                         f"({', '.join(info.addresses)}): give --run-dir the run dir of the database's nodes")
    nodes = []
    try:
        statuses = server.status(run_dir, check_cql=False)
    except server.CassandraError as exc:
        raise StateError(str(exc)) from None
    for status in statuses:
        if not status.running:
            raise StateError(f"node {status.index} ({status.address}) of {run_dir} is not running: "
                             f"start it (cassandra_nodes start --run-dir {run_dir})")
        port = server.jmx_port(status.node_dir)
        if port is None:
            raise StateError(f"node {status.index} ({status.address}) of {run_dir} was started without JMX "
                             f"(by an older toolkit): restart it (cassandra_nodes stop --run-dir {run_dir}; "
                             f"cassandra_nodes start --run-dir {run_dir}) so that nodetool can reach it")
        nodes.append(Node(status.index, status.address, status.node_dir, port))
    return nodes

