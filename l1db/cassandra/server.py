"""Start, stop and inspect local Apache Cassandra nodes for the L1 benchmarks and tests.

A real Cassandra server is run from the official Maven artifact
``org.apache.cassandra:cassandra-all`` plus its dependencies (the version is
pinned in ``conf/pom.xml``), fetched once with ``mvn dependency:copy-dependencies``
into a cache folder and started on Java 17 as ``java -cp 'lib/*'
org.apache.cassandra.service.CassandraDaemon``, which is all the release's own
``bin/cassandra`` does.

Node ``i`` (1-based) of a run listens on the ``i``-th loopback address from the
base address (by default 127.0.0.1, 127.0.0.2, ...); all nodes use the same
ports (CQL 9042, storage 7000) and the first node is the seed of all. Nodes are
started one after another, each only once the previous one answers CQL. Each
node lives in its own folder of the run dir::

    RUN_DIR/cluster.json                what was set up: version, nodes, addresses, heap
    RUN_DIR/nodeN/conf/cassandra.yaml   conf/cassandra.yaml filled in for the node
    RUN_DIR/nodeN/data/                 -Dcassandra.storagedir: data, commitlog, hints, ...
    RUN_DIR/nodeN/logs/                 system.log, gc.log, stdout.log (the JVM's own output)
    RUN_DIR/nodeN/cassandra.pid         pid of the node's JVM while it runs
    RUN_DIR/nodeN/jmx.port              the node's JMX port (on 127.0.0.1 only), for nodetool
    RUN_DIR/nodeN/start.seconds         how long its last start took (launch to CQL answering)

Each JVM runs in a session of its own, so it outlives the process that
started it; a node is found again through its pid file, or failing that by
its command line in ``/proc`` (Linux only).

Environment variables: ``L1DB_CASSANDRA_RUN_DIR`` (the default run dir, else
``run/cassandra`` under the working directory), ``L1DB_CASSANDRA_HOME`` (the
folder whose ``lib/`` holds the jars, else
``~/.cache/l1dbproto/cassandra-VERSION``), ``JAVA_HOME`` (a Java 17 to prefer).
"""

from __future__ import annotations

import dataclasses
import fcntl
import glob
import hashlib
import ipaddress
import json
import logging
import math
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "CASSANDRA_VERSION",
    "CLUSTER_NAME",
    "CONF_DIR",
    "DEFAULT_BASE_ADDRESS",
    "DEFAULT_HEAP",
    "START_TIMEOUT",
    "STOP_TIMEOUT",
    "HOME_ENV",
    "JVM_OPTIONS_ENV",
    "NATIVE_PORT",
    "RUN_DIR_ENV",
    "STORAGE_PORT",
    "CassandraError",
    "ClusterInfo",
    "NodeStatus",
    "cassandra_home",
    "cluster_info",
    "cql_peers",
    "cql_release_version",
    "default_run_dir",
    "ensure_jars",
    "ensure_running",
    "find_java",
    "find_maven",
    "hosts",
    "jmx_port",
    "jvm_options",
    "node_address",
    "start",
    "status",
    "stop",
]

_LOG = logging.getLogger(__name__)

#: Folder of the files this module ships: pom.xml, cassandra.yaml, JVM options, logback.xml.
CONF_DIR = Path(__file__).resolve().parent / "conf"

#: CQL (native protocol) port of every node.
NATIVE_PORT = 9042
#: Inter-node (storage) port of every node.
STORAGE_PORT = 7000
#: -Xms and -Xmx of each node unless told otherwise.
DEFAULT_HEAP = "512M"
#: Address of node 1; node i gets the (i-1)-th address after it.
DEFAULT_BASE_ADDRESS = "127.0.0.1"
#: Start of the cluster_name of the clusters started here; each run dir adds a
#: digest of its path, so that a node never joins another run dir's cluster
#: (gossip refuses a peer with another cluster name).
CLUSTER_NAME = "l1dbproto"
#: Environment variable naming the default run dir.
RUN_DIR_ENV = "L1DB_CASSANDRA_RUN_DIR"
#: Environment variable naming the folder whose lib/ holds the Cassandra jars.
HOME_ENV = "L1DB_CASSANDRA_HOME"
#: Environment variable with JVM options (split like a shell line) added after the shipped ones
#: for every node started, e.g. ``-XX:TieredStopAtLevel=1`` for short-lived test nodes
#: (scripts/test.sh); never set for a node that is measured.
JVM_OPTIONS_ENV = "L1DB_CASSANDRA_JVM_OPTIONS"

_MAIN_CLASS = "org.apache.cassandra.service.CassandraDaemon"
#: File of a node's folder holding its JMX port.
_JMX_PORT_FILE = "jmx.port"
#: File of a node's folder holding the extra JVM options (`JVM_OPTIONS_ENV`) it was last started with.
_EXTRA_OPTIONS_FILE = "jvm-extra.options"
#: File of a node's folder holding the seconds its last start took (`start_seconds`).
_START_SECONDS_FILE = "start.seconds"
_JAVA_MAJOR = 17
_MIN_HEAP_MIB = 256
_MAX_NODES = 32
#: Default seconds for one node to answer CQL after its JVM starts.
START_TIMEOUT = 300.0
#: Default seconds between SIGTERM and SIGKILL.
STOP_TIMEOUT = 60.0
#: RING_DELAY (ms) of a node that joins a cluster for the first time, or that
#: starts while no other node of its cluster runs. A joining node sleeps this
#: long several times; the release's 30 s guards against several nodes joining
#: at once, which the launcher never does.
_RING_DELAY_MS = 3000
#: RING_DELAY (ms) of a node that restarts while other nodes of its cluster
#: run: its first gossip round (the "shadow round") gives up after RING_DELAY,
#: and after a kill -9 the others answer only once their connection to it is
#: out of its reconnect back-off, which takes longer than 3 s. The round ends
#: as soon as it gets an answer, so this long limit costs nothing otherwise.
_REJOIN_RING_DELAY_MS = 30000
_POM_NS = {"m": "http://maven.apache.org/POM/4.0.0"}
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _pinned_version() -> str:
    root = ET.parse(CONF_DIR / "pom.xml").getroot()
    element = root.find("m:properties/m:cassandra.version", _POM_NS)
    if element is None or not (element.text or "").strip():
        raise RuntimeError(f"no <cassandra.version> property in {CONF_DIR / 'pom.xml'}")
    return (element.text or "").strip()


