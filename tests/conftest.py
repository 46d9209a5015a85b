"""Shared fixtures: a fresh, empty database on each backend, dropped afterwards.

The servers are real: PostgreSQL, MariaDB and a Cassandra node must be running
(``scripts/test.sh`` starts them). A server that cannot be reached fails the
tests that need it; it is never silently skipped. Override the admin URLs with
``L1DB_TEST_PG_URL`` and ``L1DB_TEST_MYSQL_URL``, the Cassandra contact points
with ``L1DB_TEST_CASSANDRA_HOSTS`` (comma-separated).

Layouts: a test that takes the ``layout`` fixture runs once per (backend,
layout) pair: the SQL backends with each indexing strategy, PostgreSQL also
with time partitions (`PG_LAYOUTS`), Cassandra with each partitioning. A test
that makes its configs with ``make_config`` or ``make_sql_config`` but takes
no ``layout`` also runs on ``postgresql-partitioned``: the factory then starts
from `PG_PARTITIONED` (``base_layout``), which the test's own options override.
``make_config(**options)`` writes each option into its own section and leaves
out those that belong to the other kind of backend (the Cassandra layout is
fixed: it always has a latest-version table), so one test body serves every
backend.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import cpu_census
import pytest

from l1db import backends as backend_table
from l1db import scratch
from l1db.scratch import Servers, scratch_database

__all__ = ["SERVERS", "create_test_database", "cassandra_session", "write_config"]

#: Backend names (`l1db.backends.BACKENDS`): the SQL ones, and all.
SQL_BACKENDS = tuple(b.name for b in backend_table.BACKENDS if b.kind == backend_table.SQL)
BACKENDS = tuple(b.name for b in backend_table.BACKENDS)

#: Indexing strategies of the SQL backends.
SQL_LAYOUTS = {
    "baseline": {"dia_object_index": "baseline"},
    "pix_id_iov": {"dia_object_index": "pix_id_iov"},
    "last_delete": {"dia_object_index": "last_object_table"},
    "last_upsert": {"dia_object_index": "last_object_table", "object_last_replace": 1},
    "nightly": {"dia_object_index": "baseline", "dia_object_nightly": 1},
}
#: Layouts of PostgreSQL only: time partitions (10-day partitions, so that the tests' histories span several).
PG_LAYOUTS = {
    "part_baseline": {"dia_object_index": "baseline", "history_partition_days": 10},
    "part_last": {"dia_object_index": "last_object_table", "history_partition_days": 10},
    "part_last_nightly": {"dia_object_index": "last_object_table", "dia_object_nightly": 1,
                          "history_partition_days": 10},
}
#: What ``make_config`` starts from on ``postgresql-partitioned`` (DiaObject partitioned too).
PG_PARTITIONED = PG_LAYOUTS["part_last"]
#: Partitionings of the Cassandra backend (MQ3C as in production, and coarse HTM pixels).
CASSANDRA_LAYOUTS = {
    # The default read shapes (spatial_queries = auto: one query per pixel for DiaSource at this level, an IN
    # list for the other tables).
    "mq3c8": {"part_pixelization": "mq3c", "part_pixel_level": 8},
    # One query per table, the sky pixels in an IN list, for every table, on every layout test.
    "htm7-in-list": {"part_pixelization": "htm", "part_pixel_level": 7, "spatial_queries": 1},
}

#: The test servers: the local ones (`l1db.scratch.Servers`) unless the environment names others.
SERVERS = Servers(**{
    field: os.environ[variable]
    for field, variable in (("pg_admin_url", "L1DB_TEST_PG_URL"), ("mysql_admin_url", "L1DB_TEST_MYSQL_URL"),
                            ("cassandra_hosts", "L1DB_TEST_CASSANDRA_HOSTS"))
    if variable in os.environ
})


# -- What may run side by side ------------------------------------------------------
#
# scripts/test.sh runs the suite on three pytest-xdist workers, a test file at a time
# (``-n 3 --dist loadfile --no-loadscope-reorder``): a module's tests stay on one worker, so
# its module fixtures are made once, and the modules that start servers of their own at
# fixed addresses (test_cassandra_server: a node on 127.0.0.201, refused first on 127.0.0.200; test_cassandra_cluster:
# three nodes on 127.0.0.11-13, the cluster of docs/cassandra.md's 3-node block, which that module
# runs as its last test; test_cassandra_backpressure: a rate-limited node on 127.0.0.41;
# test_distributed: network namespaces with their own PostgreSQL)
# start them once, on one worker. (``--dist loadgroup`` with ``xdist_group`` marks would be
# finer, but pytest-xdist 3.8 cannot group under pytest 9.2: its group suffix on the node id
# is lost.) Every test makes its own databases and keyspaces under unique names
# (`_test_database`), so the tests share only the servers: PostgreSQL, MariaDB and the
# Cassandra node on 127.0.0.1.
#
# Tests marked ``restarts_servers`` (test_db_restart, test_fault_injection) stop and start
# the shared PostgreSQL or MariaDB, which any other test may be using. They hold
# `_server_lock` exclusively; every other test holds it shared for its whole run (setup to
# teardown), so a restart waits for the tests running on the other workers and they wait
# for it. A lock rather than a second, serial pytest phase: one run, one report, one
# --durations table, and the tests marked ``own_servers`` (using no shared server) go on
# meanwhile. A writer waiting at the gate stops new readers, so a restart is not starved by
# the stream of short tests.
#
# The files are dealt out in `FIRST_FILES` order first, then in collection order. xdist gives
# each worker one file at the start and the next one when two tests of its file are left. The
# first two files use only servers of their own and are the longest (no worker is left alone
# with one of them at the end); the third worker meanwhile runs the two files that restart the
# shared servers, so their restarts wait for no test using the servers. (Later, a restart
# would wait for the longest test then running, and every other worker would wait at the gate
# with it: 1-2 minutes of idle workers per restart, measured.)
#
# Without xdist (``-n 0``) the lock is taken and given back by the one process: the suite
# runs serially as before.

#: Marks of this suite (registered in `pytest_configure`).
MARKS = {
    "restarts_servers": "stops and starts the shared PostgreSQL or MariaDB: runs alone among the tests using them",
    "own_servers": "uses only servers of its own (no shared server): runs beside a restarts_servers test",
}


#: Test files dealt out first, in this order (see above): then the longest.
FIRST_FILES = (
    "tests/test_cassandra_cluster.py",
    "tests/test_distributed.py",
    "tests/test_db_restart.py",
    "tests/test_fault_injection.py",
    "tests/test_ap_proto.py",
    "tests/test_l1db.py",
    "tests/test_state.py",
    "tests/test_readme.py",
    "tests/test_cassandra_server.py",
    "tests/test_cassandra_backpressure.py",
)


def pytest_configure(config: pytest.Config) -> None:
    for name, doc in MARKS.items():
        config.addinivalue_line("markers", f"{name}: {doc}")


_CENSUS_START = pytest.StashKey[cpu_census.Sample | None]()


def pytest_sessionstart(session: pytest.Session) -> None:
    if not hasattr(session.config, "workerinput"):  # the controller (or the one process without xdist)
        session.config.stash[_CENSUS_START] = cpu_census.sample()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> None:
    """Where the cores' time went (`cpu_census`): to explain a run's wall time from its own output."""
    start = config.stash.get(_CENSUS_START, None)
    if start is not None and (end := cpu_census.sample()) is not None:
        terminalreporter.write_line(cpu_census.census_line(start, end))
    per_test: dict[str, float] = {}
    for reports in terminalreporter.stats.values():
        for report in reports:
            if isinstance(report, pytest.TestReport) and hasattr(report, "cpu_seconds"):
                per_test[report.nodeid] = per_test.get(report.nodeid, 0.0) + report.cpu_seconds
    for line in cpu_census.cpu_lines(per_test):
        terminalreporter.write_line(line)
    if per_test:
        where = cpu_census.write_per_test(per_test, config.rootpath / "run" / "test-cpu.tsv")
        terminalreporter.write_line(f"every test's client CPU: {where}")


#: The client CPU (`cpu_census.process_cpu`) when the current phase of the running test began.
_phase_start = [0.0]


def pytest_runtest_logstart(nodeid: str, location: tuple[str, int | None, str]) -> None:
    """A test's setup begins: its client CPU is counted from here (`pytest_runtest_makereport`)."""
    _phase_start[0] = cpu_census.process_cpu()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator[pytest.TestReport]:
    """Each phase's report carries the client CPU it took (xdist sends it on); the next phase starts here."""
    report = yield
    now = cpu_census.process_cpu()
    report.cpu_seconds = now - _phase_start[0]  # type: ignore[attr-defined]
    _phase_start[0] = now
    return report


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The tests of `FIRST_FILES` first, in that order; the others keep their order."""
    rank = {name: i for i, name in enumerate(FIRST_FILES)}
    items.sort(key=lambda item: rank.get(item.nodeid.split("::", 1)[0], len(FIRST_FILES)))


@pytest.fixture(scope="session")
def _lock_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory every xdist worker of this run sees (the parent of the workers' base temp dirs)."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


@pytest.fixture(autouse=True)
def _server_lock(request: pytest.FixtureRequest, _lock_dir: Path) -> Iterator[None]:
    """Shared for a test using the shared servers, exclusive for a ``restarts_servers`` one (see above)."""
    if request.node.get_closest_marker("own_servers"):
        yield
        return
    exclusive = request.node.get_closest_marker("restarts_servers") is not None
    with open(_lock_dir / "servers.gate", "a") as gate, open(_lock_dir / "servers.lock", "a") as lock:
        if exclusive:
            fcntl.flock(gate, fcntl.LOCK_EX)  # no new reader from here on
            fcntl.flock(lock, fcntl.LOCK_EX)
        else:
            fcntl.flock(gate, fcntl.LOCK_SH)  # waits while a restart is waiting or running
            fcntl.flock(lock, fcntl.LOCK_SH)
            fcntl.flock(gate, fcntl.LOCK_UN)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
            fcntl.flock(gate, fcntl.LOCK_UN)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Run tests on each backend; those that take ``layout`` once per (backend, layout) pair."""
    names = metafunc.fixturenames
    for param, backends in (("sql_backend", SQL_BACKENDS), ("backend", BACKENDS)):
        if param not in names or (param == "backend" and "layout" in names):
            continue
        if "base_layout" in names:
            # Configs made by the factory: also on PostgreSQL with time partitions.
            metafunc.parametrize((param, "base_layout"),
                                 [(b, {}) for b in backends] + [("postgresql", PG_PARTITIONED)],
                                 ids=[*backends, "postgresql-partitioned"])
        else:
            metafunc.parametrize(param, backends)
    if "backend" not in names or "layout" not in names:
        return
    pairs, ids = [], []
    for backend in SQL_BACKENDS:
        # The time-partition layouts where the backend has time partitions (PostgreSQL).
        partitions = backend_table.backend_named(backend).no_time_partitions is None
        layouts = {**SQL_LAYOUTS, **PG_LAYOUTS} if partitions else SQL_LAYOUTS
        for name, options in layouts.items():
            pairs.append((backend, options))
            ids.append(f"{backend}-{name}")
    for name, options in CASSANDRA_LAYOUTS.items():
        pairs.append(("cassandra", options))
        ids.append(f"cassandra-{name}")
    if "base_layout" in names:
        metafunc.parametrize(("backend", "layout", "base_layout"), [(b, o, {}) for b, o in pairs], ids=ids)
    else:
        metafunc.parametrize(("backend", "layout"), pairs, ids=ids)


