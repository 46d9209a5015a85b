"""Shared fixtures: a fresh, empty database on each backend, dropped afterwards.

The servers are real: PostgreSQL, MariaDB and a Cassandra node must be running
(``scripts/test.sh`` starts them). A server that cannot be reached fails the
tests that need it; it is never silently skipped. Override the admin URLs with
``L1DB_TEST_PG_URL`` and ``L1DB_TEST_MYSQL_URL``, the Cassandra contact points
with ``L1DB_TEST_CASSANDRA_HOSTS`` (comma-separated).

Layouts: a test that takes the ``layout`` fixture runs once per (backend,
layout) pair: the SQL backends with each indexing strategy, Cassandra with
each partitioning. ``make_config(**options)`` writes each option into its own
section and leaves out those that belong to the other kind of backend (the
Cassandra layout is fixed: it always has a latest-version table), so one test
body serves every backend.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from l1db import scratch
from l1db.scratch import Servers, scratch_database

__all__ = ["SERVERS", "create_test_database", "cassandra_session", "write_config"]

SQL_BACKENDS = ("sqlite", "postgresql", "mysql")
BACKENDS = (*SQL_BACKENDS, "cassandra")

#: Indexing strategies of the SQL backends.
SQL_LAYOUTS = {
    "baseline": {"dia_object_index": "baseline"},
    "pix_id_iov": {"dia_object_index": "pix_id_iov"},
    "last_delete": {"dia_object_index": "last_object_table"},
    "last_upsert": {"dia_object_index": "last_object_table", "object_last_replace": 1},
    "nightly": {"dia_object_index": "baseline", "dia_object_nightly": 1},
}
#: Partitionings of the Cassandra backend (MQ3C as in production, and coarse HTM pixels).
CASSANDRA_LAYOUTS = {
    "mq3c8": {"part_pixelization": "mq3c", "part_pixel_level": 8},
    "htm7": {"part_pixelization": "htm", "part_pixel_level": 7},
}

#: The test servers: the local ones (`l1db.scratch.Servers`) unless the environment names others.
SERVERS = Servers(**{
    field: os.environ[variable]
    for field, variable in (("pg_admin_url", "L1DB_TEST_PG_URL"), ("mysql_admin_url", "L1DB_TEST_MYSQL_URL"),
                            ("cassandra_hosts", "L1DB_TEST_CASSANDRA_HOSTS"))
    if variable in os.environ
})


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Run tests on each backend; those that take ``layout`` once per (backend, layout) pair."""
    if "sql_backend" in metafunc.fixturenames:
        metafunc.parametrize("sql_backend", SQL_BACKENDS)
    if "backend" not in metafunc.fixturenames:
        return
    if "layout" not in metafunc.fixturenames:
        metafunc.parametrize("backend", BACKENDS)
        return
    pairs, ids = [], []
    for backend in SQL_BACKENDS:
        for name, options in SQL_LAYOUTS.items():
            pairs.append((backend, options))
            ids.append(f"{backend}-{name}")
    for name, options in CASSANDRA_LAYOUTS.items():
        pairs.append(("cassandra", options))
        ids.append(f"cassandra-{name}")
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


def write_config(path: Path, url: str, **options: object) -> Path:
    """Write a config file for ``url``, each option in its section.

    Options of the other kind of backend than ``url``'s are left out (see the
    module docstring).
    """
    from dia_sim.options import SECTIONS
    from l1db.config import L1DB_SECTIONS
    from l1db.config_model import option_backend, option_fields

    backend = "cassandra" if url.startswith("cassandra:") else "sql"
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


def _config_factory(url: str, tmp_path: Path):
    counter = iter(range(1_000_000))

    def make(**options: object) -> Path:
        return write_config(tmp_path / f"l1db-{next(counter)}.cfg", url, **options)

    return make


@pytest.fixture
def make_config(db_url: str, tmp_path: Path):
    """Factory: ``make_config(**options)`` writes a config for ``db_url`` (any backend)."""
    return _config_factory(db_url, tmp_path)


@pytest.fixture
def sql_db_url(sql_backend: str, tmp_path: Path) -> Iterator[str]:
    """URL of a new empty database on an SQL backend, dropped after the test."""
    with _test_database(sql_backend, tmp_path) as url:
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
def make_sql_config(sql_db_url: str, tmp_path: Path):
    """Factory: ``make_sql_config(**options)`` writes a config for an SQL backend's ``sql_db_url``."""
    return _config_factory(sql_db_url, tmp_path)


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
