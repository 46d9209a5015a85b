"""``cassandra_nodes``: start, stop and inspect local Apache Cassandra nodes.

Examples::

    cassandra_nodes start                 # 1 node on 127.0.0.1 in ./run/cassandra
    cassandra_nodes start -n 3            # 3 nodes on 127.0.0.1 .. 127.0.0.3
    cassandra_nodes status
    cassandra_nodes stop --node 2         # stop one node ...
    cassandra_nodes start --node 2        # ... and bring it back
    cassandra_nodes stop
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from ..cassandra import server
from . import quiet_broken_pipe

__all__ = ["main"]

_LOG = logging.getLogger(__name__)

PROG = "cassandra_nodes"


class _Parser(argparse.ArgumentParser):
    """An argument parser whose usage errors are one line on stderr."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see {PROG} --help)\n")


def _add_run_dir(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--run-dir", default=None, metavar="DIR",
        help=f"folder of the nodes' config, data, logs and pid files (default: ${server.RUN_DIR_ENV} if set, "
        "else run/cassandra under the working directory)",
    )


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog=PROG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=(
            f"Run local Apache Cassandra {server.CASSANDRA_VERSION} nodes for the L1 benchmarks and tests.\n\n"
            "Node i listens on 127.0.0.i (CQL port 9042, storage port 7000 on every node; node 1 is the seed).\n"
            "The server is the official Maven artifact org.apache.cassandra:cassandra-all, fetched once with\n"
            f"Maven into ~/.cache/l1dbproto/cassandra-{server.CASSANDRA_VERSION}/lib "
            f"(or ${server.HOME_ENV}/lib) and run on Java 17.\n"
            "Each node runs detached from this command; its logs are in RUN_DIR/nodeN/logs.\n"
            f"${server.JVM_OPTIONS_ENV} adds JVM options to the nodes started (the tests' nodes: C1 only,\n"
            "cheaper to start); status names them: such a node is not one to measure."
        ),
        epilog=(
            "exit codes: 0 done (status: every node up and answering CQL), 1 error, 2 usage error,\n"
            "3 (status only) some node is down or there is no cluster\n\n"
            "examples:\n"
            "  cassandra_nodes start -n 3          start 3 nodes one after another\n"
            "  cassandra_nodes stop --node 2       stop node 2 only\n"
            "  cassandra_nodes start --node 2      restart it (e.g. after kill -9)\n"
            "  cassandra_nodes status --run-dir /tmp/c"
        ),
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log details (driver and launcher)")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True, parser_class=_Parser)

    start = commands.add_parser(
        "start", help="start the nodes (those not running), one after another, and wait until each answers CQL",
        description="Start the nodes that are not running, one after another; each is waited for until it "
        "answers CQL and, with several nodes, until the nodes list one another as peers. Nodes already "
        "running are left alone.",
    )
    _add_run_dir(start)
    which = start.add_mutually_exclusive_group()
    which.add_argument(
        "-n", "--nodes", type=int, default=None, metavar="N",
        help="number of nodes (default 1 on a new run dir, else the run dir's own number; more adds nodes)",
    )
    which.add_argument("--node", type=int, default=None, metavar="I",
                       help="start only node I of an existing run dir (e.g. after it was stopped or killed)")
    start.add_argument("--heap", default=None, metavar="SIZE",
                       help=f"-Xms/-Xmx of each node, e.g. 512M or 1G (default {server.DEFAULT_HEAP}, "
                       "or what the run dir was last started with)")
    start.add_argument("--base-address", default=None, metavar="ADDR",
                       help=f"address of node 1 on a new run dir; node i gets ADDR+i-1 "
                       f"(default {server.DEFAULT_BASE_ADDRESS})")
    start.add_argument("--timeout", type=float, default=server.START_TIMEOUT, metavar="SECONDS",
                       help=f"how long each node may take to answer CQL (default {server.START_TIMEOUT:g})")

    stop = commands.add_parser(
        "stop", help="stop the nodes (SIGTERM, then SIGKILL after a timeout); their data is kept",
        description="Stop the nodes: SIGTERM, then SIGKILL after the timeout. The data stays in the run dir.",
    )
    _add_run_dir(stop)
    stop.add_argument("--node", type=int, default=None, metavar="I", help="stop only node I")
    stop.add_argument("--timeout", type=float, default=server.STOP_TIMEOUT, metavar="SECONDS",
                      help=f"seconds between SIGTERM and SIGKILL (default {server.STOP_TIMEOUT:g})")

    status = commands.add_parser(
        "status", help="show each node: address, pid, up/down, whether it answers CQL, memory, logs",
        description="Show each node of the run dir. Exit code 0 when every node runs and answers CQL, else 3.",
    )
    _add_run_dir(status)

    commands.add_parser(
        "fetch", help="only fetch the Cassandra jars with Maven (done by start when needed) and print their folder",
        description="Fetch the Cassandra jars with Maven into the cache folder, unless they are there, "
        "and print the folder.",
    )
    return parser