def _test_database(backend: str, tmp_path: Path) -> contextlib.AbstractContextManager[str]:
    """A new empty database on ``backend`` with a unique name, dropped on exit."""
    return scratch_database(backend, f"l1dbtest_{uuid.uuid4().hex[:12]}", tmp_path, SERVERS)


def create_test_database(backend: str, tmp_path: Path) -> tuple[str, Callable[[], None]]:
    """Create an empty database on ``backend``; return its URL and a drop function."""
    stack = contextlib.ExitStack()
    return stack.enter_context(_test_database(backend, tmp_path)), stack.close


def cassandra_session():
    """A driver ``(cluster, session)`` on the test cluster (the caller shuts its cluster down)."""
    return scratch.cassandra_session(SERVERS.cassandra_hosts.split(","))


@pytest.fixture
def backend(request: pytest.FixtureRequest) -> str:
    """Each backend in turn: ``sqlite``, ``postgresql``, ``mysql``, ``cassandra`` (see `pytest_generate_tests`)."""
    return request.param


@pytest.fixture
def sql_backend(request: pytest.FixtureRequest) -> str:
    """Each SQL backend in turn, for tests of what only SQL has (transactions, plans)."""
    return request.param


@pytest.fixture
def db_url(backend: str, tmp_path: Path) -> Iterator[str]:
    """URL of a new empty database on ``backend``, dropped after the test."""
    with _test_database(backend, tmp_path) as url:
        yield url