#: The pinned Cassandra release (the ``cassandra.version`` property of conf/pom.xml).
CASSANDRA_VERSION: str = _pinned_version()


class CassandraError(RuntimeError):
    """A node could not be set up, started, stopped or reached; the message is one line."""


@dataclass
class ClusterInfo:
    """What a run dir was set up with (stored as ``RUN_DIR/cluster.json``).

    Attributes
    ----------
    version : `str`
        Cassandra version the nodes were last started with.
    nodes : `int`
        Number of nodes of the cluster.
    base_address : `str`
        Address of node 1; node i listens on the (i-1)-th address after it.
    heap : `str`
        -Xms/-Xmx of each node, e.g. ``"512M"``.
    cluster_name : `str`
        ``cluster_name`` of the nodes: `CLUSTER_NAME` and a digest of the run
        dir's path when it was set up.
    """

    version: str
    nodes: int
    base_address: str
    heap: str
    cluster_name: str = CLUSTER_NAME

    def address(self, index: int) -> str:
        """Address of node ``index`` (1-based)."""
        return node_address(self.base_address, index)

    @property
    def addresses(self) -> list[str]:
        """Addresses of all nodes, node 1 first."""
        return [self.address(i) for i in range(1, self.nodes + 1)]


@dataclass(frozen=True)
class NodeStatus:
    """State of one node of a run dir.

    Attributes
    ----------
    index : `int`
        Node number, 1-based.
    address : `str`
        Listen and CQL address of the node.
    node_dir : `pathlib.Path`
        The node's folder in the run dir.
    pid : `int` or `None`
        Pid of the node's JVM, `None` when it is not running.
    release_version : `str` or `None`
        ``release_version`` the node answered over CQL, `None` when it did not
        answer (or was not asked).
    rss_mib : `float` or `None`
        Resident memory of the JVM in MiB, `None` when it is not running.
    extra_jvm_options : `str`
        The ``$L1DB_CASSANDRA_JVM_OPTIONS`` the running JVM was started with
        (e.g. the test nodes' ``-XX:TieredStopAtLevel=1``); empty when none or
        not running. A node started with them is not one to measure.
    """

    index: int
    address: str
    node_dir: Path
    pid: int | None
    release_version: str | None
    rss_mib: float | None
    extra_jvm_options: str = ""

    @property
    def running(self) -> bool:
        """Whether the node's JVM is running."""
        return self.pid is not None

    @property
    def cql(self) -> bool:
        """Whether the node answered a CQL query."""
        return self.release_version is not None

    @property
    def log_dir(self) -> Path:
        """Folder of the node's logs (system.log, gc.log, stdout.log)."""
        return self.node_dir / "logs"


# --------------------------------------------------------------------- paths


def default_run_dir() -> Path:
    """Run dir used when none is given.

    Returns
    -------
    run_dir : `pathlib.Path`
        ``$L1DB_CASSANDRA_RUN_DIR`` if set, else ``run/cassandra`` under the
        current working directory; absolute.
    """
    env = os.environ.get(RUN_DIR_ENV)
    return Path(env).expanduser().resolve() if env else (Path.cwd() / "run" / "cassandra").resolve()


def _run_dir(run_dir: str | os.PathLike[str] | None) -> Path:
    path = default_run_dir() if run_dir is None else Path(run_dir).expanduser().resolve()
    if ":" in str(path) or "," in str(path):
        # The GC log option (-Xlog:...:file=PATH:...) cannot carry these.
        raise CassandraError(f"the run dir path must contain no ':' or ',': {path}")
    return path


def cassandra_home() -> Path:
    """Folder whose ``lib/`` holds (or will hold) the Cassandra jars.

    Returns
    -------
    home : `pathlib.Path`
        ``$L1DB_CASSANDRA_HOME`` if set, else
        ``~/.cache/l1dbproto/cassandra-<CASSANDRA_VERSION>`` (``$XDG_CACHE_HOME``
        replaces ``~/.cache`` when set).
    """
    env = os.environ.get(HOME_ENV)
    if env:
        return Path(env).expanduser().resolve()
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return (cache / "l1dbproto" / f"cassandra-{CASSANDRA_VERSION}").resolve()


def node_address(base_address: str, index: int) -> str:
    """Address of node ``index`` (1-based) when node 1 has ``base_address``.

    Parameters
    ----------
    base_address : `str`
        IPv4 address of node 1, in the loopback range 127.0.0.0/8.
    index : `int`
        Node number, 1 or more.

    Returns
    -------
    address : `str`
        ``base_address + index - 1``.

    Raises
    ------
    CassandraError
        If the address is not a loopback address usable by a node.
    """
    try:
        base = ipaddress.IPv4Address(base_address)
    except ValueError:
        raise CassandraError(f"not an IPv4 address: {base_address!r}") from None
    if index < 1:
        raise CassandraError(f"node numbers start at 1, not {index}")
    try:
        address = base + (index - 1)
    except ipaddress.AddressValueError:
        raise CassandraError(f"no address for node {index} after {base_address}") from None
    if address not in ipaddress.IPv4Network("127.0.0.0/8") or address.packed[-1] in (0, 255):
        raise CassandraError(
            f"node {index} would listen on {address}: nodes must be on loopback addresses "
            "127.x.y.1-254 (use another --base-address)"
        )
    return str(address)


# -------------------------------------------------------------- tools & jars


