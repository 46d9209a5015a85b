"""Scratch databases for the tests and the benchmarks: made empty, dropped afterwards, read behind L1db's back.

One place for what both need: a fresh database on any backend (an SQLite
file, a PostgreSQL or MySQL/MariaDB database made through an admin URL, a
Cassandra keyspace, which ``create_l1_schema`` makes), dropped afterwards
even on failure; and the rows a table holds, read with the backend's own
driver to check what L1db stored.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import sqlalchemy as sa

from .backends import CASSANDRA, backend_named
from .config import L1dbConfig, load_config, normalize_url, parse_cassandra_url
from .tables import PUBLISHED_TABLES, period_of

__all__ = [
    "Servers", "scratch_database", "server_database", "cassandra_session", "drop_keyspace",
    "read_table", "table_reader",
]

_LOG = logging.getLogger(__name__)

# Seconds a Cassandra request may take: schema changes on a busy node are slow.
_CASSANDRA_TIMEOUT = 300.0


@dataclasses.dataclass(frozen=True)
class Servers:
    """Where scratch databases are made: the servers' admin URLs and the Cassandra contact points.

    The defaults are the local servers that ``scripts/test.sh`` starts.
    """

    pg_admin_url: str = "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres"
    mysql_admin_url: str = "mysql+mysqldb://root@127.0.0.1:3306/"
    #: Comma-separated contact points of the Cassandra node(s) (``cassandra_nodes start``).
    cassandra_hosts: str = "127.0.0.1"


def server_database(admin_url: str, name: str, create: bool) -> str:
    """Drop database ``name`` on the server of ``admin_url`` and, with ``create``, make it anew.

    Returns the URL of that database (with the admin URL's credentials).
    """
    engine = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            force = " WITH (FORCE)" if engine.dialect.name == "postgresql" else ""
            conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name}{force}")
            if create:
                conn.exec_driver_sql(f"CREATE DATABASE {name}")
    finally:
        engine.dispose()
    return sa.make_url(admin_url).set(database=name).render_as_string(hide_password=False)


def cassandra_session(hosts: Sequence[str], port: int = 9042) -> tuple[Any, Any]:
    """A driver ``(cluster, session)`` on the Cassandra nodes ``hosts``; the caller shuts the cluster down."""
    from cassandra.cluster import EXEC_PROFILE_DEFAULT, Cluster, ExecutionProfile
    from cassandra.policies import RoundRobinPolicy

    profile = ExecutionProfile(load_balancing_policy=RoundRobinPolicy(), request_timeout=_CASSANDRA_TIMEOUT)
    cluster = Cluster(list(hosts), port=port, connect_timeout=10, protocol_version=5,
                      execution_profiles={EXEC_PROFILE_DEFAULT: profile})
    return cluster, cluster.connect()


def drop_keyspace(hosts: str, name: str) -> None:
    """Drop Cassandra keyspace ``name`` if it exists (``hosts`` comma-separated)."""
    cluster, session = cassandra_session(hosts.split(","))
    try:
        session.execute(f"DROP KEYSPACE IF EXISTS {name}")
    finally:
        cluster.shutdown()


@contextlib.contextmanager
def _dropped_afterwards(name: str, drop: Callable[[], object]) -> Iterator[None]:
    """Run ``drop`` when the block ends; if the block failed, a failing drop is a warning, not a second error.

    (A server gone mid-run fails the run, and then its drop: the run's error is the one to see.)
    """
    try:
        yield
    except BaseException:
        try:
            drop()
        except Exception as exc:  # noqa: BLE001 - any failure of the clean-up, said in one line
            _LOG.warning("could not drop the scratch database %s: %s", name, exc)
        raise
    drop()


@contextlib.contextmanager
def scratch_database(backend: str, name: str, tmp_dir: str | os.PathLike, servers: Servers = Servers()
                     ) -> Iterator[str]:
    """URL of a fresh, empty database ``name`` on ``backend``, removed afterwards, even on failure.

    Parameters
    ----------
    backend : `str`
        A backend name of `l1db.backends.BACKENDS`: ``sqlite`` (a file in
        ``tmp_dir``), ``postgresql``, ``mysql`` (a database made through the
        backend's admin URL of ``servers``) or ``cassandra`` (a keyspace
        name: ``create_l1_schema`` makes the keyspace).
    name : `str`
        Database, file or keyspace name; one left by an earlier run is dropped first.
    tmp_dir : path
        Folder of the SQLite file.
    servers : `Servers`
        Where the server databases are made.
    """
    row = backend_named(backend)  # ValueError for an unknown name
    if row.admin_url is not None:
        admin = getattr(servers, row.admin_url)
        with _dropped_afterwards(name, lambda: server_database(admin, name, create=False)):
            yield server_database(admin, name, create=True)
    elif row.kind == CASSANDRA:
        with _dropped_afterwards(name, lambda: drop_keyspace(servers.cassandra_hosts, name)):
            yield f"cassandra://{servers.cassandra_hosts}/{name}"
    else:  # SQLite: a file
        path = Path(tmp_dir) / f"{name}.sqlite3"
        path.unlink(missing_ok=True)
        try:
            yield f"sqlite:///{path}"
        finally:
            path.unlink(missing_ok=True)


@contextlib.contextmanager
def table_reader(config: L1dbConfig | str | Path) -> Iterator[Callable[[str, Sequence[str]], pd.DataFrame]]:
    """A function ``read(table, columns)`` as `read_table`, on one connection kept until the block ends.

    For a test that looks at a table many times while a run writes it: one connection for all the
    looks, where each `read_table` call connects anew (on a node busy with the run, the connecting
    is both the cost and what times out).

    Parameters
    ----------
    config : `l1db.config.L1dbConfig` or path
        The database's config (or its file).
    """
    if not isinstance(config, L1dbConfig):
        config = load_config(config)
    if config.backend == CASSANDRA:
        from cassandra import ConsistencyLevel
        from cassandra.query import SimpleStatement

        url = parse_cassandra_url(config.url)
        cluster, session = cassandra_session(url.hosts, url.port)

        def read_cql(table: str, columns: Sequence[str]) -> pd.DataFrame:
            names = list(columns)
            quoted = ", ".join(f'"{c}"' for c in names)
            tables = [table]
            if config.cassandra["time_partition_tables"] and table in PUBLISHED_TABLES:
                # One table per time partition: the rows of all of them.
                found = session.execute("SELECT table_name FROM system_schema.tables WHERE keyspace_name = %s",
                                        [url.keyspace])
                tables = [str(r[0]) for r in found if (period_of(str(r[0])) or ("",))[0] == table]
            rows = []
            for name in tables:
                # QUORUM: on a cluster, a node back from a loss lacks the rows written while it was
                # down until its hints are replayed; a quorum always includes a replica that has them.
                rows += list(session.execute(SimpleStatement(f'SELECT {quoted} FROM "{url.keyspace}"."{name}"',
                                                             consistency_level=ConsistencyLevel.QUORUM)))
            return pd.DataFrame(rows, columns=names)

        try:
            yield read_cql
        finally:
            cluster.shutdown()
        return
    engine = sa.create_engine(normalize_url(config.url), poolclass=sa.pool.NullPool)
    metadata = sa.MetaData()
    try:
        with engine.connect() as conn:

            def read_sql(table: str, columns: Sequence[str]) -> pd.DataFrame:
                names = list(columns)
                reflected = metadata.tables.get(table)
                if reflected is None:
                    reflected = sa.Table(table, metadata, autoload_with=conn)
                rows = conn.execute(sa.select(*(reflected.c[c] for c in names))).all()
                conn.rollback()  # each look sees what was committed since the last one
                return pd.DataFrame(rows, columns=names)

            yield read_sql
    finally:
        engine.dispose()


def read_table(config: L1dbConfig | str | Path, table: str, columns: Sequence[str]) -> pd.DataFrame:
    """``columns`` of every row of ``table``, read with the backend's own driver (not through L1db).

    Parameters
    ----------
    config : `l1db.config.L1dbConfig` or path
        The database's config (or its file).
    """
    with table_reader(config) as read:
        return read(table, columns)