@pytest.fixture(scope="session")
def _catalogs() -> dict[tuple[float, int], Path]:
    """The catalogues of `catalog_fixture` made so far in this session (each pytest-xdist worker has its own)."""
    return {}


def catalog_fixture(per_visit: float, seed: int = 3, name: str = "sources"):
    """A module-scoped fixture: a southern-sky catalogue (``gen_sources``) of ``per_visit`` sources a field.

    Use as ``sources = catalog_fixture(400)`` in a test module; each module picks its own density and seed.
    The file is read-only to the tests: modules asking for the same density and seed share one.
    """
    @pytest.fixture(scope="module", name=name)
    def catalog(tmp_path_factory: pytest.TempPathFactory, _catalogs: dict[tuple[float, int], Path]) -> Path:
        from dia_sim.catalog import generate_catalog

        if (per_visit, seed) not in _catalogs:
            path = tmp_path_factory.mktemp("catalog") / "sources.npy"
            generate_catalog(path, per_visit=per_visit, sky="south", seed=seed)
            _catalogs[per_visit, seed] = path
        return _catalogs[per_visit, seed]

    return catalog


def write_config(path: Path, url: str, **options: object) -> Path:
    """Write a config file for ``url``, each option in its section.

    Options of the other kind of backend than ``url``'s are left out (see the
    module docstring).
    """
    from dia_sim.options import SECTIONS
    from l1db.config import L1DB_SECTIONS
    from l1db.config_model import option_backend, option_fields

    backend = backend_table.backend_for(url).kind
    fields = {key: (section, field) for section, model in {**L1DB_SECTIONS, **SECTIONS}.items()
              for key, field in option_fields(model).items()}
    sections: dict[str, list[str]] = {}
    for name, value in options.items():
        assert name in fields, f"unknown option {name}"
        section, field = fields[name]
        if option_backend(field) in (None, backend):
            sections.setdefault(section, []).append(f"{name} = {value}")
    lines = ["[database]", f"url = {url}"]
    for section, entries in sections.items():
        lines += ["", f"[{section}]", *entries]
    path.write_text("\n".join(lines) + "\n")
    return path