def _java_major(java: str) -> int | None:
    try:
        proc = subprocess.run([java, "-version"], check=False, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return None
    match = re.search(r'version "(\d+)(?:\.(\d+))?', proc.stderr + proc.stdout)
    if not match:
        return None
    major = int(match.group(1))
    if major == 1 and match.group(2):  # "1.8.0_..."
        major = int(match.group(2))
    return major


def find_java() -> str:
    """Find a Java 17 to run Cassandra with.

    Looks at ``$JAVA_HOME/bin/java``, then ``java`` on the PATH, then
    ``/usr/lib/jvm/*17*/bin/java``.

    Returns
    -------
    java : `str`
        Path of a Java 17 ``java`` executable.

    Raises
    ------
    CassandraError
        If there is no Java 17.
    """
    candidates: list[str] = []
    if os.environ.get("JAVA_HOME"):
        candidates.append(str(Path(os.environ["JAVA_HOME"]) / "bin" / "java"))
    on_path = shutil.which("java")
    if on_path:
        candidates.append(on_path)
    candidates += sorted(glob.glob(f"/usr/lib/jvm/*{_JAVA_MAJOR}*/bin/java"))
    found: dict[str, int | None] = {}
    for candidate in candidates:
        real = os.path.realpath(candidate)
        if real in found or not os.access(real, os.X_OK):
            continue
        found[real] = _java_major(real)
        if found[real] == _JAVA_MAJOR:
            return real
    if not found:
        raise CassandraError(
            f"Java {_JAVA_MAJOR} is needed to run Cassandra {CASSANDRA_VERSION} and no java was found: "
            f"install OpenJDK {_JAVA_MAJOR} (apt-get install openjdk-{_JAVA_MAJOR}-jdk-headless) or set JAVA_HOME"
        )
    seen = ", ".join(f"{path} (Java {major or '?'})" for path, major in found.items())
    raise CassandraError(
        f"Java {_JAVA_MAJOR} is needed to run Cassandra {CASSANDRA_VERSION} but only {seen} was found: "
        f"install OpenJDK {_JAVA_MAJOR} or set JAVA_HOME to one"
    )


def find_maven() -> str:
    """Find Maven's ``mvn``, needed once to fetch the Cassandra jars.

    Returns
    -------
    mvn : `str`
        Path of ``mvn``.

    Raises
    ------
    CassandraError
        If Maven is not on the PATH.
    """
    mvn = shutil.which("mvn")
    if not mvn:
        raise CassandraError(
            f"Maven (mvn) is needed once to fetch the Cassandra {CASSANDRA_VERSION} jars and was not found: "
            "install it (apt-get install maven) or point L1DB_CASSANDRA_HOME at a folder whose lib/ has them"
        )
    return mvn


def _jars_complete(lib: Path) -> bool:
    return (lib / f"cassandra-all-{CASSANDRA_VERSION}.jar").is_file() and any(lib.glob("jamm-*.jar"))


@contextmanager
def _locked(path: Path, waiting_message: str | None = None) -> Iterator[None]:
    """Hold an exclusive lock on the file ``path`` (created if needed)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if waiting_message:
                _LOG.warning("%s", waiting_message)
            fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _maven_error(log_path: Path) -> str:
    lines = [_ANSI.sub("", line).strip() for line in log_path.read_text(errors="replace").splitlines()]
    errors = [line for line in lines if line.startswith("[ERROR]") and len(line) > 8]
    pick = errors[0] if errors else next((line for line in reversed(lines) if line), "no output")
    return pick[:300]


def ensure_jars(home: str | os.PathLike[str] | None = None, report: Callable[[str], None] | None = None) -> Path:
    """Make sure the Cassandra jars are in ``HOME/lib``, fetching them with Maven once.

    The fetch runs ``mvn -q -B dependency:copy-dependencies`` on a copy of
    ``conf/pom.xml`` in ``HOME`` (so it needs Maven and Maven Central, and
    works with an empty ``~/.m2``), into ``HOME/lib.partial`` first, then
    renamed to ``HOME/lib``; concurrent callers wait for one another.

    Parameters
    ----------
    home : `str` or `os.PathLike`, optional
        Folder for ``lib/``; default `cassandra_home()`.
    report : callable, optional
        Called with a line of progress (default: the module's logger).

    Returns
    -------
    lib : `pathlib.Path`
        Folder holding the jars.

    Raises
    ------
    CassandraError
        If Maven is missing or the fetch fails.
    """
    say = report or _LOG.info
    home_dir = Path(home).expanduser().resolve() if home is not None else cassandra_home()
    lib = home_dir / "lib"
    if _jars_complete(lib):
        return lib
    mvn = find_maven()
    home_dir.mkdir(parents=True, exist_ok=True)
    with _locked(home_dir / ".fetch.lock", f"waiting for another fetch of the Cassandra jars into {home_dir}"):
        if _jars_complete(lib):
            return lib
        partial = home_dir / "lib.partial"
        shutil.rmtree(partial, ignore_errors=True)
        pom = home_dir / "pom.xml"
        shutil.copyfile(CONF_DIR / "pom.xml", pom)
        log_path = home_dir / "mvn.log"
        say(f"fetching the Cassandra {CASSANDRA_VERSION} jars with Maven into {lib} (once, about 70 MB) ...")
        started = time.monotonic()
        cmd = [mvn, "-q", "-B", "-Dstyle.color=never", "-f", str(pom),
               "dependency:copy-dependencies", f"-DoutputDirectory={partial}"]
        with open(log_path, "w") as log:
            proc = subprocess.run(cmd, check=False, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                  cwd=home_dir)
        if proc.returncode != 0:
            raise CassandraError(
                f"Maven could not fetch cassandra-all {CASSANDRA_VERSION} (exit {proc.returncode}): "
                f"{_maven_error(log_path)} (full output in {log_path})"
            )
        if not _jars_complete(partial):
            raise CassandraError(
                f"Maven ran but {partial} lacks cassandra-all-{CASSANDRA_VERSION}.jar or jamm (output in {log_path})"
            )
        if lib.exists():
            shutil.rmtree(lib)
        partial.rename(lib)
        shutil.rmtree(home_dir / "target", ignore_errors=True)
        say(f"fetched {len(list(lib.glob('*.jar')))} jars in {time.monotonic() - started:.0f} s")
    return lib


# ------------------------------------------------------------- configuration


def _check_heap(heap: str) -> str:
    match = re.fullmatch(r"\s*([1-9][0-9]*)\s*([mMgG])\s*", str(heap))
    if not match:
        raise CassandraError(f"heap must be a size like 512M or 2G, not {heap!r}")
    number, unit = int(match.group(1)), match.group(2).upper()
    if number * (1024 if unit == "G" else 1) < _MIN_HEAP_MIB:
        raise CassandraError(f"heap must be at least {_MIN_HEAP_MIB}M, not {heap}")
    return f"{number}{unit}"


def _check_count(nodes: int) -> int:
    if not isinstance(nodes, int) or isinstance(nodes, bool) or not 1 <= nodes <= _MAX_NODES:
        raise CassandraError(f"the number of nodes must be 1 to {_MAX_NODES}, not {nodes!r}")
    return nodes


def cluster_info(run_dir: str | os.PathLike[str] | None = None) -> ClusterInfo | None:
    """What the run dir was set up with.

    Parameters
    ----------
    run_dir : `str` or `os.PathLike`, optional
        Run dir; default `default_run_dir()`.

    Returns
    -------
    info : `ClusterInfo` or `None`
        Contents of ``RUN_DIR/cluster.json``, `None` if there is none.

    Raises
    ------
    CassandraError
        If the file is unreadable.
    """
    path = _run_dir(run_dir) / "cluster.json"
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
        return ClusterInfo(**data)
    except (ValueError, TypeError) as exc:
        raise CassandraError(f"{path} is damaged ({exc}): delete the run dir to start afresh") from None


def _write_info(run_dir: Path, info: ClusterInfo) -> None:
    path = run_dir / "cluster.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(dataclasses.asdict(info), indent=2) + "\n")
    tmp.replace(path)


def hosts(run_dir: str | os.PathLike[str] | None = None) -> list[str]:
    """Addresses of the nodes of a run dir, node 1 first (whether they run or not).

    Parameters
    ----------
    run_dir : `str` or `os.PathLike`, optional
        Run dir; default `default_run_dir()`.

    Returns
    -------
    addresses : `list` [`str`]
        Empty when the run dir holds no cluster.
    """
    info = cluster_info(run_dir)
    return info.addresses if info else []


def _render_yaml(info: ClusterInfo, index: int) -> str:
    values = {
        "cluster_name": info.cluster_name,
        "address": info.address(index),
        "seeds": f"{info.address(1)}:{STORAGE_PORT}",
    }
    template = (CONF_DIR / "cassandra.yaml").read_text()
    return re.sub(r"\{\{(\w+)\}\}", lambda m: values[m.group(1)], template)


def jvm_options() -> list[str]:
    """The JVM options of ``conf/jvm17-server.options`` (the ``--add-opens`` a Cassandra class needs on Java 17)."""
    options = []
    for line in (CONF_DIR / "jvm17-server.options").read_text().splitlines():
        line = line.strip()
        if line.startswith("-"):
            # "--add-opens X=Y" is one option with its value; the JVM wants them apart.
            options += line.split(None, 1) if line.startswith("--") else [line]
    return options


def start_seconds(node_dir: str | os.PathLike[str]) -> float | None:
    """Seconds the node of ``node_dir`` took to start the last time `start` launched it, `None` if never.

    From the JVM's launch to CQL answering (and the ring agreeing, in a
    cluster): what a client must outlast when the node restarts
    (`l1db.api.L1db.restart_seconds`).
    """
    try:
        seconds = float((Path(node_dir) / _START_SECONDS_FILE).read_text().strip())
    except (OSError, ValueError):
        return None
    return seconds if math.isfinite(seconds) and seconds > 0 else None


def jmx_port(node_dir: str | os.PathLike[str]) -> int | None:
    """JMX port of the node of ``node_dir`` (listening on 127.0.0.1 only), `None` if it never had one.

    nodetool reaches the node through it (`l1db.cassandra.nodetool`).
    """
    try:
        return int((Path(node_dir) / _JMX_PORT_FILE).read_text().strip())
    except (OSError, ValueError):
        return None


def _pick_jmx_port(node_dir: Path) -> int:
    """The node's JMX port: its previous one if still free, else any free port of 127.0.0.1."""
    previous = jmx_port(node_dir)
    for port in ([previous] if previous else []) + [0]:
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            port = sock.getsockname()[1]
        (node_dir / _JMX_PORT_FILE).write_text(f"{port}\n")
        return port
    raise CassandraError("no free port on 127.0.0.1 for the node's JMX")  # pragma: no cover - bind(0) succeeds


def extra_jvm_options() -> list[str]:
    """The JVM options of ``$L1DB_CASSANDRA_JVM_OPTIONS`` (none when unset).

    Raises
    ------
    CassandraError
        If the variable is not a valid shell-like line.
    """
    try:
        return shlex.split(os.environ.get(JVM_OPTIONS_ENV, ""))
    except ValueError as exc:
        raise CassandraError(f"{JVM_OPTIONS_ENV} cannot be split into options: {exc}") from None


def _started_with_options(node_dir: Path) -> str:
    """The extra JVM options the node was last started with (`JVM_OPTIONS_ENV`); empty when none."""
    try:
        return (node_dir / _EXTRA_OPTIONS_FILE).read_text().strip()
    except OSError:
        return ""


def _java_command(java: str, lib: Path, node_dir: Path, heap: str, ring_delay_ms: int, jmx: int,
                  extra: list[str]) -> list[str]:
    logs = node_dir / "logs"
    jamm = max(lib.glob("jamm-*.jar"))
    return [
        java,
        f"-Xms{heap}",
        f"-Xmx{heap}",
        *jvm_options(),
        *extra,
        f"-javaagent:{jamm}",
        f"-XX:ErrorFile={logs}/hs_err_%p.log",
        # As cassandra-env.sh: a rotated GC log beside system.log.
        (
            "-Xlog:gc=info,heap*=warning,age*=warning,safepoint=info,promotion*=warning"
            f":file={logs}/gc.log:time,uptime,pid,tid,level:filecount=5,filesize=10485760"
        ),
        f"-Dcassandra.config={(node_dir / 'conf' / 'cassandra.yaml').as_uri()}",
        f"-Dcassandra.storagedir={node_dir / 'data'}",
        f"-Dcassandra.logdir={logs}",
        f"-Dlogback.configurationFile={CONF_DIR / 'logback.xml'}",
        "-Dcassandra-foreground=yes",
        f"-Dcassandra.triggers_dir={node_dir / 'triggers'}",
        # Fast start-up of small local clusters (nodes join one at a time).
        "-Dcassandra.skip_wait_for_gossip_to_settle=0",
        f"-Dcassandra.ring_delay_ms={ring_delay_ms}",
        # JMX for nodetool (snapshots, imports: l1db_state), local only and without
        # authentication, as the release's cassandra-env.sh sets it up by default.
        f"-Dcassandra.jmx.local.port={jmx}",
        "-cp",
        f"{lib}/*",
        _MAIN_CLASS,
    ]


# ----------------------------------------------------------------- processes


def _cmdline(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return raw.decode(errors="replace").split("\0")


def _is_node_process(pid: int, node_dir: Path) -> bool:
    args = _cmdline(pid)
    return _MAIN_CLASS in args and f"-Dcassandra.storagedir={node_dir / 'data'}" in args


#: The nodes this process started, by pid: kept so that their exit is reaped
#: (no zombies, no ResourceWarning) when this process lives on, as in tests.
_CHILDREN: dict[int, subprocess.Popen[bytes]] = {}


def _alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie child of ours is reaped and counts as dead)."""
    child = _CHILDREN.get(pid)
    if child is not None:
        if child.poll() is None:
            return True
        del _CHILDREN[pid]
        return False
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass
    except OSError:
        return False
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] not in ("Z", "X")


def _node_pid(node_dir: Path) -> int | None:
    pid_file = node_dir / "cassandra.pid"
    try:
        pid = int(pid_file.read_text().strip())
    except (OSError, ValueError):
        pid = None
    if pid is not None and _alive(pid) and _is_node_process(pid, node_dir):
        return pid
    # No (valid) pid file: look for the node's JVM by its command line.
    for entry in os.listdir("/proc"):
        if entry.isdigit() and _is_node_process(int(entry), node_dir) and _alive(int(entry)):
            return int(entry)
    return None


def _rss_mib(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def _port_open(address: str, port: int, timeout: float = 1.0) -> bool:
    try:
        with socket.create_connection((address, port), timeout=timeout):
            return True
    except OSError:
        return False


def _log_size(node_dir: Path) -> int:
    try:
        return (node_dir / "logs" / "system.log").stat().st_size
    except OSError:
        return 0


def _last_problem(node_dir: Path, log_offset: int = 0) -> str:
    """The most telling error line of a node's last start-up (system.log past ``log_offset``, else stdout.log)."""
    logs = node_dir / "logs"
    try:
        text = (logs / "stdout.log").read_text(errors="replace")
    except OSError:
        text = ""
    # Only what the last start wrote: it begins after the launcher's "--- ... starting:" line.
    stdout_lines = [line.strip() for line in text.split("\n--- ")[-1].splitlines()[1:] if line.strip()]
    try:
        with open(logs / "system.log", "rb") as handle:
            if handle.seek(0, os.SEEK_END) >= log_offset:  # else it was rotated: read it all
                handle.seek(log_offset)
            else:
                handle.seek(0)
            system_lines = handle.read().decode(errors="replace").splitlines()
    except OSError:
        system_lines = []
    errors = [line.strip() for line in system_lines if line.startswith("ERROR")]
    if errors:
        return errors[-1][:400]
    markers = ("error", "exception", "invalid", "unrecognized", "could not")
    telling = [line for line in stdout_lines if any(word in line.lower() for word in markers)]
    if telling:
        return telling[0][:400]
    return stdout_lines[-1][:400] if stdout_lines else "no output"


def _launch(info: ClusterInfo, index: int, node_dir: Path, java: str, lib: Path, ring_delay_ms: int,
            extra: list[str]) -> int:
    for sub in ("conf", "data", "logs", "triggers"):
        (node_dir / sub).mkdir(parents=True, exist_ok=True)
    (node_dir / "conf" / "cassandra.yaml").write_text(_render_yaml(info, index))
    cmd = _java_command(java, lib, node_dir, info.heap, ring_delay_ms, _pick_jmx_port(node_dir), extra)
    if extra:
        (node_dir / _EXTRA_OPTIONS_FILE).write_text(shlex.join(extra) + "\n")
    else:
        (node_dir / _EXTRA_OPTIONS_FILE).unlink(missing_ok=True)
    env = dict(os.environ)
    env["MALLOC_ARENA_MAX"] = "4"  # as cassandra-env.sh: keeps native memory (RSS) down
    for name in ("JAVA_TOOL_OPTIONS", "_JAVA_OPTIONS", "JDK_JAVA_OPTIONS"):
        env.pop(name, None)
    with open(node_dir / "logs" / "stdout.log", "ab") as out:
        out.write(f"--- {time.strftime('%Y-%m-%d %H:%M:%S')} starting: {shlex.join(cmd)}\n".encode())
        out.flush()
        proc = subprocess.Popen(
            cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
            cwd=node_dir, env=env, start_new_session=True,
        )
    _CHILDREN[proc.pid] = proc
    pid_file = node_dir / "cassandra.pid"
    tmp = pid_file.with_suffix(".pid.tmp")
    tmp.write_text(f"{proc.pid}\n")
    tmp.replace(pid_file)
    return proc.pid


# ----------------------------------------------------------------------- CQL


def _import_driver() -> tuple:
    try:
        from cassandra.cluster import EXEC_PROFILE_DEFAULT, Cluster, ExecutionProfile
        from cassandra.policies import WhiteListRoundRobinPolicy
        from cassandra.query import tuple_factory
    except ImportError:
        raise CassandraError(
            "the Python package cassandra-driver is needed to talk to Cassandra: pip install cassandra-driver==3.30.1"
        ) from None
    return EXEC_PROFILE_DEFAULT, Cluster, ExecutionProfile, WhiteListRoundRobinPolicy, tuple_factory


def _cql_rows(address: str, query: str, port: int, timeout: float) -> list[tuple]:
    """Run one query on exactly the node ``address`` (no other node is contacted)."""
    exec_profile_default, cluster_cls, profile_cls, whitelist_cls, tuple_factory = _import_driver()
    profile = profile_cls(
        load_balancing_policy=whitelist_cls([address]), request_timeout=timeout, row_factory=tuple_factory
    )
    cluster = cluster_cls(
        [address], port=port, protocol_version=5, execution_profiles={exec_profile_default: profile},
        connect_timeout=timeout, control_connection_timeout=timeout,
        schema_metadata_enabled=False, token_metadata_enabled=False,
    )
    try:
        session = cluster.connect()
        return list(session.execute(query))
    finally:
        cluster.shutdown()


def cql_release_version(address: str, port: int = NATIVE_PORT, timeout: float = 10.0) -> str | None:
    """Ask one node for its version over CQL.

    A TCP connect comes first, then ``SELECT release_version FROM system.local``
    through cassandra-driver, on that node only.

    Parameters
    ----------
    address : `str`
        Node address.
    port : `int`, optional
        CQL port.
    timeout : `float`, optional
        Seconds for the connection and for the query.

    Returns
    -------
    release_version : `str` or `None`
        The node's ``release_version``, `None` if it does not answer.

    Raises
    ------
    CassandraError
        If cassandra-driver is not installed.
    """
    if not _port_open(address, port, timeout=min(timeout, 2.0)):
        return None
    _import_driver()
    try:
        rows = _cql_rows(address, "SELECT release_version FROM system.local", port, timeout)
    except Exception as exc:  # noqa: BLE001 - any driver failure means "not answering"
        _LOG.debug("CQL on %s:%s failed: %s", address, port, exc)
        return None
    return str(rows[0][0]) if rows else None


def cql_peers(address: str, port: int = NATIVE_PORT, timeout: float = 10.0) -> list[str]:
    """The peers one node knows of (``SELECT peer FROM system.peers``).

    Parameters
    ----------
    address : `str`
        Node address.
    port : `int`, optional
        CQL port.
    timeout : `float`, optional
        Seconds for the connection and for the query.

    Returns
    -------
    peers : `list` [`str`]
        Sorted addresses of the other nodes that node knows of.

    Raises
    ------
    CassandraError
        If the node does not answer or cassandra-driver is missing.
    """
    try:
        rows = _cql_rows(address, "SELECT peer FROM system.peers", port, timeout)
    except CassandraError:
        raise
    except Exception as exc:  # noqa: BLE001
        raise CassandraError(f"{address}:{port} does not answer CQL: {exc}") from None
    return sorted(str(row[0]) for row in rows)


# -------------------------------------------------------------------- status


def _node_dirs(run_dir: Path, info: ClusterInfo | None) -> dict[int, Path]:
    if info is not None:
        return {i: run_dir / f"node{i}" for i in range(1, info.nodes + 1)}
    found = {}
    for path in run_dir.glob("node*"):
        if path.is_dir() and path.name[4:].isdigit():
            found[int(path.name[4:])] = path
    return dict(sorted(found.items()))


def status(
    run_dir: str | os.PathLike[str] | None = None, *, check_cql: bool = True, cql_timeout: float = 5.0
) -> list[NodeStatus]:
    """State of every node of a run dir.

    Parameters
    ----------
    run_dir : `str` or `os.PathLike`, optional
        Run dir; default `default_run_dir()`.
    check_cql : `bool`, optional
        Whether to ask each running node for its version over CQL.
    cql_timeout : `float`, optional
        Seconds for each CQL question.

    Returns
    -------
    nodes : `list` [`NodeStatus`]
        One per node, node 1 first; empty when the run dir holds no cluster.
    """
    path = _run_dir(run_dir)
    info = cluster_info(path)
    base = info.base_address if info else DEFAULT_BASE_ADDRESS
    result = []
    for index, node_dir in _node_dirs(path, info).items():
        address = node_address(base, index)
        pid = _node_pid(node_dir) if node_dir.is_dir() else None
        version = cql_release_version(address, timeout=cql_timeout) if pid is not None and check_cql else None
        rss = _rss_mib(pid) if pid is not None else None
        extra = _started_with_options(node_dir) if pid is not None else ""
        result.append(NodeStatus(index, address, node_dir, pid, version, rss, extra))
    return result


# -------------------------------------------------------------- start & stop


def _wait_for_cql(index: int, address: str, pid: int, node_dir: Path, timeout: float, log_offset: int = 0) -> str:
    deadline = time.monotonic() + timeout
    while True:
        if not _alive(pid):
            raise CassandraError(
                f"node {index} ({address}) exited during start-up: {_last_problem(node_dir, log_offset)} "
                f"(logs in {node_dir / 'logs'})"
            )
        version = cql_release_version(address, timeout=10.0)
        if version:
            return version
        if time.monotonic() > deadline:
            raise CassandraError(
                f"node {index} ({address}) did not answer CQL within {timeout:.0f} s; it still runs as pid {pid} "
                f"(logs in {node_dir / 'logs'}; stop it with: cassandra_nodes stop --node {index})"
            )
        time.sleep(0.5)


def _gossip_view(address: str) -> dict[str, tuple[int, str]]:
    """What node ``address`` knows from gossip: address -> (generation, status) of every node, itself too."""
    query = "SELECT address, generation, status_with_port, status FROM system_views.gossip_info"
    rows = _cql_rows(address, query, NATIVE_PORT, 10.0)
    return {str(row[0]): (int(row[1] or 0), str(row[2] or row[3] or "")) for row in rows}


def _ring_problems(address: str, others: list[str]) -> list[str]:
    """Why node ``address`` and the nodes ``others`` do not yet see one another as up and NORMAL."""
    problems = []
    mine = _gossip_view(address)
    generation = mine.get(address, (0, ""))[0]
    peers = set(cql_peers(address))
    for other in others:
        if other not in peers:
            problems.append(f"{address} does not list {other} in system.peers")
        elif not mine.get(other, (0, ""))[1].startswith("NORMAL"):
            problems.append(f"{address} does not see {other} as NORMAL")
        if address not in cql_peers(other):
            problems.append(f"{other} does not list {address} in system.peers")
            continue
        seen = _gossip_view(other).get(address, (0, ""))
        if seen[0] != generation or not seen[1].startswith("NORMAL"):
            # A node that was restarted has a new gossip generation: the others
            # have seen it come back only once they have that generation.
            problems.append(f"{other} does not see this start of {address} as NORMAL yet")
    return problems


def _wait_for_ring(index: int, address: str, others: list[str], timeout: float) -> None:
    """Wait until node ``address`` and every node of ``others`` see one another (system.peers and gossip)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            problems = _ring_problems(address, others)
        except CassandraError as exc:
            problems = [str(exc)]
        except Exception as exc:  # noqa: BLE001 - a driver error: ask again
            problems = [f"CQL error: {exc}"]
        if not problems:
            return
        if time.monotonic() > deadline:
            raise CassandraError(f"node {index} ({address}) answers CQL but did not join the ring: {problems[0]}")
        time.sleep(1.0)


def _check_ports_free(index: int, address: str) -> None:
    for port in (NATIVE_PORT, STORAGE_PORT):
        if _port_open(address, port):
            raise CassandraError(
                f"{address}:{port} is already taken by another process, so node {index} cannot start there "
                "(another run dir's nodes? see cassandra_nodes status --run-dir DIR, or use --base-address)"
            )


def start(
    run_dir: str | os.PathLike[str] | None = None,
    nodes: int | None = None,
    *,
    node: int | None = None,
    heap: str | None = None,
    base_address: str | None = None,
    timeout: float = START_TIMEOUT,
    report: Callable[[str], None] | None = None,
) -> list[NodeStatus]:
    """Start the nodes of a run dir that are not running, one after another.

    Idempotent: nodes that already run are left alone (and must answer CQL).
    Each node started is waited for until it answers
    ``SELECT release_version FROM system.local`` and, in a cluster of several
    nodes, until it and every other running node list each other in
    ``system.peers``.

    Parameters
    ----------
    run_dir : `str` or `os.PathLike`, optional
        Run dir; default `default_run_dir()`. Created if needed.
    nodes : `int`, optional
        Number of nodes (1 to 32) on a new run dir (default 1); on an
        existing one, default its own number; a larger number adds nodes.
    node : `int`, optional
        Start only this node of an existing run dir (e.g. after it was
        stopped or killed); excludes ``nodes``.
    heap : `str`, optional
        -Xms/-Xmx of each node started, e.g. ``"512M"`` or ``"1G"``; default
        what the run dir was set up with, else `DEFAULT_HEAP`. Remembered.
    base_address : `str`, optional
        Address of node 1 (127.x.y.z); default `DEFAULT_BASE_ADDRESS`. Fixed
        when the run dir is set up.
    timeout : `float`, optional
        Seconds for each node to answer CQL once its JVM is started.
    report : callable, optional
        Called with each line of progress (default: the module's logger, INFO).

    Returns
    -------
    nodes : `list` [`NodeStatus`]
        State of every node of the run dir afterwards.

    Raises
    ------
    CassandraError
        On bad arguments, a missing Java 17 or Maven, a port taken, or a node
        that exits or does not answer in time (it is left as it is; its logs
        are named in the message).
    """
    say = report or _LOG.info
    path = _run_dir(run_dir)
    if nodes is not None and node is not None:
        raise CassandraError("give either the number of nodes or one node to start, not both")
    if nodes is not None:
        _check_count(nodes)
    heap = _check_heap(heap) if heap is not None else None
    if base_address is not None:
        node_address(base_address, 1)
    path.mkdir(parents=True, exist_ok=True)
    with _locked(path / ".lock", f"waiting for another start in {path}"):
        info = cluster_info(path)
        if info is None:
            if node is not None:
                raise CassandraError(f"{path} holds no cluster yet, so there is no node {node} to start; "
                                     "start the cluster first (cassandra_nodes start -n N)")
            digest = hashlib.sha1(str(path).encode()).hexdigest()[:8]
            info = ClusterInfo(CASSANDRA_VERSION, nodes or 1, base_address or DEFAULT_BASE_ADDRESS,
                               heap or DEFAULT_HEAP, f"{CLUSTER_NAME}-{digest}")
        else:
            if base_address is not None and base_address != info.base_address and not any(path.glob("node*")):
                # No node was ever made here (the first start was refused, e.g. on a port taken): the
                # address is still free to choose, as the refusal advised.
                info = dataclasses.replace(info, base_address=base_address)
            if base_address is not None and base_address != info.base_address:
                raise CassandraError(f"{path} was set up with node 1 on {info.base_address}, not {base_address} "
                                     "(use another run dir)")
            if node is not None and not 1 <= node <= info.nodes:
                raise CassandraError(f"{path} holds nodes 1 to {info.nodes}: there is no node {node}")
            if nodes is not None and nodes < info.nodes:
                raise CassandraError(f"{path} holds a {info.nodes}-node cluster: it cannot be started with {nodes} "
                                     "(stop it and delete the run dir to start a smaller one)")
            if info.version != CASSANDRA_VERSION:
                say(f"{path} was last run with Cassandra {info.version}; starting {CASSANDRA_VERSION} on its data")
            info = dataclasses.replace(info, nodes=max(info.nodes, nodes or 0), heap=heap or info.heap,
                                       version=CASSANDRA_VERSION)
        for index in range(1, info.nodes + 1):
            info.address(index)  # every address valid before anything starts
        targets = [node] if node is not None else list(range(1, info.nodes + 1))
        java = find_java()
        lib = ensure_jars(report=say)
        _write_info(path, info)
        for index in targets:
            _start_one(path, info, index, java, lib, timeout, say)
    return status(path)


def _start_one(
    run_dir: Path, info: ClusterInfo, index: int, java: str, lib: Path, timeout: float, say: Callable[[str], None]
) -> None:
    address = info.address(index)
    node_dir = run_dir / f"node{index}"
    started = time.monotonic()
    pid = _node_pid(node_dir) if node_dir.is_dir() else None
    log_offset = _log_size(node_dir)
    launched = pid is None  # a start measured from its launch (not one found under way)
    if pid is not None:
        if cql_release_version(address):
            extra = _started_with_options(node_dir)
            said = f", started with JVM options {extra}: not a node to measure" if extra else ""
            say(f"node {index} ({address}) is already running (pid {pid}){said}")
            return
        say(f"node {index} ({address}) is running (pid {pid}) but does not answer CQL yet: waiting for it")
    else:
        if index != 1 and _node_pid(run_dir / "node1") is None:
            # Node 1 is the seed: without it the node would find no cluster, or
            # another one whose seed listens on that address.
            raise CassandraError(f"node 1 ({info.address(1)}), the seed of the cluster in {run_dir}, is not running: "
                                 "start it first (cassandra_nodes start --node 1)")
        _check_ports_free(index, address)
        joined_before = (node_dir / "data" / "data" / "system").is_dir()
        others_run = any(_node_pid(run_dir / f"node{i}") is not None
                         for i in range(1, info.nodes + 1) if i != index and (run_dir / f"node{i}").is_dir())
        ring_delay_ms = _REJOIN_RING_DELAY_MS if joined_before and others_run else _RING_DELAY_MS
        options = extra_jvm_options()
        said = f", JVM options {shlex.join(options)} from {JVM_OPTIONS_ENV}" if options else ""
        say(f"starting node {index} on {address} (heap {info.heap}{said}) ...")
        pid = _launch(info, index, node_dir, java, lib, ring_delay_ms, options)
    version = _wait_for_cql(index, address, pid, node_dir, timeout, log_offset)
    others = [
        other for i, other in enumerate(info.addresses, start=1)
        if i != index and _node_pid(run_dir / f"node{i}") is not None and cql_release_version(other)
    ]
    if others:
        _wait_for_ring(index, address, others, timeout=120.0)
    took = time.monotonic() - started
    if launched:
        (node_dir / _START_SECONDS_FILE).write_text(f"{took:.3f}\n")
    say(f"node {index} ({address}) is up: Cassandra {version}, pid {pid}, "
        f"{took:.1f} s; logs in {node_dir / 'logs'}")


def stop(
    run_dir: str | os.PathLike[str] | None = None,
    *,
    node: int | None = None,
    timeout: float = STOP_TIMEOUT,
    report: Callable[[str], None] | None = None,
) -> list[int]:
    """Stop the nodes of a run dir: SIGTERM, then SIGKILL after ``timeout`` seconds.

    The nodes are stopped one after another, the last node first. Their data
    stays in the run dir, so a later `start` brings the same cluster back.

    Parameters
    ----------
    run_dir : `str` or `os.PathLike`, optional
        Run dir; default `default_run_dir()`.
    node : `int`, optional
        Stop only this node.
    timeout : `float`, optional
        Seconds between SIGTERM and SIGKILL, for each node.
    report : callable, optional
        Called with each line of progress (default: the module's logger, INFO).

    Returns
    -------
    stopped : `list` [`int`]
        Numbers of the nodes that were running and are now stopped.

    Raises
    ------
    CassandraError
        If ``node`` is not a node of the run dir, or a process outlives SIGKILL.
    """
    say = report or _LOG.info
    path = _run_dir(run_dir)
    dirs = _node_dirs(path, cluster_info(path))
    if node is not None:
        if node not in dirs:
            known = f"nodes 1 to {max(dirs)}" if dirs else "no nodes"
            raise CassandraError(f"{path} holds {known}: there is no node {node}")
        dirs = {node: dirs[node]}
    if not dirs:
        say(f"no Cassandra nodes in {path}: nothing to stop")
        return []
    running: dict[int, int] = {}
    for index, node_dir in dirs.items():
        pid = _node_pid(node_dir) if node_dir.is_dir() else None
        if pid is None:
            say(f"node {index} is not running")
            (node_dir / "cassandra.pid").unlink(missing_ok=True)
        else:
            running[index] = pid
    # One node after another, the last first: a node that shuts down while its
    # peers shut down too waits a long time for its messaging to quiesce.
    for index in sorted(running, reverse=True):
        _stop_one(index, running[index], timeout, say)
        (dirs[index] / "cassandra.pid").unlink(missing_ok=True)
    return sorted(running)


def _stop_one(index: int, pid: int, timeout: float, say: Callable[[str], None]) -> None:
    started = time.monotonic()
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        pass
    how = "stopped"
    while _alive(pid) and time.monotonic() < started + timeout:
        time.sleep(0.2)
    if _alive(pid):
        say(f"node {index} (pid {pid}) did not stop within {timeout:.0f} s of SIGTERM: killing it")
        how = "killed"
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        while _alive(pid):
            if time.monotonic() > started + timeout + 30:
                raise CassandraError(f"node {index} (pid {pid}) outlived SIGKILL")
            time.sleep(0.2)
    say(f"node {index} {how} (pid {pid}, {time.monotonic() - started:.1f} s)")


def ensure_running(
    run_dir: str | os.PathLike[str] | None = None,
    nodes: int = 1,
    *,
    heap: str | None = None,
    base_address: str | None = None,
    timeout: float = START_TIMEOUT,
) -> list[str]:
    """Make sure at least ``nodes`` nodes of a run dir run and answer CQL; start what is missing.

    Meant for test fixtures and benchmarks: cheap when everything already
    runs (one CQL question per node), and safe to call from several
    processes at once.

    Parameters
    ----------
    run_dir : `str` or `os.PathLike`, optional
        Run dir; default `default_run_dir()`.
    nodes : `int`, optional
        Least number of nodes; a run dir with more nodes keeps them all.
    heap : `str`, optional
        -Xms/-Xmx of nodes that get started; see `start`.
    base_address : `str`, optional
        Address of node 1 of a new run dir; see `start`.
    timeout : `float`, optional
        Seconds for each node to answer CQL once started.

    Returns
    -------
    hosts : `list` [`str`]
        Addresses of all nodes, node 1 first (CQL port `NATIVE_PORT`).

    Raises
    ------
    CassandraError
        As `start`.
    """
    _check_count(nodes)
    info = cluster_info(run_dir)
    if info is not None and info.nodes >= nodes:
        current = status(run_dir)
        if current and all(node_status.cql for node_status in current):
            return [node_status.address for node_status in current]
    total = max(nodes, info.nodes if info else 0)
    return [node_status.address for node_status in
            start(run_dir, total, heap=heap, base_address=base_address, timeout=timeout)]
