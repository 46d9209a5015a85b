"""nodetool for the local nodes of a run dir (`l1db.cassandra.server`).

nodetool is ``org.apache.cassandra.tools.NodeTool`` of the same cassandra-all
jars the nodes run from, run on the same Java 17 with the ``--add-opens`` the
Cassandra classes need; it reaches a node through the JMX port the launcher
gave it (``RUN_DIR/nodeN/jmx.port``, on 127.0.0.1 only).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from ..state import StateError, run_tool, tool_version
from . import server

__all__ = ["Node", "cluster_nodes", "nodetool_version"]

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
        command = [*_java_command(), "-h", "127.0.0.1", "-p", str(self.jmx_port), *args]
        return run_tool(command, f"{what} (nodetool on node {self.index}, {self.address})", timeout=_TIMEOUT)


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