def _print(line: str) -> None:
    print(line, flush=True)


def _run_dir_problem(run_dir: str | None) -> str | None:
    """Why ``run_dir`` cannot be a run dir (it, or a folder above it, is a file), or `None`."""
    path = server.default_run_dir() if run_dir is None else Path(run_dir).expanduser()
    for where in (path, *path.parents):
        if where.exists() and not where.is_dir():
            return f"{where} is a file, not a folder: give --run-dir a folder (made if absent)"
    return None


def _status(run_dir: str | None) -> int:
    nodes = server.status(run_dir)
    path = server.default_run_dir() if run_dir is None else run_dir
    if not nodes:
        print(f"no Cassandra nodes in {path}")
        return 3
    info = server.cluster_info(run_dir)
    heap = f", heap {info.heap}" if info else ""
    version = info.version if info else "?"
    print(f"Cassandra {version} in {path}: {len(nodes)} node{'s' if len(nodes) != 1 else ''}{heap}")
    for node in nodes:
        pid = f"pid {node.pid}" if node.pid else "-"
        state = "up" if node.running else "down"
        cql = f"CQL {node.release_version}" if node.cql else ("CQL not answering" if node.running else "-")
        rss = f"RSS {node.rss_mib:.0f} MiB" if node.rss_mib is not None else ""
        print(f"  node {node.index}  {node.address:<15} {pid:<11} {state:<5} {cql:<18} {rss:<13} "
              f"logs {node.log_dir}".rstrip())
        if node.extra_jvm_options:
            print(f"          started with JVM options {node.extra_jvm_options} ({server.JVM_OPTIONS_ENV}): "
                  f"not a node to measure")
    return 0 if all(node.cql for node in nodes) else 3


@quiet_broken_pipe
def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit code (0 done, 1 error, 2 usage, 3 status: not all up)."""
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        if args.command in ("start", "stop", "status"):
            problem = _run_dir_problem(args.run_dir)
            if problem is not None:
                raise server.CassandraError(problem)
        if args.command == "start":
            nodes = server.start(args.run_dir, args.nodes, node=args.node, heap=args.heap,
                                 base_address=args.base_address, timeout=args.timeout, report=_print)
            up = [node for node in nodes if node.cql]
            print(f"{len(up)} of {len(nodes)} node{'s' if len(nodes) != 1 else ''} up "
                  f"({', '.join(node.address for node in up)}; CQL port {server.NATIVE_PORT}); "
                  f"logs in {nodes[0].node_dir.parent}/node*/logs")
            return 0
        if args.command == "stop":
            server.stop(args.run_dir, node=args.node, timeout=args.timeout, report=_print)
            return 0
        if args.command == "status":
            return _status(args.run_dir)
        print(server.ensure_jars(report=_print))
        return 0
    except server.CassandraError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:  # the run dir's files: a folder that cannot be made or written
        print(f"{PROG}: error: {exc.filename or args.run_dir}: {exc.strerror}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted (nodes already started keep running; see {PROG} status)", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