def _config_factory(url: str, tmp_path: Path, base: dict | None = None):
    counter = iter(range(1_000_000))

    def make(**options: object) -> Path:
        return write_config(tmp_path / f"l1db-{next(counter)}.cfg", url, **{**(base or {}), **options})

    return make


@pytest.fixture
def base_layout(request: pytest.FixtureRequest) -> dict:
    """Options every config of ``make_config`` / ``make_sql_config`` starts from (see `pytest_generate_tests`)."""
    return request.param


@pytest.fixture
def make_config(db_url: str, tmp_path: Path, base_layout: dict):
    """Factory: ``make_config(**options)`` writes a config for ``db_url`` (any backend)."""
    return _config_factory(db_url, tmp_path, base_layout)


@pytest.fixture
def sql_db_url(sql_backend: str, tmp_path: Path) -> Iterator[str]:
    """URL of a new empty database on an SQL backend, dropped after the test."""
    with _test_database(sql_backend, tmp_path) as url:
        yield url


@pytest.fixture
def pg_db_url(tmp_path: Path) -> Iterator[str]:
    """URL of a new empty PostgreSQL database, for what only PostgreSQL has (time partitions)."""
    with _test_database("postgresql", tmp_path) as url:
        yield url


@pytest.fixture
def cassandra_db_url(tmp_path: Path) -> Iterator[str]:
    """URL of a new keyspace on the Cassandra test cluster, dropped after the test."""
    with _test_database("cassandra", tmp_path) as url:
        yield url


@pytest.fixture
def make_cassandra_config(cassandra_db_url: str, tmp_path: Path):
    """Factory: ``make_cassandra_config(**options)`` writes a config for ``cassandra_db_url``."""
    return _config_factory(cassandra_db_url, tmp_path)


@pytest.fixture
def make_sql_config(sql_db_url: str, tmp_path: Path, base_layout: dict):
    """Factory: ``make_sql_config(**options)`` writes a config for an SQL backend's ``sql_db_url``."""
    return _config_factory(sql_db_url, tmp_path, base_layout)


@pytest.fixture
def l1(sql_db_url: str):
    """(engine, L1Schema) of a fresh database holding the L1 schema (default options)."""
    from l1db.config import L1dbConfig
    from l1db.sql.database import make_engine
    from l1db.sql.schema import L1Schema

    schema = L1Schema(L1dbConfig(url=sql_db_url))
    engine = make_engine(sql_db_url)
    schema.create(engine)
    yield engine, schema
    engine.dispose()
