"""Shared fixtures: a fresh, empty database on each backend, dropped afterwards.

The servers are real: PostgreSQL and MariaDB must be running (``scripts/test.sh``
starts them). A server that cannot be reached fails the tests that need it; it is
never silently skipped. Override the admin URLs with ``L1DB_TEST_PG_URL`` and
``L1DB_TEST_MYSQL_URL``.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy

BACKENDS = ("sqlite", "postgresql", "mysql")

PG_ADMIN_URL = os.environ.get("L1DB_TEST_PG_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres")
MYSQL_ADMIN_URL = os.environ.get("L1DB_TEST_MYSQL_URL", "mysql+mysqldb://root@127.0.0.1:3306/")


def _server_engine(url: str) -> sqlalchemy.Engine:
    return sqlalchemy.create_engine(url, isolation_level="AUTOCOMMIT", poolclass=sqlalchemy.pool.NullPool)


def create_test_database(backend: str, tmp_path: Path) -> tuple[str, callable]:
    """Create an empty database on ``backend``; return its URL and a drop function."""
    name = f"l1dbtest_{uuid.uuid4().hex[:12]}"
    if backend == "sqlite":
        path = tmp_path / f"{name}.sqlite3"
        return f"sqlite:///{path}", lambda: path.unlink(missing_ok=True)
    admin_url = PG_ADMIN_URL if backend == "postgresql" else MYSQL_ADMIN_URL
    engine = _server_engine(admin_url)
    with engine.connect() as conn:
        conn.exec_driver_sql(f"CREATE DATABASE {name}")
    engine.dispose()
    url = sqlalchemy.make_url(admin_url).set(database=name).render_as_string(hide_password=False)

    def drop() -> None:
        engine = _server_engine(admin_url)
        with engine.connect() as conn:
            if backend == "postgresql":
                conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
            else:
                conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name}")
        engine.dispose()

    return url, drop


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """Each backend in turn: ``sqlite``, ``postgresql``, ``mysql``."""
    return request.param


@pytest.fixture
def db_url(backend: str, tmp_path: Path) -> Iterator[str]:
    """URL of a new empty database on ``backend``, dropped after the test."""
    url, drop = create_test_database(backend, tmp_path)
    try:
        yield url
    finally:
        drop()


def write_config(path: Path, url: str, **l1db_options: object) -> Path:
    """Write a config file for ``url`` with the given ``[l1db]`` options."""
    lines = ["[database]", f"url = {url}", "", "[l1db]"]
    lines += [f"{k} = {v}" for k, v in l1db_options.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def make_config(db_url: str, tmp_path: Path):
    """Factory: ``make_config(**l1db_options)`` writes a config for ``db_url``."""
    counter = iter(range(1_000_000))

    def make(**options: object) -> Path:
        return write_config(tmp_path / f"l1db-{next(counter)}.cfg", db_url, **options)

    return make


@pytest.fixture
def l1(db_url: str):
    """(engine, L1Schema) of a fresh database holding the L1 schema (default options)."""
    from l1db.config import L1dbConfig
    from l1db.database import make_engine
    from l1db.schema import L1Schema

    schema = L1Schema(L1dbConfig(url=db_url))
    engine = make_engine(db_url)
    schema.create(engine)
    yield engine, schema
    engine.dispose()
